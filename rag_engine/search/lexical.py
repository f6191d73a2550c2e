"""Lexical retrieval: the `LexicalIndex` seam and its BM25 implementation (`Bm25Index`) over our own analyzer.

The analyzer is the one Elasticsearch's `english` analyzer approximates (and the published BM25 numbers used):
words lowercased, Lucene's 33 English stop words dropped, Snowball-stemmed so "trials" finds "trial". BM25 is
Lucene's variant with `k1` and `b` from config, applied at query time. An index is immutable, like the snapshot
it belongs to: `updated` analyses only the added passages and returns a new index whose statistics
(`postings.py`) share everything the change did not touch, in time proportional to the change. The analysed
terms have a stored form (`to_arrays` / `from_arrays`, `counts` for one passage), so a process that loads a
domain does not analyse its passages again. The index holds passage ids only; the passages themselves, and
fusing this ranking with the dense one, belong to `retrieval.py` and `fusion.py`; where the stored form is
kept, to `ingest/`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_engine.search.postings import Statistics

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]

# Words of two or more letters or digits, as bm25s's own tokenizer splits them.
WORD = re.compile(r"\w\w+")
# Lucene's English stop words (EnglishAnalyzer's set, which bm25s ships as STOPWORDS_EN), kept here as data so
# that answering needs no bm25s at all.
STOP_WORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
        "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
        "will", "with",
    }
)  # fmt: skip
# Names what `Analyzer.terms` does: stored terms made by another analyzer are analysed again, not trusted.
# Change it whenever the words, the stop words or the stemmer change.
ANALYZER = "words2+/lucene-english-stop-33/snowball-english"
# A guard against a stem memo that only grows (every new word of every question adds one entry).
MAX_MEMO_STEMS = 1_000_000


class Analyzer:
    """Text → index terms. Stems are memoised: a corpus repeats its words, and stemming costs far more than a
    dict lookup. Thread-safe (the Snowball stemmer itself keeps state per call, so misses take a lock)."""

    def __init__(self) -> None:
        import snowballstemmer

        self._stemmer: Any = snowballstemmer.stemmer("english")
        self._stems: dict[str, str] = {}
        self._lock = threading.Lock()

    def terms(self, text: str) -> tuple[str, ...]:
        return tuple(self._stem(word) for word in WORD.findall(text.lower()) if word not in STOP_WORDS)

    def counts(self, text: str) -> dict[str, int]:
        """Each term of the text and how often it occurs."""
        return dict(Counter(self.terms(text)))

    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            with self._lock:
                if len(self._stems) >= MAX_MEMO_STEMS:
                    self._stems.clear()
                stem = str(self._stemmer.stemWord(word))
                self._stems[word] = stem
        return stem


class LexicalIndex(Protocol):
    """Passage ids ranked by how well their words match a question's words."""

    def search(self, text: str, k: int) -> tuple[Floats, Ids]: ...

    def scores(self, text: str, ids: Sequence[int]) -> Floats: ...

    def updated(self, added: Mapping[int, str], removed: Iterable[int]) -> LexicalIndex: ...

    def ids(self) -> frozenset[int]: ...

    def __len__(self) -> int: ...


class Bm25Index:
    """BM25 over a set of passages; build with `build` (or `from_arrays`), change with `updated`."""

    def __init__(self, statistics: Statistics, analyzer: Analyzer, k1: float, b: float) -> None:
        self.k1 = k1
        self.b = b
        self.statistics = statistics
        self._analyzer = analyzer
        # The last text scored and its (ids, scores): hybrid search asks for the top k and then for the scores of
        # the dense side's candidates, both of one question; scoring every matching passage twice doubled the
        # lexical cost at 100k passages. One tuple, replaced whole, so concurrent readers see a consistent pair.
        self._last: tuple[str, tuple[Ids, npt.NDArray[np.float64]]] | None = None

    @classmethod
    def build(cls, texts: Mapping[int, str], k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        """An index of `texts` (passage id → text) with a new analyzer."""
        analyzer = Analyzer()
        return cls(Statistics.of({i: analyzer.counts(text) for i, text in texts.items()}), analyzer, k1, b)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]], k1: float, b: float) -> Bm25Index:
        """The index `to_arrays` stored (made by this `ANALYZER`: the caller checks); ValueError or KeyError
        when the arrays are damaged."""
        return cls(Statistics.from_arrays(arrays), Analyzer(), k1, b)

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return self.statistics.to_arrays()

    def counts(self, passage_id: int) -> dict[str, int]:
        """The analysed terms of one passage of the index (what a stored update keeps of a new passage)."""
        return self.statistics.counts(passage_id)

    def updated(self, added: Mapping[int, str], removed: Iterable[int]) -> Bm25Index:
        """A new index without `removed` and with `added`; this one is unchanged (queries may be using it)."""
        return self.with_counts({i: self._analyzer.counts(text) for i, text in added.items()}, removed)

    def with_counts(self, added: Mapping[int, Mapping[str, int]], removed: Iterable[int]) -> Bm25Index:
        """`updated` for passages analysed before (term → count each, as `counts` gives them)."""
        statistics = self.statistics.changed(added, removed)
        if statistics is self.statistics:
            return self
        return Bm25Index(statistics, self._analyzer, self.k1, self.b)

    def search(self, text: str, k: int) -> tuple[Floats, Ids]:
        """The k best-scoring passages, best first (ties by id): (BM25 scores, passage ids). Only passages that
        share a term with the text are returned, so there may be fewer than k."""
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        ids, scores = self._scored(text)
        rounded = scores.astype(np.float32)  # ranked as reported, so equal scores tie and fall back to the id
        if len(rounded) > k:
            # Only what can be in the top k is sorted: every passage scoring at least the k-th best score (ties
            # included, so the id still breaks them exactly as a full sort would).
            kth = np.partition(rounded, len(rounded) - k)[len(rounded) - k]
            keep = np.flatnonzero(rounded >= kth)
            ids, rounded = ids[keep], rounded[keep]
        best = np.lexsort((ids, -rounded))[:k]
        return rounded[best], ids[best]

    def scores(self, text: str, ids: Sequence[int]) -> Floats:
        """The BM25 score of each given passage (0 for a passage that shares no term or is not in this index)."""
        matching, scores = self._scored(text)
        wanted = np.asarray(ids, np.int64)
        if not len(matching) or not len(wanted):
            return np.zeros(len(wanted), np.float32)
        rows = np.minimum(np.searchsorted(matching, wanted), len(matching) - 1)
        return np.where(matching[rows] == wanted, scores[rows], 0.0).astype(np.float32)

    def _scored(self, text: str) -> tuple[Ids, npt.NDArray[np.float64]]:
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        scored = self.statistics.scores(self._analyzer.terms(text), self.k1, self.b)
        self._last = (text, scored)
        return scored

    def ids(self) -> frozenset[int]:
        return frozenset(self.statistics.ids())

    def __len__(self) -> int:
        return len(self.statistics)
