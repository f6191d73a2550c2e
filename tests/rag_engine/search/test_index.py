"""FAISS index: true Euclidean distances (checked against numpy), add/remove by id, and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag_engine.errors import IndexStoreError
from rag_engine.ingest.storage import atomic_write_bytes, load_domain_index, save_domain_index
from rag_engine.search.index import FaissIndex


def unit_rows(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_search_returns_euclidean_not_squared_distances_nearest_first() -> None:
    vectors = unit_rows(200, 16)
    ids = np.arange(1000, 1200, dtype=np.int64)
    index = FaissIndex(16)
    index.add(ids, vectors)
    query = unit_rows(1, 16, seed=1)
    distances, found = index.search(query, 5)
    expected = np.linalg.norm(vectors - query, axis=1)
    order = np.argsort(expected)[:5]
    assert found[0].tolist() == ids[order].tolist()
    np.testing.assert_allclose(distances[0], expected[order], rtol=1e-5, atol=1e-6)
    assert list(distances[0]) == sorted(distances[0])


def test_distance_to_itself_is_zero_and_to_opposite_is_two() -> None:
    vector = unit_rows(1, 8)
    index = FaissIndex(8)
    index.add([7, 8], np.vstack([vector, -vector]))
    distances, ids = index.search(vector, 2)
    assert ids[0].tolist() == [7, 8]
    np.testing.assert_allclose(distances[0], [0.0, 2.0], atol=1e-3)


def test_remove_by_id_and_reconstruct_vectors() -> None:
    vectors = unit_rows(10, 8)
    index = FaissIndex(8)
    index.add(list(range(10)), vectors)
    assert index.remove([3, 4, 99]) == 2
    assert len(index) == 8
    _, ids = index.search(vectors[3], 8)
    assert 3 not in ids[0].tolist() and 4 not in ids[0].tolist()
    np.testing.assert_allclose(index.vectors([5, 0]), vectors[[5, 0]])


def test_k_larger_than_the_index_and_empty_index() -> None:
    index = FaissIndex(4)
    distances, ids = index.search(unit_rows(1, 4), 3)
    assert distances.shape == (1, 0) and ids.shape == (1, 0)
    index.add([1], unit_rows(1, 4))
    assert index.search(unit_rows(1, 4), 3)[1].tolist() == [[1]]


def test_wrong_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="dimension 4"):
        FaissIndex(4).add([1], unit_rows(1, 5))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vectors = unit_rows(20, 8)
    index = FaissIndex(8)
    index.add(list(range(20)), vectors)
    path = tmp_path / "indexes" / "d.npz"
    save_domain_index(path, index, {"hello": ["world"]})
    loaded, meta = load_domain_index(path)
    assert meta == {"hello": ["world"]}
    assert len(loaded) == 20 and loaded.dimension == 8
    query = unit_rows(1, 8, seed=3)
    np.testing.assert_array_equal(loaded.search(query, 4)[1], index.search(query, 4)[1])
    assert [p.name for p in path.parent.iterdir()] == ["d.npz"]  # no temp files left behind


def test_a_damaged_index_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(b"not an index")
    with pytest.raises(IndexStoreError, match="unreadable"):
        load_domain_index(path)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def disk_gone(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr("rag_engine.ingest.storage.os.fsync", disk_gone)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
