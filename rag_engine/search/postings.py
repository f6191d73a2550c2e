"""BM25's corpus statistics, kept incrementally and copy-on-write: `Statistics`.

What BM25 needs of a corpus is the number of passages, their total length, and for every term its postings
(the passages holding it, how often, and each one's length); a passage's own analysed terms (distinct term ids
and their counts) say which postings to touch when it goes. `changed` makes a new `Statistics` in time
proportional to the change (the postings of the terms the added and removed passages hold, plus shallow copies
of the term list and the passage map, and for a removed passage that was loaded from the stored form one
vectorised pass over its pairs to find its terms: about a millisecond at 640,000 pairs); every untouched
posting array is shared with the old version, which stays intact for the queries still reading it. Arrays
are never written after they are made.

Scoring is Lucene's BM25, as bm25s's method="lucene" computes it: idf = ln(1 + (N − df + 0.5) / (df + 0.5)),
times tf / (tf + k1 · (1 − b + b · dl / avgdl)), summed over the query's terms (a term given twice counts
twice). `to_arrays` / `from_arrays` are the stored form, the inverted index itself (per term, the rows of its
passages and the counts), over a vocabulary with no dead terms; a loaded `Statistics` reads those arrays in
place, so loading costs a few vectorised passes, not one Python object per term or passage. Not here: turning
text into terms, and the query API (`lexical.py`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
TermIds = npt.NDArray[np.int32]
Counts = npt.NDArray[np.int32]
Floats32 = npt.NDArray[np.float32]
Floats64 = npt.NDArray[np.float64]
# Positions of passages in the ascending order of all passage ids (what `Statistics.scores` sums by).
Rows = npt.NDArray[np.intp]

# The vocabulary's separator in the stored form: terms are runs of word characters, never a newline.
TERM_SEPARATOR = "\n"
ARRAY_KEYS = ("vocabulary", "passage_ids", "lengths", "bounds", "rows", "counts")
# Up to this many removed passages, filtering a postings array compares against each id in turn (a binary
# search costs more than a few comparisons).
FEW_IDS = 16


A = TypeVar("A", bound=np.ndarray[Any, Any])


def _frozen(array: A) -> A:
    """The array, read-only: versions share arrays, so none may ever be written after it is made."""
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Postings:
    """The passages holding one term: their ids, the term's count in each, and each passage's length (what
    the tf part needs, kept beside the count so that scoring is one vectorised expression)."""

    ids: Ids
    counts: Floats32
    lengths: Floats32

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Doc:
    """One passage's analysed text: its distinct term ids, their counts, and its length (the sum)."""

    terms: TermIds
    counts: Counts
    length: int


_NO_IDS: Ids = _frozen(np.zeros(0, np.int64))
_NO_FLOATS: Floats32 = _frozen(np.zeros(0, np.float32))
EMPTY = Postings(_NO_IDS, _NO_FLOATS, _NO_FLOATS)


@dataclass(frozen=True)
class _Stored:
    """The arrays a loaded `Statistics` reads in place: passages by row, and every (term, passage) pair grouped
    by term (term t owns pairs bounds[t] to bounds[t + 1])."""

    passage_ids: Ids
    lengths: Ids
    bounds: Ids
    rows: TermIds
    ids: Ids
    counts: Floats32
    dls: Floats32

    def postings(self, term_id: int) -> Postings:
        start, end = int(self.bounds[term_id]), int(self.bounds[term_id + 1])
        return Postings(self.ids[start:end], self.counts[start:end], self.dls[start:end])

    def pairs_of(self, rows: Sequence[int]) -> tuple[TermIds, Counts]:
        """(term ids, counts) of every pair of the given passage rows: one pass over the pairs."""
        positions = np.flatnonzero(~_not_in(self.rows, np.sort(np.asarray(rows, np.int32))))
        term_ids = (np.searchsorted(self.bounds, positions, side="right") - 1).astype(np.int32)
        return term_ids, self.counts[positions].astype(np.int32)


