"""Lab experiment "retriever" (a bad retriever): the weak word-hashing embedder on its own, the run on the fake
models, and the acceptance run with the real models on the shipped knowledge: the weak embedder's hit@k on
the domain's questions is lower than the real one's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag_engine.engine import Engine
from rag_engine.lab import run_experiment
from rag_engine.lab.retriever import RetrieverReport, WordHashEmbedder, run_retriever
from rag_engine.seams import Embedder

TEXTS = ["The zorblat eats blue moss.", "the ZORBLAT eats blue moss", "Basalt columns formed from lava.", ""]


def test_the_weak_embedder_is_a_deterministic_embedder_of_unit_rows() -> None:
    weak: Embedder = WordHashEmbedder(48)
    vectors = weak.embed(TEXTS)
    assert vectors.shape == (4, 48) and vectors.dtype == np.float32 and weak.dimension == 48
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-6)
    assert not vectors[3].any()  # no words: the zero vector, not a division by zero
    np.testing.assert_array_equal(vectors, WordHashEmbedder(48).embed(TEXTS))
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # the same words: the same vector
    assert float(vectors[0] @ vectors[2]) < 0.9


def test_the_run_on_the_fake_models(fake_engine: Engine) -> None:
    report = run_retriever(
        fake_engine, fake_engine.check("What does the zorblat eat?", "zoology", k=2), fake_engine.config.lab
    )
    by_name = run_experiment(fake_engine, "retriever", "What does the zorblat eat?", "zoology")
    assert isinstance(by_name, RetrieverReport) and by_name.experiment == "retriever"
    assert report.weak.embedder == "word-hashing-64" and report.real.embedder == fake_engine.embedder().name
    assert len(report.real.passages) == len(report.weak.passages) == 2
    assert report.real.hits_at == {} and "questions.jsonl" in report.questions_note  # the folder has none
    assert json.loads(json.dumps(report.to_dict()))["k"] == 2
    assert report.png().startswith(b"\x89PNG")


@pytest.mark.real_models
def test_the_weak_retriever_finds_the_right_file_less_often(real_engine: Engine) -> None:
    question = "Which boy did Jenner use to test cowpox as protection against smallpox?"
    report = run_retriever(real_engine, real_engine.check(question, "medicine", k=2), real_engine.config.lab)
    assert set(report.real.hits_at) == set(report.weak.hits_at) == {1, 2}
    questions = report.real.hits_at[2][1]
    assert questions >= 12 and report.weak.hits_at[2][1] == questions
    assert report.weak.hit_rate(2) < report.real.hit_rate(2)
    assert report.weak.hit_rate(1) <= report.weak.hit_rate(2)
    assert report.real.passages[0][0] == "jenner-smallpox-vaccine.md" and report.real.answer
    assert len(report.png()) < 1_000_000
