"""The first question of a process: the generator loads in the background while the question is embedded and
searched, its failure to load is raised where it is needed (with the same message as a load in the foreground),
and the RAG system prompt is evaluated as the model loads without changing any answer.

The timing itself is measured by `benchmarks/bench_cold_start.py`, never asserted here.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.answering import AnswerFlow
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import ModelError
from rag_engine.generate.backends import make_generator
from rag_engine.generate.generation import Generator, LlamaGenerator
from rag_engine.records import Answer
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

WAIT_SECONDS = 30.0
COVERED = "Who described the zorblat in 1887?"


def with_model_path(config: Config, path: Path) -> Config:
    return dataclasses.replace(config, generation=dataclasses.replace(config.generation, model_path=str(path)))


def test_the_generator_loads_while_the_question_is_embedded(config: Config) -> None:
    """Each side waits for the other to have started: if the load were not concurrent with the embedding,
    one of the waits would time out and fail the test."""
    load_started, embedding_started = threading.Event(), threading.Event()
    loaded_in: list[threading.Thread] = []

    class WaitingEmbedder(HashingEmbedder):
        def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            assert load_started.wait(WAIT_SECONDS), "the generator was not loading during the embedding"
            embedding_started.set()
            return super().embed(texts)

    def generator() -> Generator:
        load_started.set()
        assert embedding_started.wait(WAIT_SECONDS), "the embedding did not go on during the load"
        loaded_in.append(threading.current_thread())
        return EchoGenerator()

    engine = Engine(config, embedder=WaitingEmbedder, generator=generator)
    answer = engine.answer(COVERED, "zoology")
    assert answer.covered and answer.text
    assert loaded_in and loaded_in[0] is not threading.current_thread()


def test_a_failed_background_load_is_raised_where_the_generator_is_needed(config: Config) -> None:
    attempts: list[threading.Thread] = []

    def broken() -> Generator:
        attempts.append(threading.current_thread())
        raise ModelError("cannot load GGUF model broken.gguf: not a GGUF file")

    engine = Engine(config, embedder=HashingEmbedder, generator=broken)
    # A question the documents do not cover needs no generator: its load failed unseen, nothing is raised.
    far = engine.answer("xylophone quasar", "zoology")
    assert not far.covered
    with pytest.raises(ModelError, match=r"^cannot load GGUF model broken.gguf: not a GGUF file$"):
        engine.answer(COVERED, "zoology")
    assert len(attempts) == 1 and attempts[0] is not threading.current_thread()


def test_an_answer_that_needs_no_generator_returns_only_after_its_load(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp's load silences the process's stdout and stderr for a moment: an answer returned meanwhile
    (nothing in the documents is near) would have its caller print into that silence. So it waits for the load."""
    release, answered = threading.Event(), threading.Event()
    events: list[str] = []

    def held() -> Generator:
        assert release.wait(WAIT_SECONDS)
        events.append("loaded")
        return EchoGenerator()

    not_covered = AnswerFlow._not_covered

    def watched(flow: AnswerFlow, *args: Any, **kwargs: Any) -> Answer:
        events.append("answered")
        answered.set()
        return not_covered(flow, *args, **kwargs)

    monkeypatch.setattr(AnswerFlow, "_not_covered", watched)
    engine = Engine(config, embedder=HashingEmbedder, generator=held)
    returned = threading.Event()

    def ask() -> None:
        engine.answer("xylophone quasar", "zoology")
        returned.set()

    worker = threading.Thread(target=ask)
    worker.start()
    assert answered.wait(WAIT_SECONDS)
    # Without the wait, the answer would be back within microseconds of being built; here it is held.
    assert not returned.wait(1.0)
    release.set()
    assert returned.wait(WAIT_SECONDS)
    worker.join(WAIT_SECONDS)
    assert events == ["answered", "loaded"]


def test_a_gguf_that_llama_cpp_cannot_load_gives_the_foreground_error(config: Config, tmp_path: Path) -> None:
    """The real llama.cpp, loading in the background, and a file that is not a model: the engine raises the
    same `ModelError` (same words) as making the generator directly, as it did before the load moved."""
    broken = with_model_path(config, write(tmp_path / "notes.gguf", b"GGUF but not really a model" * 100))
    with pytest.raises(ModelError) as direct:
        LlamaGenerator(broken.generation)
    engine = Engine(broken, embedder=HashingEmbedder)  # the default generator: llama.cpp
    with pytest.raises(ModelError) as background:
        engine.answer(COVERED, "zoology")
    assert str(background.value) == str(direct.value)
    assert str(direct.value).startswith("cannot load GGUF model notes.gguf: ")


def test_a_missing_gguf_gives_the_foreground_error(config: Config, tmp_path: Path) -> None:
    missing = with_model_path(config, tmp_path / "gone.gguf")
    with pytest.raises(ModelError, match="GGUF model file not found") as direct:
        LlamaGenerator(missing.generation)
    with pytest.raises(ModelError) as background:
        Engine(missing, embedder=HashingEmbedder).answer(COVERED, "zoology")
    assert str(background.value) == str(direct.value)


def held(generator: Generator) -> Callable[[], Generator]:
    return lambda: generator


def counted_evals(generator: LlamaGenerator) -> list[int]:
    """The size of every batch of tokens the generator's model evaluates from now on (the real model runs)."""
    sizes: list[int] = []
    evaluate = generator._llm.eval

    def counting(tokens: Sequence[int]) -> None:
        sizes.append(len(tokens))
        evaluate(tokens)

    generator._llm.eval = counting  # type: ignore[method-assign]
    return sizes


@pytest.mark.real_models
def test_warming_the_system_prompt_at_load_leaves_answers_identical(
    real_engine: Engine, shipped_config: Config
) -> None:
    """Two fresh generators of the default model, one warmed at load as the engine makes it, one not: the same
    questions get the very same answers, and the warmed one's first question evaluates only what follows the
    system part, which the other evaluates first."""
    plain = LlamaGenerator(shipped_config.generation)
    warmed = make_generator(shipped_config.generation, shipped_config.prompt.system)
    assert isinstance(warmed, LlamaGenerator)
    system_tokens = len(warmed._cached_prefix)
    assert system_tokens > 0  # held since the load
    plain_evals, warmed_evals = counted_evals(plain), counted_evals(warmed)
    engines = [
        Engine(
            shipped_config,
            embedder=real_engine.embedder,
            generator=held(generator),
            sentence_embedder=real_engine.sentence_embedder,
        )
        for generator in (plain, warmed)
    ]
    for number, (question, domain) in enumerate(
        [("When did the Suez Canal open?", "history"), ("What does the WHO guideline say about PM2.5?", "air-quality")]
    ):
        first, second = (engine.answer(question, domain, k=4) for engine in engines)
        assert first.covered and first.text
        assert second.text == first.text and second.tokens == first.tokens and second.prompt == first.prompt
        if number == 0:
            prompt_tokens = len(warmed._tokens(second.prompt))
            assert plain_evals[:2] == [system_tokens, prompt_tokens - system_tokens]
            assert warmed_evals[0] == prompt_tokens - system_tokens
