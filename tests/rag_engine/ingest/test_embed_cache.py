"""The embedding cache: round trips by text, misses, duplicates, dimension, model and backend scoping,
persistence, segments shared between instances and merged, and unreadable segments set aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.ingest.embed_cache import MAX_SEGMENTS, EmbeddingCache, model_folder_name

MODEL = "all-MiniLM-L6-v2"


def rows(count: int, dimension: int = 8, seed: int = 0) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)


def segments(cache: EmbeddingCache) -> list[Path]:
    return sorted(cache.folder.glob("*.npz"))


def test_put_then_get_returns_each_vector_by_position(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    vectors = rows(3)
    cache.put(["alpha", "beta", "gamma"], vectors)
    found = cache.get(["gamma", "alpha", "beta"])
    assert sorted(found) == [0, 1, 2]
    np.testing.assert_array_equal(found[0], vectors[2])
    np.testing.assert_array_equal(found[1], vectors[0])
    np.testing.assert_array_equal(found[2], vectors[1])
    assert found[0].dtype == np.float32
    assert len(cache) == 3


def test_missing_texts_are_absent_not_errors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    assert cache.get(["never seen"]) == {}
    assert cache.get([]) == {}
    cache.put(["alpha"], rows(1))
    found = cache.get(["unknown", "alpha", "Alpha", "alpha "])
    assert list(found) == [1]  # keyed by the exact text: case and whitespace matter


def test_the_same_text_twice_in_one_get_is_found_at_both_positions(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    vectors = rows(1)
    cache.put(["alpha"], vectors)
    found = cache.get(["alpha", "other", "alpha"])
    assert sorted(found) == [0, 2]
    np.testing.assert_array_equal(found[0], vectors[0])
    np.testing.assert_array_equal(found[2], vectors[0])


def test_put_replaces_and_rejects_mismatched_lengths(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    cache.put(["alpha"], rows(1, seed=1))
    newer = rows(1, seed=2)
    cache.put(["alpha"], newer)
    np.testing.assert_array_equal(cache.get(["alpha"])[0], newer[0])
    assert len(cache) == 1
    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        cache.put(["a", "b"], rows(1))


def test_a_vector_of_another_dimension_is_absent(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    cache.put(["short"], rows(1, dimension=4))
    cache.put(["long"], rows(1, dimension=16))
    assert list(cache.get(["short", "long"], dimension=4)) == [0]
    assert list(cache.get(["short", "long"], dimension=16)) == [1]
    assert cache.get(["short", "long"], dimension=8) == {}
    both = cache.get(["short", "long"])
    assert [len(both[0]), len(both[1])] == [4, 16]


def test_vectors_are_scoped_by_model_under_a_shared_root(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first = EmbeddingCache(root, "model-a")
    second = EmbeddingCache(root, "/models/model-a")  # same last name, another model
    assert first.folder != second.folder
    a_vectors, b_vectors = rows(1, seed=1), rows(1, seed=2)
    first.put(["shared text"], a_vectors)
    assert second.get(["shared text"]) == {}
    assert len(second) == 0
    second.put(["shared text"], b_vectors)
    np.testing.assert_array_equal(first.get(["shared text"])[0], a_vectors[0])
    np.testing.assert_array_equal(second.get(["shared text"])[0], b_vectors[0])
    assert len(first) == len(second) == 1


def test_vectors_are_scoped_by_backend_and_torch_keeps_the_model_folder(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    torch = EmbeddingCache(root, MODEL)
    int8 = EmbeddingCache(root, MODEL, "onnx-int8-avx2")
    other_kernels = EmbeddingCache(root, MODEL, "onnx-int8-avx512_vnni")
    assert torch.folder.name == model_folder_name(MODEL)  # caches written before backends existed stay valid
    assert len({torch.folder, int8.folder, other_kernels.folder, EmbeddingCache(root, MODEL, "onnx").folder}) == 4
    torch.put(["shared text"], rows(1, seed=1))
    assert int8.get(["shared text"]) == {} and other_kernels.get(["shared text"]) == {}
    int8.put(["shared text"], rows(1, seed=2))
    reopened_int8, reopened_torch = EmbeddingCache(root, MODEL, "onnx-int8-avx2"), EmbeddingCache(root, MODEL)
    np.testing.assert_array_equal(reopened_int8.get(["shared text"])[0], rows(1, seed=2)[0])
    np.testing.assert_array_equal(reopened_torch.get(["shared text"])[0], rows(1, seed=1)[0])


def test_vectors_survive_a_new_instance(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "cache"  # the folders are created on the first write
    vectors = rows(2)
    EmbeddingCache(root, MODEL).put(["alpha", "beta"], vectors)
    reader = EmbeddingCache(root, MODEL)
    found = reader.get(["beta", "alpha"])
    np.testing.assert_array_equal(found[0], vectors[1])
    np.testing.assert_array_equal(found[1], vectors[0])
    assert len(reader) == 2


def test_an_instance_sees_what_another_wrote_after_it_started(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    watcher, asker = EmbeddingCache(root, MODEL), EmbeddingCache(root, MODEL)
    assert asker.get(["alpha"]) == {}
    vectors = rows(1)
    watcher.put(["alpha"], vectors)
    np.testing.assert_array_equal(asker.get(["alpha"])[0], vectors[0])


def test_many_segments_are_merged_into_one_without_losing_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache", MODEL)
    vectors = rows(MAX_SEGMENTS + 1)
    for i in range(MAX_SEGMENTS + 1):
        cache.put([f"text {i}"], vectors[i : i + 1])
    assert len(segments(cache)) == 1
    reopened = EmbeddingCache(tmp_path / "cache", MODEL)
    found = reopened.get([f"text {i}" for i in range(MAX_SEGMENTS + 1)])
    assert sorted(found) == list(range(MAX_SEGMENTS + 1))
    np.testing.assert_array_equal(np.vstack([found[i] for i in sorted(found)]), vectors)


def test_a_garbage_segment_is_moved_aside_and_the_cache_works_without_it(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writer = EmbeddingCache(root, MODEL)
    writer.put(["alpha"], rows(1))
    (segment,) = segments(writer)
    garbage = b"this is not a segment\x00\xff" * 200
    segment.write_bytes(garbage)
    cache = EmbeddingCache(root, MODEL)
    assert cache.get(["alpha"]) == {}
    assert len(cache) == 0
    aside = segment.with_name(segment.name + ".corrupt")
    assert aside.read_bytes() == garbage  # kept for a post-mortem, no longer read
    assert not segment.exists()
    vectors = rows(1, seed=3)
    cache.put(["alpha"], vectors)
    np.testing.assert_array_equal(EmbeddingCache(root, MODEL).get(["alpha"])[0], vectors[0])


def test_a_truncated_segment_is_moved_aside(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writer = EmbeddingCache(root, MODEL)
    writer.put(["alpha"], rows(1))
    (segment,) = segments(writer)
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 2])
    cache = EmbeddingCache(root, MODEL)
    assert cache.get(["alpha"]) == {}
    assert segment.with_name(segment.name + ".corrupt").exists()
