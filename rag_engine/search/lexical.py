"""Lexical retrieval: the `LexicalIndex` seam and its BM25 implementation (bm25s scoring over our own analyzer).

The analyzer is the one Elasticsearch's `english` analyzer approximates (and the published BM25 numbers used):
words lowercased, Lucene's 33 English stop words dropped, Snowball-stemmed so "trials" finds "trial". BM25 is
Lucene's variant with `k1` and `b` from config. An index is immutable, like the snapshot it belongs to: an update
makes a new one (`updated`) that re-analyses only the added passages and recomputes the statistics, which
BM25's document frequencies require anyway. The index holds passage ids only; the passages themselves, and
fusing this ranking with the dense one, belong to `retrieval.py` and `fusion.py`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]

# Words of two or more letters or digits, as bm25s's own tokenizer splits them.
WORD = re.compile(r"\w\w+")
# A guard against a stem memo that only grows (every new word of every question adds one entry).
MAX_MEMO_STEMS = 1_000_000


class Analyzer:
    """Text → index terms. Stems are memoised: a corpus repeats its words, and stemming costs far more than a
    dict lookup. Thread-safe (the Snowball stemmer itself keeps state per call, so misses take a lock)."""

    def __init__(self) -> None:
        import snowballstemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stemmer: Any = snowballstemmer.stemmer("english")
        self._stop = frozenset(STOPWORDS_EN)
        self._stems: dict[str, str] = {}
        self._lock = threading.Lock()

    def terms(self, text: str) -> tuple[str, ...]:
        return tuple(self._stem(word) for word in WORD.findall(text.lower()) if word not in self._stop)

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
    """BM25 over a fixed set of passages (bm25s's sparse score matrix); build with `build`, change with
    `updated`."""

    def __init__(self, terms: dict[int, tuple[str, ...]], analyzer: Analyzer, k1: float, b: float) -> None:
        self.k1 = k1
        self.b = b
        self._terms = terms
        self._analyzer = analyzer
        self._ids: Ids = np.fromiter(terms, dtype=np.int64, count=len(terms))
        self._rows = {passage_id: row for row, passage_id in enumerate(terms)}
        self._bm25: Any = None
        if any(terms.values()):  # bm25s cannot index a corpus without a single word
            import bm25s

            # bm25s sets its own logger to DEBUG on import, which puts a line per index build on stderr.
            logging.getLogger("bm25s").setLevel(logging.WARNING)
            self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
            self._bm25.index([list(t) for t in terms.values()], show_progress=False)

    @classmethod
    def build(cls, texts: Mapping[int, str], k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        """An index of `texts` (passage id → text) with a new analyzer."""
        analyzer = Analyzer()
        return cls({passage_id: analyzer.terms(text) for passage_id, text in texts.items()}, analyzer, k1, b)

    def updated(self, added: Mapping[int, str], removed: Iterable[int]) -> Bm25Index:
        """A new index without `removed` and with `added`; this one is unchanged (queries may be using it)."""
        gone = set(removed)
        if not added and not gone.intersection(self._rows):
            return self
        terms = {i: t for i, t in self._terms.items() if i not in gone}
        terms.update((i, self._analyzer.terms(text)) for i, text in added.items())
        return Bm25Index(terms, self._analyzer, self.k1, self.b)

    def search(self, text: str, k: int) -> tuple[Floats, Ids]:
        """The k best-scoring passages, best first (ties by id): (BM25 scores, passage ids). Only passages that
        share a term with the text are returned, so there may be fewer than k."""
        scores = self._all_scores(text)
        if scores is None or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        matching = np.flatnonzero(scores > 0)
        order = np.lexsort((self._ids[matching], -scores[matching]))[:k]
        rows = matching[order]
        return scores[rows].astype(np.float32), self._ids[rows]

    def scores(self, text: str, ids: Sequence[int]) -> Floats:
        """The BM25 score of each given passage (0 for a passage that is not in this index)."""
        scores = self._all_scores(text)
        if scores is None:
            return np.zeros(len(ids), np.float32)
        return np.array([scores[self._rows[i]] if i in self._rows else 0.0 for i in ids], dtype=np.float32)

    def _all_scores(self, text: str) -> npt.NDArray[np.float32] | None:
        """One score per row, or None when no query term is in the vocabulary (every score would be 0)."""
        if self._bm25 is None:
            return None
        term_ids = self._bm25.get_tokens_ids(list(self._analyzer.terms(text)))
        if not term_ids:
            return None
        return np.asarray(self._bm25.get_scores_from_ids(term_ids), dtype=np.float32)

    def ids(self) -> frozenset[int]:
        return frozenset(self._rows)

    def __len__(self) -> int:
        return len(self._terms)
