"""Retrieval: the best passages for a question by embedding (dense), by words (bm25) or both fused (hybrid),
optional MMR re-ranking, and the distance threshold.

One or several domains can be searched at once; each domain's `SearchSpace` holds its vector index, its lexical
index and the passages both stand for (the same ids). Whatever the mode, every hit carries its true Euclidean
distance to the question, computed from the stored vector, so a distance shown is always a distance. Embedding
the query is the caller's job (the facade); fusing two rankings is `fusion.py`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from rag_engine.config import RETRIEVAL_MODES
from rag_engine.records import Hit, Passage
from rag_engine.search.fusion import Fusion
from rag_engine.search.index import VectorIndex
from rag_engine.search.lexical import LexicalIndex

__all__ = ["RETRIEVAL_MODES", "Candidate", "SearchSpace", "candidates", "mmr", "nearest", "search", "within_threshold"]

Key = tuple[str, int]


@dataclass(frozen=True)
class SearchSpace:
    """One domain's indexes and the passages their ids stand for; both indexes hold exactly these ids."""

    domain: str
    index: VectorIndex
    passages: dict[int, Passage]
    lexical: LexicalIndex


@dataclass(frozen=True)
class Candidate:
    domain: str
    passage: Passage
    distance: float
    vector: npt.NDArray[np.float32]
    # What the mode ranks by (higher is better), and the ranks in each retriever's list (see `Hit`).
    score: float = 0.0
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def key(self) -> Key:
        return self.domain, self.passage.id


def cosine(distance: float) -> float:
    """The cosine similarity of two unit vectors at this Euclidean distance (|a − b|² = 2 − 2 cos)."""
    return 1.0 - distance * distance / 2.0


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
    return [replace(c, score=cosine(c.distance), dense_rank=rank) for rank, c in enumerate(found[:k], start=1)]


def _with_distances(
    query: npt.NDArray[np.float32], space: SearchSpace, ids: Sequence[int], scores: Sequence[float]
) -> list[Candidate]:
    """Candidates of one space with their true distances, from the vectors the index stores."""
    vectors = space.index.vectors(ids)
    distances = np.linalg.norm(vectors - query.reshape(1, -1), axis=1) if len(ids) else np.zeros(0)
    return [
        Candidate(space.domain, space.passages[i], float(d), vectors[row], float(s))
        for row, (i, d, s) in enumerate(zip(ids, distances, scores, strict=True))
    ]


def lexical(query: npt.NDArray[np.float32], text: str, spaces: Sequence[SearchSpace], k: int) -> list[Candidate]:
    """The k best BM25 matches over all given spaces, best first (ties by domain, path, id)."""
    found: list[Candidate] = []
    for space in spaces:
        scores, ids = space.lexical.search(text, k)
        found.extend(_with_distances(query, space, [int(i) for i in ids], [float(s) for s in scores]))
    found.sort(key=lambda c: (-c.score, c.domain, c.passage.path, c.passage.id))
    return [replace(c, lexical_rank=rank) for rank, c in enumerate(found[:k], start=1)]


def fused(
    query: npt.NDArray[np.float32], text: str, spaces: Sequence[SearchSpace], k: int, fusion: Fusion
) -> list[Candidate]:
    """The k best of the dense and the lexical candidates (each list `fusion.candidates` deep), fused."""
    depth = max(k, fusion.candidates)
    dense, words = nearest(query, spaces, depth), lexical(query, text, spaces, depth)
    pool = {c.key: c for c in dense}
    for c in words:
        pool[c.key] = replace(pool[c.key], lexical_rank=c.lexical_rank) if c.key in pool else c
    dense_scores = {key: cosine(c.distance) for key, c in pool.items()}
    lexical_scores = {c.key: c.score for c in words}
    if fusion.method == "blend":  # the blend needs both scores of every candidate: the missing BM25 ones, exactly
        lexical_scores.update(_lexical_scores(text, spaces, [key for key in pool if key not in lexical_scores]))
    scores = fusion.fuse([c.key for c in dense], [c.key for c in words], dense_scores, lexical_scores)
    ranked = sorted(pool.values(), key=lambda c: (-scores[c.key], c.domain, c.passage.path, c.passage.id))
    return [replace(c, score=scores[c.key]) for c in ranked[:k]]


