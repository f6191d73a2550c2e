"""Retrieval: k nearest passages by Euclidean distance, optional MMR re-ranking, and the distance threshold.

Works on any `VectorIndex`; one or several domains' indexes can be searched at once and merged by distance.
Embedding the query is the caller's job (the facade), so this module is pure arithmetic over vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag_engine.index import VectorIndex
from rag_engine.records import Hit, Passage


@dataclass(frozen=True)
class SearchSpace:
    """One domain's index and the passages its ids stand for."""

    domain: str
    index: VectorIndex
    passages: dict[int, Passage]


@dataclass(frozen=True)
class Candidate:
    domain: str
    passage: Passage
    distance: float
    vector: npt.NDArray[np.float32]


def nearest(query: npt.NDArray[np.float32], spaces: Sequence[SearchSpace], k: int) -> list[Candidate]:
    """The k nearest passages over all given spaces, nearest first (ties broken by domain, path, id)."""
    found: list[Candidate] = []
    for space in spaces:
        distances, ids = space.index.search(query.reshape(1, -1), k)
        id_row = [int(i) for i in ids[0] if i >= 0]
        vectors = space.index.vectors(id_row)
        for row, (passage_id, distance) in enumerate(zip(id_row, distances[0], strict=False)):
            found.append(Candidate(space.domain, space.passages[passage_id], float(distance), vectors[row]))
    found.sort(key=lambda c: (c.distance, c.domain, c.passage.path, c.passage.id))
    return found[:k]


def mmr(query: npt.NDArray[np.float32], candidates: Sequence[Candidate], k: int, lam: float) -> list[Candidate]:
    """Maximal marginal relevance: greedily pick lam*sim(query, d) - (1-lam)*max sim(d, picked).

    Similarity is the cosine of unit vectors. With lam = 1 this is plain nearest-first order.
    """
    if lam >= 1.0 or len(candidates) <= 1:
        return list(candidates[:k])
    matrix = np.vstack([c.vector for c in candidates])
    to_query = matrix @ query
    between = matrix @ matrix.T
    picked: list[int] = []
    remaining = list(range(len(candidates)))
    while remaining and len(picked) < k:
        redundancy = between[np.ix_(remaining, picked)].max(axis=1) if picked else np.zeros(len(remaining))
        scores = lam * to_query[remaining] - (1.0 - lam) * redundancy
        best = remaining[int(np.argmax(scores))]
        picked.append(best)
        remaining.remove(best)
    return [candidates[i] for i in picked]


def search(
    query: npt.NDArray[np.float32],
    spaces: Sequence[SearchSpace],
    k: int,
    mmr_lambda: float = 1.0,
    mmr_candidates: int = 20,
) -> list[Hit]:
    """Top-k hits, ranked nearest first. MMR (if on) decides *which* passages; they are still shown and
    prompted in distance order so that rank 1 is always the closest."""
    pool = nearest(query, spaces, max(k, mmr_candidates) if mmr_lambda < 1.0 else k)
    chosen = sorted(mmr(query, pool, k, mmr_lambda), key=lambda c: c.distance)
    return [
        Hit(rank=rank, passage=c.passage, distance=c.distance, domain=c.domain)
        for rank, c in enumerate(chosen, start=1)
    ]


def within_threshold(hits: Sequence[Hit], max_distance: float) -> list[Hit]:
    """The hits close enough to be evidence; an empty result means the documents do not cover the question."""
    return [hit for hit in hits if hit.distance <= max_distance]
