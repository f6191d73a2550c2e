"""`ragscope eval domains` / `evaluate_domain`: hit@k and MRR against a domain's questions.jsonl.

Fake models on the small two-domain folder of tests/conftest.py, with a questions.jsonl written for zoology
(two questions its files answer, one whose expected file is deliberately the other one, so there is a miss
with a known rank); one real-model check over the shipped domains.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, UnknownDomainError
from rag_engine.evaluation import domains
from rag_engine.evaluation.domains import (
    QuestionsFileError,
    evaluate_domain,
    evaluated_domains,
    load_questions,
    overall,
)
from tests.conftest import run_eval_command, write
from tests.fakes import EchoGenerator, HashingEmbedder

QUESTIONS = [
    {"question": "zorblat valley of Quenth blue moss", "source": "zorblat.md", "answer": "blue moss"},
    {"question": "quillfish cold lakes of Varnholm spines", "source": "quillfish.txt", "answer": "forty-two"},
    # Expected file deliberately wrong: zorblat.md is nearest, quillfish.txt second.
    {"question": "Agatha Plimm described the zorblat in 1887", "source": "quillfish.txt"},
]


def write_questions(config: Config, domain: str = "zoology", lines: list[str] | None = None) -> Path:
    rows = lines if lines is not None else [json.dumps(q) for q in QUESTIONS]
    return write(Path(config.paths.knowledge_dir) / domain / "questions.jsonl", "\n".join(rows) + "\n")


@pytest.fixture
def engine(config: Config) -> Engine:
    write_questions(config)
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


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


# -- the terminal command -----------------------------------------------------------------------------------------
def run(argv: list[str], engine: Engine) -> int:
    return run_eval_command(domains.register, argv, engine)


def test_eval_domains_json(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["domains", "--k", "1", "--json"], engine) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["k"] == 1 and report["depth"] == 10
    [zoology] = report["domains"]
    assert zoology["domain"] == "zoology" and zoology["questions"] == 3
    assert zoology["hit@k"] == pytest.approx(2 / 3) and zoology["mrr"] == pytest.approx(2.5 / 3)
    assert zoology["misses"] == [
        {"question": QUESTIONS[2]["question"], "expected": "quillfish.txt", "got": ["zorblat.md"], "rank": 2}
    ]
    assert report["overall"]["questions"] == 3


def test_eval_domains_text(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["domains", "--k", "1", "--domain", "zoology"], engine) == 0
    text = capsys.readouterr().out
    assert "zoology" in text and "overall" in text and "66.7%" in text and "0.833" in text
    assert "expected quillfish.txt (rank 2); got zorblat.md" in text


def test_eval_domains_in_bm25_mode_ranks_by_shared_words(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["domains", "--k", "1", "--json", "--mode", "bm25"], engine) == 0
    report = json.loads(capsys.readouterr().out)
    [zoology] = report["domains"]
    assert report["mode"] == "bm25" and zoology["mode"] == "bm25"
    # The miss: "Agatha Plimm described the zorblat in 1887" shares no word with quillfish.txt, so BM25 does not
    # return that file at all (dense ranked it 2nd); the other two questions find their files by their rare words.
    assert zoology["hit@k"] == pytest.approx(2 / 3) and zoology["mrr"] == pytest.approx(2 / 3)
    assert zoology["misses"] == [
        {"question": QUESTIONS[2]["question"], "expected": "quillfish.txt", "got": ["zorblat.md"], "rank": None}
    ]


def test_eval_domains_refusals(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(QuestionError):
        run(["domains", "--k", "0"], engine)
    with pytest.raises(UnknownDomainError):
        run(["domains", "--domain", "astronomy"], engine)
    (Path(engine.config.paths.knowledge_dir) / "zoology" / "questions.jsonl").unlink()
    with pytest.raises(QuestionsFileError, match="no domain"):
        run(["domains"], engine)


def test_ragscope_eval_domains_through_the_console_script(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ragscope.cli import main

    paths = engine.config.paths
    argv = ["eval", "domains", "--knowledge", str(paths.knowledge_dir), "--data-dir", str(tmp_path / "d"), "--json"]

    def fake(config: Config) -> Engine:
        return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)

    assert main(argv, make_engine=fake) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["questions"] == 3
    assert main([*argv[:-1], "--domain", "geology"], make_engine=fake) == 2
    assert "no questions.jsonl" in capsys.readouterr().err


# -- the real models over the shipped domains ----------------------------------------------------------------------
@pytest.mark.real_models
def test_shipped_domains_retrieve_their_sources(real_engine: Engine) -> None:
    reports = [evaluate_domain(real_engine, name) for name in evaluated_domains(real_engine)]
    assert len(reports) == 4 and all(r.questions == 12 for r in reports)
    total = overall(reports)
    assert total["hit@k"] >= 0.9 and total["mrr"] >= 0.8
