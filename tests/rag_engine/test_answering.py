"""The answer flow's own choices (`rag_engine/answering.py`); the flow end to end is in test_engine.py.

Here: which encoder scores the evidence sentences. With an int8 index, `[evidence] full_precision` gives them the
float32 ONNX export of the same model. Fast tests with fake embedders check the wiring; the real test checks, on
the shipped cooking questions, that the prompts are then the ones torch builds, where int8 throughout changes some.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag_engine.config import Config, EmbeddingConfig, load_config
from rag_engine.engine import Engine
from rag_engine.evaluation.domains import load_questions
from rag_engine.generate.backends import make_generator
from rag_engine.generate.generation import Generator
from rag_engine.ingest.embedding import sentence_embedding
from rag_engine.seams import Embedder
from tests.conftest import REPO, SHIPPED_KNOWLEDGE
from tests.fakes import EchoGenerator, HashingEmbedder


def with_evidence(config: Config, backend: str, full_precision: bool = True) -> Config:
    return dataclasses.replace(
        config,
        embedding=dataclasses.replace(config.embedding, backend=backend),
        evidence=dataclasses.replace(config.evidence, full_precision=full_precision),
    )


@pytest.mark.parametrize(
    ("backend", "full_precision", "expected"),
    [("onnx-int8", True, "onnx"), ("onnx-int8", False, None), ("torch", True, None), ("onnx", True, None)],
)
def test_only_an_int8_index_gets_a_float32_sentence_encoder(
    backend: str, full_precision: bool, expected: str | None
) -> None:
    index = EmbeddingConfig(backend=backend, batch_size=7, export_dir="/somewhere")
    chosen = sentence_embedding(index, full_precision)
    if expected is None:
        assert chosen is None
    else:
        assert chosen == dataclasses.replace(index, backend=expected)  # same model, batch size and export folder


def test_the_sentence_encoder_scores_the_evidence_and_the_index_encoder_only_searches(config: Config) -> None:
    index, sentences = HashingEmbedder(), HashingEmbedder(name="the sentence encoder")
    engine = Engine(
        with_evidence(config, "onnx-int8"),
        embedder=lambda: index,
        sentence_embedder=lambda: sentences,
        generator=EchoGenerator,
    )
    answer = engine.answer("What does the zorblat eat?", "zoology")
    assert answer.covered and "blue moss" in answer.prompt
    # Evidence sentences are embedded as "file name: sentence": by the sentence encoder only.
    assert not any(text.startswith("zorblat: ") for call in index.calls for text in call)
    assert sentences.calls[0] == ["What does the zorblat eat?"]  # the question again, in the sentences' space
    assert any(text.startswith("zorblat: ") for call in sentences.calls[1:] for text in call)
    assert answer.models["evidence_embedding"] == "the sentence encoder"
    assert engine.models() == dict(answer.models)


def test_an_index_encoder_that_is_not_int8_scores_the_sentences_itself(config: Config) -> None:
    """The float32 sentence encoder is made only beside a real int8 encoder: a test's fake stays the only model."""
    index = HashingEmbedder()
    engine = Engine(with_evidence(config, "onnx-int8"), embedder=lambda: index, generator=EchoGenerator)
    answer = engine.answer("What does the zorblat eat?", "zoology")
    # Evidence sentences are embedded as "file name: sentence".
    assert any(text.startswith("zorblat: ") for call in index.calls for text in call)
    assert "evidence_embedding" not in answer.models


def test_an_engine_made_from_another_shares_its_sentence_encoder(config: Config) -> None:
    sentences = HashingEmbedder()
    first = Engine(
        with_evidence(config, "onnx-int8"),
        embedder=HashingEmbedder,
        sentence_embedder=lambda: sentences,
        generator=EchoGenerator,
    )
    second = first.with_config(first.config.with_paths(data_dir=Path(first.config.paths.data_dir) / "other"))
    second.answer("What does the zorblat eat?", "zoology")
    assert sentences.calls
    assert first.sentence_embedder() is second.sentence_embedder() is sentences


# -- the real thing ---------------------------------------------------------------------------------------------
class PromptRecorder:
    """The real generator's tokenizer and chat format (the prompt's budget is counted in its tokens), with the
    prompt recorded instead of generated from: what is compared here is what the model would read."""

    def __init__(self, real: Generator) -> None:
        self.real = real
        self.prompts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        self.prompts.append(prompt)
        yield "The documents do not say."


@pytest.mark.real_models
def test_an_int8_index_with_float32_sentences_builds_torchs_prompts(tmp_path: Path) -> None:
    shipped = load_config(REPO / "config.toml")
    assert shipped.embedding.backend == "onnx-int8" and shipped.evidence.full_precision  # the shipped default
    shutil.copytree(SHIPPED_KNOWLEDGE / "cooking", tmp_path / "knowledge" / "cooking")
    shipped = shipped.with_paths(knowledge_dir=tmp_path / "knowledge", data_dir=tmp_path / "data")
    recorder = PromptRecorder(make_generator(shipped.generation, shipped.prompt.system))
    questions = [item.question for item in load_questions(SHIPPED_KNOWLEDGE / "cooking" / "questions.jsonl")]

    def prompts(config: Config, index: Embedder | None = None) -> list[str]:
        engine = Engine(config, embedder=(lambda: index) if index else None, generator=lambda: recorder)
        recorder.prompts = []
        for question in questions:
            engine.answer(question, "cooking")
        if index is None:
            made.append(engine.embedder())
        return recorder.prompts

    made: list[Embedder] = []
    torch = prompts(with_evidence(shipped, "torch"))
    default = prompts(shipped)
    # A real int8 encoder handed in (as the server tests share one) still gets its float32 sentence encoder.
    assert prompts(shipped, made[-1]) == default
    int8_throughout = prompts(with_evidence(shipped, "onnx-int8", full_precision=False))
    assert len(torch) == len(default) == len(int8_throughout) >= 10
    same_as_torch = sum(a == b for a, b in zip(default, torch, strict=True))
    int8_same_as_torch = sum(a == b for a, b in zip(int8_throughout, torch, strict=True))
    # int8 retrieves a different fourth passage now and then, so not every prompt can match; the sentences'
    # own scores, though, must no longer be what moves them.
    assert same_as_torch >= len(torch) - 2, (same_as_torch, len(torch))
    assert int8_same_as_torch < same_as_torch, (int8_same_as_torch, same_as_torch)
