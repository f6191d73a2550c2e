"""The approximate (IVF) index against exact search on the same vectors: recall, true distances, remove by id,
retraining, copies, serialisation, and when a domain's index switches kind (`fitted`). Real FAISS, synthetic
clustered vectors (a few thousand, so each test takes well under a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.config import ConfigError, load_config
from rag_engine.ingest.storage import load_domain_index, save_domain_index
from rag_engine.search.approximate import (
    EXACT_BELOW_SHARE,
    IvfIndex,
    fitted,
    index_from_bytes,
    layout,
    lists_for,
    probes_for,
)
from rag_engine.search.index import FaissIndex

DIMENSION = 48
Matrix = npt.NDArray[np.float32]


def clustered(count: int, seed: int = 0, centres: int = 200) -> Matrix:
    """Unit vectors around a couple of hundred directions, like embeddings of many topics (random unit vectors
    have no neighbourhoods at all, which no approximate index is made for). The centres depend on nothing but
    `centres`, so corpora and queries drawn with different seeds share them. The clusters overlap enough that
    scanning too few lists shows: at 4,000 vectors, 2 lists of 102 give recall@10 ≈ 0.95, 8 ≈ 0.989."""
    directions = np.random.default_rng(1234).standard_normal((centres, DIMENSION))
    rng = np.random.default_rng(seed)
    rows = directions[rng.integers(0, centres, count)] + 0.8 * rng.standard_normal((count, DIMENSION))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def scattered_ids(count: int, seed: int = 0) -> npt.NDArray[np.int64]:
    """Distinct ids spread over 63 bits, as passage ids are."""
    rng = np.random.default_rng(seed)
    return np.unique(rng.integers(1, 2**62, count * 2, dtype=np.int64))[:count]


def recall_at(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    hits = sum(len(set(a[:k].tolist()) & set(b[:k].tolist())) for a, b in zip(found, truth, strict=True))
    return hits / (k * len(truth))


@pytest.fixture(scope="module")
def corpus() -> tuple[npt.NDArray[np.int64], Matrix, Matrix]:
    return scattered_ids(4000), clustered(4000), clustered(200, seed=1)


@pytest.fixture(scope="module")
def built(corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix]) -> IvfIndex:
    ids, vectors, _ = corpus
    return IvfIndex.build(ids, vectors)


def exact_top(ids: npt.NDArray[np.int64], vectors: Matrix, queries: Matrix, k: int) -> npt.NDArray[np.int64]:
    index = FaissIndex(DIMENSION)
    index.add(ids, vectors)
    return index.search(queries, k)[1]


def test_recall_at_10_against_exact_search_is_at_least_99_percent(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex
) -> None:
    ids, vectors, queries = corpus
    assert built.lists == lists_for(4000) > 1 and built.probes == probes_for(built.lists) < built.lists
    _, found = built.search(queries, 10)
    assert recall_at(found, exact_top(ids, vectors, queries, 10), 10) >= 0.99


def test_distances_are_true_euclidean_distances_nearest_first(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex
) -> None:
    ids, vectors, queries = corpus
    distances, found = built.search(queries[:20], 10)
    row_of = {int(i): n for n, i in enumerate(ids)}
    for query, row_distances, row_ids in zip(queries[:20], distances, found, strict=True):
        expected = np.linalg.norm(vectors[[row_of[int(i)] for i in row_ids]] - query, axis=1)
        np.testing.assert_allclose(row_distances, expected, rtol=1e-5, atol=1e-5)
        assert list(row_distances) == sorted(row_distances)
    np.testing.assert_allclose(built.vectors(ids[[5, 0]]), vectors[[5, 0]])


def test_remove_by_id_takes_passages_out_of_results_and_len_counts_live_ones(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex
) -> None:
    ids, vectors, queries = corpus
    index = built.copy()
    _, before = index.search(queries[:10], 5)
    gone = np.unique(before)
    assert index.remove(np.concatenate([gone, gone[:3], [987654321]])) == len(gone)  # repeats, unknown ids
    assert len(index) == len(ids) - len(gone)
    _, after = index.search(queries[:10], 10)
    assert not set(after.ravel().tolist()) & set(gone.tolist())
    kept = np.isin(ids, gone, invert=True)
    assert recall_at(after, exact_top(ids[kept], vectors[kept], queries[:10], 10), 10) >= 0.99
    with pytest.raises(RuntimeError):
        index.vectors(gone[:1])
    index.add(gone, vectors[np.isin(ids, gone)])  # a passage that comes back is found again
    assert len(index) == len(ids) and index.search(queries[:10], 5)[1].tolist() == before.tolist()


def test_copy_is_independent_of_the_original(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex
) -> None:
    _, _, queries = corpus
    expected = built.search(queries, 10)
    update = built.copy()
    update.remove(expected[1][:, 0])
    update.add(scattered_ids(50, seed=9), clustered(50, seed=9))
    assert len(built) == 4000 and len(update) != len(built)
    np.testing.assert_array_equal(built.search(queries, 10)[1], expected[1])
    assert not set(update.search(queries, 10)[1].ravel().tolist()) & set(expected[1][:, 0].tolist())


def test_serialisation_round_trip_keeps_kind_lists_probes_and_results(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex, tmp_path: Path
) -> None:
    _, _, queries = corpus
    loaded = index_from_bytes(built.to_bytes())
    assert isinstance(loaded, IvfIndex)
    assert (loaded.lists, loaded.probes, len(loaded), loaded.layout) == (built.lists, built.probes, 4000, built.layout)
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], built.search(queries, 10)[1])
    # Through a domain's index file too: the file says which kind it holds.
    path = tmp_path / "indexes" / "d.npz"
    save_domain_index(path, built, {"version": 1})
    from_file, meta = load_domain_index(path)
    assert isinstance(from_file, IvfIndex) and meta == {"version": 1} and from_file.layout == built.layout
    exact = FaissIndex(DIMENSION)
    exact.add([1, 2], clustered(2))
    assert isinstance(index_from_bytes(exact.to_bytes()), FaissIndex)  # files from before IVF load as they were
    with pytest.raises(ValueError, match="not an exact index"):
        FaissIndex.from_bytes(built.to_bytes())
    with pytest.raises(ValueError, match="not an IVF index"):
        IvfIndex.from_bytes(exact.to_bytes())


def test_items_hold_every_id_and_vector_of_both_kinds(corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix]) -> None:
    ids, vectors, _ = corpus
    index = IvfIndex.build(ids[:500], vectors[:500])
    index.remove(ids[:100])
    exact = FaissIndex(DIMENSION)
    exact.add(ids[100:500], vectors[100:500])
    for kind in (index, exact):
        held, rows = kind.items()
        order = np.argsort(held)
        expected = np.argsort(ids[100:500])
        np.testing.assert_array_equal(held[order], ids[100:500][expected])
        np.testing.assert_array_equal(rows[order], vectors[100:500][expected])


def test_fitted_switches_kind_at_the_threshold_with_hysteresis() -> None:
    # A thousand vectors: fewer topics than the 4,000 of the other tests have (5 vectors a topic is noise).
    ids, vectors, queries = scattered_ids(1000), clustered(1000, centres=40), clustered(200, seed=1, centres=40)
    threshold = 1000
    exact = FaissIndex(DIMENSION)
    exact.add(ids[: threshold - 1], vectors[: threshold - 1])
    assert fitted(exact, threshold) is exact
    exact.add(ids[threshold - 1 : threshold], vectors[threshold - 1 : threshold])
    moved = fitted(exact, threshold)
    assert isinstance(moved, IvfIndex) and len(moved) == threshold and layout(moved) != layout(exact)
    assert recall_at(moved.search(queries, 10)[1], exact.search(queries, 10)[1], 10) >= 0.99
    # Below the threshold but not below half of it: still approximate (no flapping around the threshold).
    low = int(threshold * EXACT_BELOW_SHARE)
    moved.remove(ids[low:threshold])
    assert fitted(moved, threshold) is moved
    moved.remove(ids[low - 1 : low])
    back = fitted(moved, threshold)
    assert isinstance(back, FaissIndex) and len(back) == low - 1
    expected = exact_top(ids[: low - 1], vectors[: low - 1], queries, 10)
    np.testing.assert_array_equal(back.search(queries, 10)[1], expected)


def test_a_domain_that_grew_fourfold_is_retrained_and_keeps_its_results(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix],
) -> None:
    ids, vectors, queries = corpus
    small = IvfIndex.build(ids[:1000], vectors[:1000])
    small.add(ids[1000:1100], vectors[1000:1100])
    assert fitted(small, 500) is small  # a little growth: the lists still fit
    small.add(ids[1100:], vectors[1100:])
    retrained = fitted(small, 500)
    assert isinstance(retrained, IvfIndex) and retrained is not small
    assert retrained.lists == lists_for(4000) > small.lists and retrained.layout != small.layout
    assert sorted(retrained.items()[0].tolist()) == sorted(ids.tolist())
    assert recall_at(retrained.search(queries, 10)[1], exact_top(ids, vectors, queries, 10), 10) >= 0.99


def test_more_than_the_scanned_lists_hold_ends_in_minus_one_at_infinity(
    corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix], built: IvfIndex
) -> None:
    ids, _, queries = corpus
    distances, found = built.search(queries[:3], 3000)
    assert found.shape == (3, 3000)
    for row_distances, row_ids in zip(distances, found, strict=True):
        held = row_ids >= 0
        assert 10 < held.sum() < 3000 and not held[held.sum() :].any()  # the scanned lists, then padding
        assert set(row_ids[held].tolist()) <= set(ids.tolist()) and len(set(row_ids[held].tolist())) == held.sum()
        assert np.isinf(row_distances[~held]).all() and np.isfinite(row_distances[held]).all()


def test_search_of_a_tiny_or_empty_index(corpus: tuple[npt.NDArray[np.int64], Matrix, Matrix]) -> None:
    ids, vectors, queries = corpus
    index = IvfIndex.build(ids[:3], vectors[:3])
    assert index.lists == 1
    distances, found = index.search(queries[:2], 10)
    assert found.shape == (2, 3) and set(found[0].tolist()) == set(ids[:3].tolist())
    assert np.isfinite(distances).all()
    index.remove(ids[:3])
    assert len(index) == 0 and index.search(queries[:1], 5)[1].shape == (1, 0)
    with pytest.raises(ValueError, match="dimension"):
        index.add([1], np.zeros((1, DIMENSION + 1), np.float32))
    with pytest.raises(ValueError, match="at least one vector"):
        IvfIndex.build([], np.zeros((0, DIMENSION), np.float32))


def test_the_threshold_is_a_checked_setting(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[index]\napproximate_above_passages = 1200\n", encoding="utf-8")
    assert load_config(path).index.approximate_above_passages == 1200
    path.write_text("[index]\napproximate_above_passages = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="approximate_above_passages"):
        load_config(path)
