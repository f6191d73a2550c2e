"""Retrieval: kNN across domains checked against numpy, MMR re-ranking, and the distance threshold."""

from __future__ import annotations

import numpy as np

from rag_engine.records import Hit, Passage
from rag_engine.search.index import FaissIndex
from rag_engine.search.lexical import Bm25Index
from rag_engine.search.retrieval import SearchSpace, search, within_threshold


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def space(domain: str, vectors: dict[int, np.ndarray]) -> SearchSpace:
    index = FaissIndex(len(next(iter(vectors.values()))))
    index.add(list(vectors), np.vstack(list(vectors.values())))
    passages = {i: Passage(id=i, path=f"{domain}-{i}.md", text=f"text {i}", line_start=1, line_end=1) for i in vectors}
    return SearchSpace(domain, index, passages, Bm25Index.build({i: p.text for i, p in passages.items()}))


def test_search_over_several_domains_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    a = {i: unit(list(rng.standard_normal(12))) for i in range(1, 40)}
    b = {i: unit(list(rng.standard_normal(12))) for i in range(100, 140)}
    query = unit(list(rng.standard_normal(12)))
    hits = search(query, [space("a", a), space("b", b)], 6)
    everything = {**a, **b}
    expected = sorted(everything, key=lambda i: float(np.linalg.norm(everything[i] - query)))[:6]
    assert [h.passage.id for h in hits] == expected
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5, 6]
    for hit in hits:
        assert abs(hit.distance - float(np.linalg.norm(everything[hit.passage.id] - query))) < 1e-5
        assert hit.domain == ("a" if hit.passage.id < 100 else "b")


def test_mmr_prefers_a_diverse_passage_over_a_near_duplicate() -> None:
    query = unit([1, 0, 0])
    vectors = {
        1: unit([1, 0.10, 0]),
        2: unit([1, 0.11, 0.001]),  # almost the same as 1
        3: unit([1, 0, 0.5]),  # a bit farther, but says something else
    }
    plain = search(query, [space("d", vectors)], 2, mmr_lambda=1.0)
    diverse = search(query, [space("d", vectors)], 2, mmr_lambda=0.5)
    assert [h.passage.id for h in plain] == [1, 2]
    assert sorted(h.passage.id for h in diverse) == [1, 3]
    # still shown nearest first with true distances
    assert [h.distance for h in diverse] == sorted(h.distance for h in diverse)


def test_mmr_with_lambda_one_is_plain_knn() -> None:
    rng = np.random.default_rng(9)
    vectors = {i: unit(list(rng.standard_normal(8))) for i in range(1, 30)}
    query = unit(list(rng.standard_normal(8)))
    one = search(query, [space("d", vectors)], 5, mmr_lambda=1.0)
    assert [h.passage.id for h in one] == [h.passage.id for h in search(query, [space("d", vectors)], 5)]


def test_threshold_keeps_only_close_hits() -> None:
    passage = Passage(id=1, path="p.md", text="t", line_start=1, line_end=1)
    hits = [Hit(1, passage, 0.7, "d"), Hit(2, passage, 1.1, "d"), Hit(3, passage, 1.4, "d")]
    assert [h.distance for h in within_threshold(hits, 1.1)] == [0.7, 1.1]
    assert within_threshold(hits, 0.5) == []
