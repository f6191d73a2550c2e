"""The support check through the engine with fake models: a wrong number is marked, a right one is not, and
every surface (the Answer, `--json`, the terminal, Discord) shows it. The real-model path is in
test_answer_quality.py."""

from __future__ import annotations

import json

import pytest

from bot.render.answer import answer_content
from rag_engine.config import Config
from rag_engine.engine import Engine
from ragscope import render
from tests.fakes import HashingEmbedder, ScriptedGenerator


def engine_saying(config: Config, answer: str) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator(answer))


def test_a_number_the_passages_do_not_hold_is_marked_unsupported(config: Config) -> None:
    answer = engine_saying(config, "Agatha Plimm described it in 1921.").answer(
        "Who first described the zorblat, and when?", "zoology"
    )
    by_span = {claim.span: claim for claim in answer.support}
    assert by_span["1921"].supported is False and by_span["1921"].passage_id is None
    assert by_span["Agatha Plimm"].supported is True and by_span["Agatha Plimm"].path == "zorblat.md"
    assert answer.grounding == "partly" and [c.span for c in answer.unsupported] == ["1921"]

    shown = render.check(answer)
    assert "⚠ not in the sources: 1921" in shown
    data = json.loads(json.dumps(answer.to_dict()))
    assert {"span": "1921", "kind": "number", "supported": False, "passage": None} in data["support"]
    assert data["grounding"] == "partly"
    discord_text = answer_content(answer, "", label="RAG answer · zoology")
    assert "⚠ not in the sources: 1921" in discord_text


def test_a_supported_answer_carries_its_evidence_sentence(config: Config) -> None:
    answer = engine_saying(config, "Agatha Plimm described it in 1887.").answer(
        "Who first described the zorblat, and when?", "zoology"
    )
    assert answer.grounding == "grounded" and not answer.unsupported
    assert answer.evidence is not None and "1887" in answer.evidence.text
    assert answer.evidence.path == "zorblat.md" and answer.evidence.line == 5
    shown = render.check(answer)
    assert "✓ every number and name" in shown and "zoology/zorblat.md:5" in shown
    assert answer.to_dict()["evidence"]["line"] == 5


def test_an_answer_with_nothing_behind_it_says_so(config: Config) -> None:
    answer = engine_saying(config, "It was Bartholomew Quince in 1750.").answer(
        "Who first described the zorblat, and when?", "zoology"
    )
    assert answer.grounding == "unsupported"
    assert "Nothing in the sources supports this answer" in render.check(answer)
    assert "Nothing in the sources supports this answer" in answer_content(answer, "", label="RAG answer")


@pytest.mark.parametrize("reply", ["The documents do not say.", "I don't know."])
def test_a_refusal_is_reported_as_one(config: Config, reply: str) -> None:
    answer = engine_saying(config, reply).answer("How long does the zorblat of Quenth live?", "zoology")
    assert answer.covered, "the test needs the model to be asked"
    assert answer.grounding == "refused" and answer.support == () and answer.evidence is None


def test_the_threshold_refusal_is_a_refusal_too(config: Config) -> None:
    answer = engine_saying(config, "never asked").answer("Xylophone marmalade?", "zoology")
    assert not answer.covered and answer.grounding == "refused"


def test_the_prompt_carries_the_sentences_nearest_the_question(config: Config) -> None:
    generator = ScriptedGenerator("1887")
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: generator)
    answer = engine.answer("When did Agatha Plimm first describe the zorblat?", "zoology")
    assert answer.context_sentences, "evidence selection put no sentence in the prompt"
    assert any("1887" in s.text for s in answer.context_sentences)
    assert "Agatha Plimm first described the zorblat in 1887." in generator.prompts[-1]
    # Every sentence in the prompt names where it stands, as file:line.
    assert "zorblat.md:" in generator.prompts[-1]


def test_an_answer_of_another_kind_than_asked_is_flagged_on_every_surface(config: Config) -> None:
    # "1887" is in the sources, but a year is no answer to "how heavy".
    answer = engine_saying(config, "1887").answer("How heavy is an adult zorblat, in kilograms?", "zoology")
    assert answer.grounding == "unsupported"
    asked = [claim for claim in answer.unsupported if claim.kind == "asked"]
    assert asked and asked[0].span.startswith("a weight")
    assert "⚠ the question asks for a weight" in render.check(answer)
    assert "⚠ the question asks for a weight" in answer_content(answer, "", label="RAG answer")
    assert {"span": asked[0].span, "kind": "asked", "supported": False, "passage": None} in answer.to_dict()["support"]
    # The right kind from the same sources stands.
    right = engine_saying(config, "About 14 kilograms.").answer(
        "How heavy is an adult zorblat, in kilograms?", "zoology"
    )
    assert right.grounding == "grounded"