def _lexical_scores(text: str, spaces: Sequence[SearchSpace], keys: Sequence[Key]) -> dict[Key, float]:
    by_domain: dict[str, list[int]] = defaultdict(list)
    for domain, passage_id in keys:
        by_domain[domain].append(passage_id)
    scores: dict[Key, float] = {}
    for space in spaces:
        ids = by_domain.get(space.domain, [])
        if ids:
            scores.update(
                ((space.domain, i), float(s)) for i, s in zip(ids, space.lexical.scores(text, ids), strict=True)
            )
    return scores


def candidates(
    query: npt.NDArray[np.float32],
    text: str,
    spaces: Sequence[SearchSpace],
    k: int,
    mode: str = "dense",
    fusion: Fusion | None = None,
) -> list[Candidate]:
    """The k best passages for the mode, best first."""
    if mode == "dense":
        return nearest(query, spaces, k)
    if mode == "bm25":
        return lexical(query, text, spaces, k)
    if mode == "hybrid":
        return fused(query, text, spaces, k, fusion or Fusion())
    raise ValueError(f"unknown retrieval mode {mode!r} (known: {', '.join(RETRIEVAL_MODES)})")


def mmr(
    query: npt.NDArray[np.float32],
    candidates: Sequence[Candidate],
    k: int,
    lam: float,
    relevance: npt.NDArray[np.float64] | None = None,
) -> list[Candidate]:
    """Maximal marginal relevance: greedily pick lam*rel(d) - (1-lam)*max sim(d, picked).

    Similarity is the cosine of unit vectors; relevance is the cosine to the query unless given (the other
    modes pass their own scores, normalised to 0..1). With lam = 1 this is the candidates' own order.
    """
    if lam >= 1.0 or len(candidates) <= 1:
        return list(candidates[:k])
    matrix = np.vstack([c.vector for c in candidates])
    to_query = matrix @ query if relevance is None else relevance
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


def _unit_scores(pool: Sequence[Candidate]) -> npt.NDArray[np.float64]:
    scores = np.array([c.score for c in pool], dtype=np.float64)
    spread = scores.max() - scores.min() if len(scores) else 0.0
    return (scores - scores.min()) / spread if spread > 0 else np.zeros(len(scores))


def search(
    query: npt.NDArray[np.float32],
    spaces: Sequence[SearchSpace],
    k: int,
    mmr_lambda: float = 1.0,
    mmr_candidates: int = 20,
    *,
    text: str = "",
    mode: str = "dense",
    fusion: Fusion | None = None,
) -> list[Hit]:
    """Top-k hits, best first. `text` is the question (the lexical side reads it), `query` its embedding.

    MMR (if on) decides *which* passages; they are still shown and prompted in the mode's order, so that rank 1
    is always the closest (dense) or the best-scoring (bm25, hybrid) of them."""
    mmr_on = mmr_lambda < 1.0
    pool = candidates(query, text, spaces, max(k, mmr_candidates) if mmr_on else k, mode, fusion)
    relevance = None if mode == "dense" else _unit_scores(pool)
    chosen = mmr(query, pool, k, mmr_lambda, relevance)
    if mode == "dense":
        chosen.sort(key=lambda c: c.distance)
    else:
        chosen.sort(key=lambda c: (-c.score, c.domain, c.passage.path, c.passage.id))
    return [
        Hit(
            rank=rank,
            passage=c.passage,
            distance=c.distance,
            domain=c.domain,
            score=c.score,
            dense_rank=c.dense_rank,
            lexical_rank=c.lexical_rank,
        )
        for rank, c in enumerate(chosen, start=1)
    ]


def within_threshold(hits: Sequence[Hit], max_distance: float) -> list[Hit]:
    """The hits close enough to be evidence; an empty result means the documents do not cover the question."""
    return [hit for hit in hits if hit.distance <= max_distance]
