"""Prompt building: exact wording from config, nearest passages first, farthest dropped to fit the budget; the
answer's RAG prompt of whole passages or of evidence excerpts (the best last when configured)."""

from __future__ import annotations

import dataclasses

import pytest

from rag_engine.config import Config, PromptConfig
from rag_engine.errors import QuestionError
from rag_engine.generate.evidence import select_evidence
from rag_engine.generate.prompt import build_norag_prompt, build_prompt, build_rag_prompt
from rag_engine.records import Hit, Passage
from tests.fakes import EchoGenerator, HashingEmbedder

CONFIG = PromptConfig()


def hits(count: int, words_each: int) -> list[Hit]:
    return [
        Hit(
            rank=i,
            passage=Passage(id=i, path=f"doc{i}.md", text=" ".join([f"w{i}"] * words_each), line_start=1, line_end=1),
            distance=0.1 * i,
            domain="d",
        )
        for i in range(1, count + 1)
    ]


def test_prompt_contains_passages_in_rank_order_and_the_question() -> None:
    built = build_prompt("What is w2?", hits(3, 5), EchoGenerator(), CONFIG, 1000)
    assert built.passage_ids == (1, 2, 3)
    assert built.text.index("[1] doc1.md") < built.text.index("[2] doc2.md") < built.text.index("[3] doc3.md")
    assert "Question: What is w2?" in built.text
    assert CONFIG.system in built.text
    assert built.tokens == EchoGenerator().count_tokens(built.text)


def test_farthest_passages_are_dropped_until_the_prompt_fits() -> None:
    generator = EchoGenerator()
    full = build_prompt("q?", hits(4, 50), generator, CONFIG, 10_000)
    budget = full.tokens - 30  # one passage (50 words + label) too many
    built = build_prompt("q?", hits(4, 50), generator, CONFIG, budget)
    assert built.passage_ids == (1, 2, 3)
    assert built.tokens <= budget
    assert "doc4.md" not in built.text


def test_a_question_too_long_for_any_prompt_is_refused() -> None:
    with pytest.raises(QuestionError, match="prompt tokens"):
        build_prompt("word " * 100, hits(1, 5), EchoGenerator(), CONFIG, 20)


def test_norag_prompt_has_the_question_and_no_context() -> None:
    built = build_norag_prompt("Who built it?", EchoGenerator(), CONFIG, 100)
    assert "Who built it?" in built.text and "Context" not in built.text and built.passage_ids == ()


def test_rag_prompt_of_excerpts_puts_the_best_last_when_asked() -> None:
    question = "What is w2?"
    evidence = hits(3, 5)
    embedder = HashingEmbedder()
    base = Config()
    excerpts = select_evidence(question, embedder.embed([question])[0], evidence, embedder, base.evidence)
    assert len(excerpts) > 1
    best_first = build_rag_prompt(question, evidence, EchoGenerator(), base, 1000, excerpts)
    last = dataclasses.replace(base, evidence=dataclasses.replace(base.evidence, order="best_last"))
    best_last = build_rag_prompt(question, evidence, EchoGenerator(), last, 1000, excerpts)
    assert [block.passage_id for block in best_first.blocks] == [excerpt.hit.passage.id for excerpt in excerpts]
    assert best_last.blocks == tuple(reversed(best_first.blocks))
    # Without excerpts: the whole passages, nearest first.
    whole = build_rag_prompt(question, evidence, EchoGenerator(), last, 1000)
    assert (
        whole.passage_ids == (1, 2, 3)
        and whole.text == build_prompt(question, evidence, EchoGenerator(), CONFIG, 1000).text
    )
