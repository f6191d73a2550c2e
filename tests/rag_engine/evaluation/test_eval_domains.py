"""`evaluate_domain`: hit@k and MRR against a domain's questions.jsonl, and reading that file.

Fake models on the small two-domain folder of tests/conftest.py, with the questions.jsonl of `samples.py`
written for zoology (two questions its files answer, one whose expected file is deliberately the other one, so
there is a miss with a known rank); one real-model check over the shipped domains. The terminal command
(`ragscope eval domains`) is tested in tests/ragscope/test_eval_domains.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, QuestionsFileError, UnknownDomainError
from rag_engine.evaluation.domains import evaluate_domain, evaluated_domains, load_questions, overall
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.rag_engine.evaluation.samples import QUESTIONS, questions_engine, write_questions


@pytest.fixture
def engine(config: Config) -> Engine:
    return questions_engine(config)


def test_hit_at_k_and_mrr_with_a_known_miss(engine: Engine) -> None:
    report = evaluate_domain(engine, "zoology", k=1)
    assert (report.domain, report.k, report.depth, report.questions) == ("zoology", 1, 10, 3)
    assert [r.rank for r in report.results] == [1, 1, 2]
    assert [r.hit for r in report.results] == [True, True, False]
    assert report.hit_at_k == pytest.approx(2 / 3)
    assert report.mrr == pytest.approx((1 + 1 + 0.5) / 3)
    [miss] = report.misses
    assert miss.expected == "quillfish.txt" and miss.got == ("zorblat.md",)
    # With k=2 both files of the domain are "retrieved", so the miss becomes a hit; MRR does not depend on k.
    wider = evaluate_domain(engine, "zoology", k=2)
    assert wider.hit_at_k == 1.0 and wider.mrr == report.mrr and wider.misses == ()


def test_default_k_is_the_configured_top_k(engine: Engine) -> None:
    assert evaluate_domain(engine, "zoology").k == engine.config.retrieval.top_k


def test_questions_file_is_not_indexed_as_a_document(engine: Engine) -> None:
    assert "questions.jsonl" not in engine.domain_stats("zoology").files


def test_mmr_scores_the_top_k_a_real_query_would_get(config: Config) -> None:
    write_questions(config)
    mmr = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mmr_lambda=0.5))
    embedder = HashingEmbedder()
    report = evaluate_domain(Engine(mmr, embedder=lambda: embedder), "zoology", k=1)
    assert [r.rank for r in report.results] == [1, 1, 2]
    # Each question was embedded twice: once for the deep list, once for the top k (MMR depends on k).
    assert embedder.texts_embedded - 2 == 2 * len(QUESTIONS)  # minus the two passages indexed


def test_evaluated_domains_are_those_with_questions(engine: Engine) -> None:
    assert engine.domains() == ["geology", "zoology"]
    assert evaluated_domains(engine) == ["zoology"]
    with pytest.raises(QuestionsFileError, match=r"no questions\.jsonl"):
        evaluate_domain(engine, "geology")
    with pytest.raises(UnknownDomainError):
        evaluate_domain(engine, "astronomy")
    with pytest.raises(QuestionError):
        evaluate_domain(engine, "zoology", k=0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", ":2 is not JSON"),
        ('["a list"]', ":2 must be an object"),
        ('{"question": "no source"}', ":2 needs a source"),
        ('{"question": "  ", "source": "zorblat.md"}', ":2 needs"),
    ],
)
def test_malformed_questions_name_the_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path / "questions.jsonl", json.dumps(QUESTIONS[0]) + "\n" + line + "\n")
    with pytest.raises(QuestionsFileError, match=reason):
        load_questions(path)


def test_blank_lines_are_skipped_and_answer_is_optional(tmp_path: Path) -> None:
    path = write(tmp_path / "questions.jsonl", "\n" + json.dumps(QUESTIONS[2]) + "\n\n")
    [item] = load_questions(path)
    assert item.source == "quillfish.txt" and item.answer == ""


def test_overall_counts_every_question_once(config: Config) -> None:
    write_questions(config, "geology", [json.dumps({"question": "basalt columns lava", "source": "basalt.md"})])
    engine = Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)
    write_questions(config)
    reports = [evaluate_domain(engine, name, k=1) for name in evaluated_domains(engine)]
    assert [r.domain for r in reports] == ["geology", "zoology"]
    total = overall(reports)
    assert total["questions"] == 4
    assert total["hit@k"] == pytest.approx(3 / 4)
    assert total["mrr"] == pytest.approx(3.5 / 4)
    assert overall([]) == {"questions": 0, "hit@k": 0.0, "mrr": 0.0}


# -- the real models over the shipped domains ----------------------------------------------------------------------
@pytest.mark.real_models
def test_shipped_domains_retrieve_their_sources(real_engine: Engine) -> None:
    reports = [evaluate_domain(real_engine, name) for name in evaluated_domains(real_engine)]
    assert len(reports) == 4 and all(r.questions == 12 for r in reports)
    total = overall(reports)
    assert total["hit@k"] >= 0.9 and total["mrr"] >= 0.8
