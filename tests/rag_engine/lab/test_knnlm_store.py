"""The kNN-LM datastore's cache and its p_kNN arithmetic.

The cache tests read a copy of two shipped history documents with the small bundled model (SmolLM2, as the
attention tests) and a 200-token cap; the distribution tests use a hand-made store and need no model.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.explain.attention import AttentionModel
from rag_engine.generate.generation import gguf_path
from rag_engine.lab.knnlm_generate import knn_distribution
from rag_engine.lab.knnlm_store import Datastore, load_or_build
from tests.conftest import SHIPPED_KNOWLEDGE

CAP = 200


def small_store(keys: list[list[float]], values: list[int]) -> Datastore:
    count = len(values)
    return Datastore(
        domain="d",
        key="k",
        files=("a.md", "b.md"),
        keys=np.array(keys, dtype=np.float32),
        values=np.array(values, dtype=np.int64),
        tokens=np.zeros(count, dtype=np.int64),
        passage_ids=np.arange(count, dtype=np.int64),
        positions=np.arange(count, dtype=np.int32),
        file_index=np.array([i % 2 for i in range(count)], dtype=np.int32),
        cap=count,
        domain_tokens=count,
        domain_passages=count,
        passages_kept=count,
        build_seconds=0.0,
    )


def test_p_knn_is_a_softmax_over_negative_squared_distances_summed_per_value_token() -> None:
    store = small_store([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], [7, 3, 7, 9])
    knn = knn_distribution(store, store.search_index(), np.zeros(2, dtype=np.float32), 3, 2.0, 10)
    assert list(knn.rows) == [0, 1, 2]
    np.testing.assert_allclose(knn.distances, [0.0, 1.0, 4.0])  # squared L2
    weights = np.exp(-np.array([0.0, 1.0, 4.0]) / 2.0)
    weights /= weights.sum()
    expected = np.zeros(10)
    expected[7] = weights[0] + weights[2]
    expected[3] = weights[1]
    np.testing.assert_allclose(knn.probabilities, expected)
    # Asking for more neighbours than entries uses them all.
    every = knn_distribution(store, store.search_index(), np.zeros(2, dtype=np.float32), 16, 2.0, 10)
    assert len(every.rows) == 4 and every.probabilities.sum() == pytest.approx(1.0)
    # Far away, the distances are large: the shift keeps the softmax from underflowing to nothing.
    far = knn_distribution(store, store.search_index(), np.full(2, 1e4, dtype=np.float32), 2, 1.0, 10)
    assert far.probabilities.sum() == pytest.approx(1.0) and far.probabilities[9] == pytest.approx(1.0)


@pytest.mark.real_models
def test_the_datastore_is_cached_and_rebuilt_when_the_domain_changes(shipped_config: Config, tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    for name in ("eiffel-tower.md", "rosetta-stone.md"):
        (knowledge / "history").mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED_KNOWLEDGE / "history" / name, knowledge / "history" / name)
    generation = dataclasses.replace(shipped_config.generation, model="smollm2")
    config = dataclasses.replace(shipped_config, generation=generation).with_paths(
        knowledge_dir=knowledge, data_dir=tmp_path / "data"
    )
    engine = Engine(config)
    source = engine.attention_model()
    assert isinstance(source, AttentionModel)

    def datastore() -> tuple[Datastore, bool, Path]:
        passages = list(engine.snapshot("history").space.passages.values())
        with source.borrowed() as (tokenizer, model):
            store, origin = load_or_build(tokenizer, model, "history", passages, CAP, gguf_path(generation),
                                          tmp_path / "data")  # fmt: skip
        return store, origin.built, origin.path

    first, built, path = datastore()
    assert built and path.is_file() and path.is_relative_to(tmp_path / "data" / "knnlm" / "history")
    assert first.size == CAP and first.capped and first.keys.dtype == np.float32
    assert first.files == ("eiffel-tower.md",)  # the stable order: by path, so the cap cuts in the first file
    assert list(first.positions[:3]) == [0, 1, 2]

    again, built_again, same_path = datastore()
    assert not built_again and same_path == path
    for name in ("keys", "values", "tokens", "passage_ids", "positions", "file_index"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))

    # A changed passage is another domain: built again, and the old file goes.
    eiffel = knowledge / "history" / "eiffel-tower.md"
    eiffel.write_text("The tower was painted green in 1899.\n\n" + eiffel.read_text(encoding="utf-8"), encoding="utf-8")
    changed, built_changed, new_path = datastore()
    assert built_changed and new_path != path and new_path.is_file() and not path.exists()
    assert not np.array_equal(changed.values, first.values)

    # A damaged cache file is rebuilt rather than trusted.
    new_path.write_bytes(b"not an npz")
    _, rebuilt, _ = datastore()
    assert rebuilt
