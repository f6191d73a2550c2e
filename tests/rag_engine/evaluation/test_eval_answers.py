"""`evaluate_answers` with fake models: key matching, the three columns, and the reason a wrong answer is given.
The terminal command (`ragscope eval answers`) is tested in tests/ragscope/test_eval_answers.py, the real-model
run in tests/rag_engine/generate/test_answer_quality.py."""

from __future__ import annotations

import dataclasses

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.evaluation import answers
from rag_engine.evaluation.domains import DomainQuestion
from tests.fakes import HashingEmbedder, ScriptedGenerator


@pytest.mark.parametrize(
    ("text", "key", "right"),
    [
        ("The guideline is 5 µg/m³.", ["5"], True),
        ("The guideline is 35 µg/m³.", ["5"], False),
        ("It is 2.5 or 5.0.", ["5"], False),
        ("About 12000 died.", ["12,000"], True),
        ("About 12,000 died.", ["12000"], True),
        ("President Nixon signed it.", ["nixon"], True),
        ("Nixonian times.", ["Nixon"], False),
        ("Unhealthy for Sensitive Groups", ["sensitive groups"], True),
        ("Groups that are sensitive", ["sensitive groups"], False),
        ("Both 1869 and 1914.", ["1869", "1914"], True),
        ("Only 1869.", ["1869", "1914"], False),
        ("It worked for 3 weeks.", ["three", "weeks"], True),
        ("It worked for three weeks.", ["3"], True),
    ],
)
def test_a_key_counts_only_as_whole_tokens(text: str, key: list[str], right: bool) -> None:
    assert answers.contains_key(text, key) is right


def question(
    text: str, key: list[str], sources: tuple[str, ...] = ("zorblat.md",), kind: str = "single"
) -> DomainQuestion:
    return DomainQuestion(text, sources[0] if sources else "", "", sources, tuple(key), kind)


def test_columns_and_reasons(config: Config) -> None:
    config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, top_k=1))
    generator = ScriptedGenerator("Agatha Plimm described it in 1887.")
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: generator)
    rows = [
        question("When did Agatha Plimm first describe the zorblat?", ["1887"]),
        question("How much does an adult zorblat weigh?", ["14"]),
        question("How many spines has the quillfish of Varnholm?", ["forty-two"], ("quillfish.txt",)),
        question("How long does the zorblat of Quenth live?", [], (), "unanswerable"),
    ]
    results = answers.evaluate_answers(engine, "zoology", rows)
    right, not_used, wrong_file, unanswerable = results
    assert right.columns["rag"].right and right.why == ""
    assert right.columns["oracle"].right and "norag" in right.columns
    # The weight is in the zorblat passage the prompt carried; the scripted answer ignores it.
    assert not_used.why in ("not used", "not in prompt") and not not_used.columns["rag"].right
    # The answer's passage never mentions the quillfish's Varnholm: flagged, so it counts as refused.
    assert wrong_file.why == "refused" and not wrong_file.columns["rag"].right
    assert unanswerable.why == "answered" and "oracle" not in unanswerable.columns
    summary = answers.summarize(results)
    assert summary["answerable"] == 3 and summary["unanswerable"] == 1
    assert summary["rag.right"] == pytest.approx(1 / 3) and summary["unanswerable.refused"] == 0.0


def test_a_refusal_is_right_for_an_unanswerable_question(config: Config) -> None:
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("The documents do not say."))
    [result] = answers.evaluate_answers(
        engine, "zoology", [question("How long does the zorblat of Quenth live?", [], (), "unanswerable")]
    )
    assert result.columns["rag"].right and result.columns["rag"].refused and result.why == ""
    assert result.columns["norag"].right  # the same words without RAG are a refusal too