class Statistics:
    """An immutable BM25 corpus: build with `Statistics()` and `changed`, or `from_arrays`."""

    def __init__(
        self,
        vocabulary: dict[str, int] | None = None,
        names: list[str] | None = None,
        postings: list[Postings | None] | None = None,
        docs: dict[int, Doc | int] | None = None,
        total_length: int = 0,
        stored: _Stored | None = None,
    ) -> None:
        # term -> term id, and back; ids are only ever appended (a term with no passage left keeps its id and
        # EMPTY postings until the next `to_arrays` drops it).
        self._vocabulary = vocabulary if vocabulary is not None else {}
        self._names = names if names is not None else []
        # By term id; None: the stored postings, untouched since loading.
        self._postings = postings if postings is not None else []
        # By passage id: its analysed text, or its row in the stored arrays while untouched since loading.
        self._docs = docs if docs is not None else {}
        self._total_length = total_length
        self._stored = stored
        # For scoring (`scores`), made on first use and kept (this object never changes): every passage id in
        # ascending order, and per term the rows of its postings in that order. Summing a query's terms into one
        # array by row costs O(postings + passages) instead of sorting all the postings' ids per query.
        self._sorted_ids: Ids | None = None
        self._rows: dict[int, Rows] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self._docs

    def ids(self) -> Iterable[int]:
        return self._docs.keys()

    @property
    def total_length(self) -> int:
        return self._total_length

    def document_frequency(self, term: str) -> int:
        term_id = self._vocabulary.get(term)
        return 0 if term_id is None else len(self._postings_of(term_id))

    def counts(self, passage_id: int) -> dict[str, int]:
        """The passage's terms and how often each occurs (what an update stores for a new passage)."""
        term_ids, counts = self._pairs(self._docs[passage_id])
        return {self._names[t]: c for t, c in zip(term_ids.tolist(), counts.tolist(), strict=True)}

    def _postings_of(self, term_id: int) -> Postings:
        postings = self._postings[term_id]
        if postings is None:
            assert self._stored is not None
            return self._stored.postings(term_id)
        return postings

    def _pairs(self, doc: Doc | int) -> tuple[TermIds, Counts]:
        if isinstance(doc, Doc):
            return doc.terms, doc.counts
        assert self._stored is not None
        return self._stored.pairs_of([doc])

    def _length(self, doc: Doc | int) -> int:
        if isinstance(doc, Doc):
            return doc.length
        assert self._stored is not None
        return int(self._stored.lengths[doc])

    # -- changes ---------------------------------------------------------------------------------------------
    def changed(self, added: Mapping[int, Mapping[str, int]], removed: Iterable[int]) -> Statistics:
        """A new version without `removed` and with `added` (passage id → term → count; an id already here is
        replaced). This one is unchanged. Returns self when there is nothing to do."""
        gone = {i for i in removed if i in self._docs} | {i for i in added if i in self._docs}
        if not added and not gone:
            return self
        vocabulary, names = self._vocabulary, self._names
        fresh = sorted({term for counts in added.values() for term in counts if term not in vocabulary})
        if fresh:
            vocabulary, names = dict(vocabulary), [*names, *fresh]
            vocabulary.update((term, len(self._names) + n) for n, term in enumerate(fresh))
        postings: list[Postings | None] = [*self._postings, *([EMPTY] * len(fresh))]
        docs = dict(self._docs)
        total = self._total_length
        for passage_id in gone:
            total -= self._length(docs.pop(passage_id))
        if gone:
            self._drop(postings, gone)
        new_docs: dict[int, Doc] = {}
        for passage_id, term_counts in added.items():
            terms = np.fromiter((vocabulary[term] for term in term_counts), np.int32, len(term_counts))
            counts = np.fromiter(term_counts.values(), np.int32, len(term_counts))
            if len(counts) and counts.min() < 1:
                raise ValueError(f"passage {passage_id} has a term counted {int(counts.min())} times")
            doc = Doc(_frozen(terms), _frozen(counts), int(counts.sum()))
            new_docs[passage_id] = doc
            total += doc.length
        docs.update(new_docs)
        if new_docs:
            self._add(postings, new_docs)
        return Statistics(vocabulary, names, postings, docs, total, self._stored)

    def _drop(self, postings: list[Postings | None], gone: set[int]) -> None:
        """Take the `gone` passages out of the postings of every term they hold (new arrays for those terms)."""
        gone_ids = np.sort(np.fromiter(gone, np.int64, len(gone)))
        docs = [self._docs[i] for i in gone]
        parts = [doc.terms for doc in docs if isinstance(doc, Doc)]
        rows = [doc for doc in docs if not isinstance(doc, Doc)]
        if rows:
            assert self._stored is not None
            parts.append(self._stored.pairs_of(rows)[0])
        for term_id in np.unique(np.concatenate(parts)).tolist():
            old = self._postings_of(term_id)
            keep = _not_in(old.ids, gone_ids)
            postings[term_id] = (
                Postings(_frozen(old.ids[keep]), _frozen(old.counts[keep]), _frozen(old.lengths[keep]))
                if keep.any()
                else EMPTY
            )

    def _add(self, postings: list[Postings | None], docs: Mapping[int, Doc]) -> None:
        """Append the new passages to the postings of every term they hold, grouped by term in one sort."""
        items = list(docs.items())
        sizes = np.fromiter((len(d.terms) for _, d in items), np.int64, len(items))
        term_ids = np.concatenate([d.terms for _, d in items])
        order = np.argsort(term_ids, kind="stable")
        sorted_terms = term_ids[order]
        ids = _frozen(np.repeat(np.fromiter((i for i, _ in items), np.int64, len(items)), sizes)[order])
        tfs = _frozen(np.concatenate([d.counts for _, d in items])[order].astype(np.float32))
        dls = _frozen(np.repeat(np.fromiter((d.length for _, d in items), np.float32, len(items)), sizes)[order])
        cuts = [0, *(np.flatnonzero(np.diff(sorted_terms)) + 1).tolist(), len(sorted_terms)]
        for start, end in pairwise(cuts):
            if start == end:
                continue
            term_id = int(sorted_terms[start])
            old = self._postings_of(term_id) if postings[term_id] is None else postings[term_id]
            assert old is not None
            new = Postings(ids[start:end], tfs[start:end], dls[start:end])
            postings[term_id] = new if not len(old) else _joined(old, new)

    # -- scoring ---------------------------------------------------------------------------------------------
    def scores(self, terms: Sequence[str], k1: float, b: float) -> tuple[Ids, Floats64]:
        """(ids of the passages sharing a term with `terms`, ascending; their BM25 scores). Every score is > 0."""
        n = len(self._docs)
        if not n or not self._total_length:
            return _NO_IDS, np.zeros(0, np.float64)
        average = self._total_length / n
        row_parts: list[Rows] = []
        score_parts: list[Floats64] = []
        for term, times in Counter(terms).items():
            term_id = self._vocabulary.get(term)
            if term_id is None:
                continue
            postings = self._postings_of(term_id)
            df = len(postings)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = postings.counts.astype(np.float64)
            norm = k1 * (1 - b + b * postings.lengths.astype(np.float64) / average)
            row_parts.append(self._rows_of(term_id, postings))
            score_parts.append((times * idf) * tf / (tf + norm))
        if not row_parts:
            return _NO_IDS, np.zeros(0, np.float64)
        summed = np.bincount(np.concatenate(row_parts), weights=np.concatenate(score_parts), minlength=n)
        rows = np.flatnonzero(summed)  # every term's BM25 weight is > 0, so these are the matching passages
        return self._all_ids()[rows], np.asarray(summed[rows], np.float64)

    def _all_ids(self) -> Ids:
        if self._sorted_ids is None:
            self._sorted_ids = _frozen(np.sort(np.fromiter(self._docs.keys(), np.int64, len(self._docs))))
        return self._sorted_ids

    def _rows_of(self, term_id: int, postings: Postings) -> Rows:
        rows = self._rows.get(term_id)
        if rows is None:
            rows = _frozen(np.searchsorted(self._all_ids(), postings.ids))
            self._rows[term_id] = rows  # one dict store: a concurrent reader finds it or computes the same
        return rows

    # -- stored form -----------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """The inverted index as arrays (`ARRAY_KEYS`): passages by row (ascending id), the live terms' pairs."""
        live = [(t, postings) for t in range(len(self._names)) if len(postings := self._postings_of(t))]
        passage_ids = np.sort(np.fromiter(self._docs, np.int64, len(self._docs)))
        pair_ids = np.concatenate([_NO_IDS, *(postings.ids for _, postings in live)])
        counts = np.concatenate([_NO_FLOATS, *(postings.counts for _, postings in live)])
        bounds = np.zeros(len(live) + 1, np.int64)
        np.cumsum(np.fromiter((len(postings) for _, postings in live), np.int64, len(live)), out=bounds[1:])
        vocabulary = TERM_SEPARATOR.join(self._names[t] for t, _ in live).encode("utf-8", "surrogatepass")
        return {
            "vocabulary": np.frombuffer(vocabulary, np.uint8),
            "passage_ids": passage_ids,
            "lengths": np.fromiter((self._length(self._docs[i]) for i in passage_ids.tolist()), np.int64),
            "bounds": bounds,
            "rows": np.searchsorted(passage_ids, pair_ids).astype(np.int32),
            "counts": counts.astype(np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> Statistics:
        """The statistics `to_arrays` stored; ValueError (or KeyError) when the arrays do not fit together."""
        raw = np.asarray(arrays["vocabulary"], np.uint8).tobytes().decode("utf-8", "surrogatepass")
        names = raw.split(TERM_SEPARATOR) if raw else []
        passage_ids = np.array(arrays["passage_ids"], np.int64)
        lengths = np.array(arrays["lengths"], np.int64)
        bounds = np.array(arrays["bounds"], np.int64)
        rows = np.array(arrays["rows"], np.int32)
        counts = np.asarray(arrays["counts"], np.int32)
        n, pairs = len(passage_ids), len(rows)
        if (
            len(lengths) != n
            or len(bounds) != len(names) + 1
            or bounds[0] != 0
            or bounds[-1] != pairs
            or len(counts) != pairs
            or np.any(np.diff(bounds) < 1)
            or (pairs and (rows.min() < 0 or rows.max() >= n or counts.min() < 1))
            or np.any(np.diff(passage_ids) <= 0)
            or len(set(names)) != len(names)
            or not np.array_equal(np.bincount(rows, weights=counts, minlength=n), lengths)
        ):
            raise ValueError("the stored lexical statistics do not fit together")
        return cls._inverted(names, passage_ids, lengths, bounds, rows, counts)

    @classmethod
    def of(cls, texts: Mapping[int, Mapping[str, int]]) -> Statistics:
        """The statistics of analysed passages (passage id → term → count) made at once: the stored layout
        computed with a few sorts, rather than one `changed` that makes every term's postings."""
        term_counts = list(texts.values())
        names = sorted({term for counts in term_counts for term in counts})
        vocabulary = {term: t for t, term in enumerate(names)}
        sizes = np.fromiter((len(counts) for counts in term_counts), np.int64, len(term_counts))
        term_ids = np.fromiter(
            (vocabulary[term] for counts in term_counts for term in counts), np.int32, int(sizes.sum())
        )
        counts = np.fromiter(chain.from_iterable(c.values() for c in term_counts), np.int32, len(term_ids))
        if len(counts) and counts.min() < 1:
            raise ValueError(f"a term is counted {int(counts.min())} times")
        by_id = np.argsort(np.fromiter(texts, np.int64, len(texts)), kind="stable")
        passage_ids = np.fromiter(texts, np.int64, len(texts))[by_id]
        row_of = np.empty(len(texts), np.int32)
        row_of[by_id] = np.arange(len(texts), dtype=np.int32)
        lengths = np.fromiter((sum(c.values()) for c in term_counts), np.int64, len(term_counts))[by_id]
        order = np.argsort(term_ids, kind="stable")
        bounds = np.zeros(len(names) + 1, np.int64)
        np.cumsum(np.bincount(term_ids, minlength=len(names)), out=bounds[1:])
        rows = np.repeat(row_of, sizes)[order]
        return cls._inverted(names, passage_ids, lengths, bounds, rows, counts[order])

    @classmethod
    def _inverted(
        cls, names: list[str], passage_ids: Ids, lengths: Ids, bounds: Ids, rows: TermIds, counts: Counts
    ) -> Statistics:
        """Statistics reading the stored layout in place (see `_Stored`); the arrays are checked already."""
        stored = _Stored(
            _frozen(passage_ids),
            _frozen(lengths),
            _frozen(bounds),
            _frozen(rows),
            _frozen(passage_ids[rows]),
            _frozen(counts.astype(np.float32)),
            _frozen(lengths[rows].astype(np.float32)),
        )
        docs: dict[int, Doc | int] = dict(zip(passage_ids.tolist(), range(len(passage_ids)), strict=True))
        vocabulary = {term: t for t, term in enumerate(names)}
        return cls(vocabulary, names, [None] * len(names), docs, int(lengths.sum()), stored)


def _not_in(ids: Ids | TermIds, gone: Ids | TermIds) -> npt.NDArray[np.bool_]:
    """A mask of the `ids` that are not `gone` (sorted ascending)."""
    if len(gone) > FEW_IDS:  # a binary search of each id (np.isin would sort both arrays, for every term)
        found: npt.NDArray[np.bool_] = gone[np.minimum(np.searchsorted(gone, ids), len(gone) - 1)] == ids
        return ~found
    keep = np.ones(len(ids), np.bool_)
    for value in gone.tolist():
        keep &= ids != value
    return keep


def _joined(old: Postings, new: Postings) -> Postings:
    return Postings(
        _frozen(np.concatenate([old.ids, new.ids])),
        _frozen(np.concatenate([old.counts, new.counts])),
        _frozen(np.concatenate([old.lengths, new.lengths])),
    )
