"""Fusing two rankings of the same passages into one: a weighted blend of normalised scores, or reciprocal rank
fusion.

`blend` min-max normalises each retriever's scores over the candidates and mixes them, `weight` for the dense
side (cosine similarity) and the rest for the lexical side (BM25); both scores must be known for every
candidate (`retrieval.py` computes the missing ones exactly). `reciprocal_rank` (Cormack et al., 2009) needs
ranks only: each list adds 1 / (k + rank) for the items it holds. The blend is the default because it kept more of
each score's information on SciFact (benchmarks/results/eval_scifact_train.json: the weight was chosen on
one half of the train queries and checked on the other). What the candidates are, and how they become hits, is
`retrieval.py`'s business; this module is arithmetic over keys.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rag_engine.config import FUSION_METHODS, RetrievalConfig

K = TypeVar("K", bound=Hashable)

__all__ = ["FUSION_METHODS", "Fusion", "blend", "min_max", "reciprocal_rank"]


@dataclass(frozen=True)
class Fusion:
    """How `hybrid` mode fuses: the method, its parameter, and how deep each retriever's candidate list goes."""

    method: str = "blend"
    weight: float = 0.55
    rrf_k: float = 60.0
    candidates: int = 100

    @classmethod
    def from_config(cls, config: RetrievalConfig) -> Fusion:
        return cls(config.fusion, config.blend_weight, config.rrf_k, config.fusion_candidates)

    def fuse(
        self,
        dense: Sequence[K],
        lexical: Sequence[K],
        dense_scores: Mapping[K, float],
        lexical_scores: Mapping[K, float],
    ) -> dict[K, float]:
        """Fused scores of every key of the two ranked lists (best first); the score maps are used by the
        blend and must cover every key of both lists."""
        if self.method == "rrf":
            return reciprocal_rank([dense, lexical], self.rrf_k)
        keys = dict.fromkeys([*dense, *lexical])
        return blend({k: dense_scores[k] for k in keys}, {k: lexical_scores[k] for k in keys}, self.weight)


def min_max(scores: Mapping[K, float]) -> dict[K, float]:
    """Scores mapped linearly onto 0..1 (best = 1). All equal means none stands out: all 0."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 0.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def blend(dense: Mapping[K, float], lexical: Mapping[K, float], weight: float) -> dict[K, float]:
    """weight · minmax(dense) + (1 − weight) · minmax(lexical), over the keys of `dense` (which `lexical` must
    cover too)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the blend weight must be between 0 and 1, not {weight}")
    dense_norm, lexical_norm = min_max(dense), min_max({key: lexical[key] for key in dense})
    return {key: weight * dense_norm[key] + (1.0 - weight) * lexical_norm[key] for key in dense}


def reciprocal_rank(rankings: Sequence[Sequence[K]], k: float = 60.0) -> dict[K, float]:
    """Reciprocal rank fusion: each ranking (best first) adds 1 / (k + rank) to the score of each of its keys."""
    if k < 0:
        raise ValueError(f"the RRF constant must be at least 0, not {k}")
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused
