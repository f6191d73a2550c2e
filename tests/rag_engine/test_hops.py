"""Two retrieval rounds (`hops=2`) through the engine with fake models: the follow-up query, the second round
that leaves out what the first found, the merged prompt, the trace; and one round left exactly as it was."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.errors import ConfigError, QuestionError
from rag_engine.generate.follow_up import FOLLOW_UP_SYSTEM
from rag_engine.ingest.knowledge import KnowledgeBase
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

# The quillfish file names the lakes of Varnholm; the basalt file (another domain) says how old Varnholm's
# rocks are: the second file is found through the first.
QUESTION = "Where does the quillfish swim?"


class FollowUpGenerator(EchoGenerator):
    """Echoes the context as the answer, and replies `follow_up` to the follow-up prompt."""

    def __init__(self, follow_up: str) -> None:
        super().__init__()
        self.follow_up = follow_up
        self.follow_up_prompts: list[str] = []

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        if FOLLOW_UP_SYSTEM in prompt:
            self.follow_up_prompts.append(prompt)
            yield self.follow_up
            return
        yield from super().stream(prompt, max_tokens, context)


def engine_with(config: Config, embedder: HashingEmbedder, generator: EchoGenerator) -> Engine:
    one_result = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, top_k=1))
    return Engine(one_result, embedder=lambda: embedder, generator=lambda: generator,
                  knowledge=KnowledgeBase(one_result, lambda: embedder))  # fmt: skip


def test_two_hops_search_again_with_the_models_follow_up(config: Config, embedder: HashingEmbedder) -> None:
    generator = FollowUpGenerator("Query: Varnholm basalt columns")
    engine = engine_with(config, embedder, generator)
    answer = engine.answer(engine.check(QUESTION, hops=2))

    first, second = answer.rounds
    assert (first.query, first.origin) == (QUESTION, "question")
    assert [hit.passage.path for hit in first.hits] == ["quillfish.txt"]
    assert (second.query, second.origin, second.said) == (
        f"{QUESTION} Varnholm basalt columns",
        "model",
        "Query: Varnholm basalt columns",
    )
    assert [hit.passage.path for hit in second.hits] == ["basalt.md"]
    # The follow-up prompt showed the first round's best; the answer's prompt holds both rounds.
    assert "Varnholm" in generator.follow_up_prompts[0] and QUESTION in generator.follow_up_prompts[0]
    assert "quillfish" in answer.prompt and "60 million years" in answer.prompt
    assert [hit.passage.path for hit in answer.hits] == ["quillfish.txt", "basalt.md"]
    assert all(hit.in_prompt for found in answer.rounds for hit in found.hits)
    assert answer.hops == 2 and "follow_up" in answer.timings and "search_2" in answer.timings
    body = answer.to_dict()
    assert body["hops"] == 2
    assert [r["query"] for r in body["rounds"]] == [QUESTION, f"{QUESTION} Varnholm basalt columns"]
    assert body["rounds"][1]["hits"][0]["path"] == "basalt.md"


def test_a_useless_follow_up_falls_back_to_the_question_and_the_first_rounds_names(
    config: Config, embedder: HashingEmbedder
) -> None:
    engine = engine_with(config, embedder, FollowUpGenerator("I do not know."))
    second = engine.answer(engine.check(QUESTION, hops=2)).rounds[1]
    assert second.origin == "fallback" and second.said == "I do not know."
    assert second.query.startswith(QUESTION) and "Varnholm" in second.query
    assert second.hits and all(hit.passage.path != "quillfish.txt" for hit in second.hits)


def test_one_hop_is_unchanged(config: Config, embedder: HashingEmbedder) -> None:
    default, one = FollowUpGenerator("x"), FollowUpGenerator("x")
    before = engine_with(config, embedder, default).answer(QUESTION)
    after = engine_with(config, embedder, one).answer(engine_with(config, embedder, one).check(QUESTION, hops=1))
    assert after.prompt == before.prompt and after.text == before.text
    assert after.rounds == () and after.hops == 1 and after.to_dict()["rounds"] == []
    assert one.follow_up_prompts == [] and "follow_up" not in after.timings


def test_hops_are_checked(fake_engine: Engine, tmp_path: Path) -> None:
    assert fake_engine.check(QUESTION).hops == 1
    with pytest.raises(QuestionError, match="hops must be one of 1, 2"):
        fake_engine.check(QUESTION, hops=3)
    assert load_config(write(tmp_path / "two.toml", "[retrieval]\nhops = 2\n")).retrieval.hops == 2
    with pytest.raises(ConfigError, match=r"retrieval\.hops must be one of 1, 2"):
        load_config(write(tmp_path / "c.toml", "[retrieval]\nhops = 3\n"))
