"""Lab experiment "hops" (multi-hop): one retrieval round against two, on the fake models (the report's shape,
the question's sources found in the domain's multihop.jsonl, the picture) and on the real models over the
shipped knowledge (tests/rag_engine/test_hops_real.py measures two hops against one over many questions)."""

from __future__ import annotations

import json

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.lab import run_experiment
from rag_engine.lab.hops import HopsReport, known_question
from tests.conftest import write

QUESTION = "Where does the quillfish swim?"
ROW = {"question": QUESTION, "source": ["quillfish.txt", "zorblat.md"], "answer": "x", "key": ["Varnholm"],
       "kind": "multihop"}  # fmt: skip


def test_the_run_on_the_fake_models(fake_engine: Engine, config: Config) -> None:
    write(config.paths.knowledge_dir / "zoology" / "multihop.jsonl", json.dumps(ROW) + "\n")
    report = run_experiment(fake_engine, "hops", "  Where does the   quillfish swim? ", "zoology")
    assert isinstance(report, HopsReport) and report.experiment == "hops" and report.domain == "zoology"
    assert report.sources == ("quillfish.txt", "zorblat.md") and report.key == ("Varnholm",)
    assert report.one.hops == 1 and len(report.one.rounds) == 1 and report.one.rounds[0].origin == "question"
    assert report.two.hops == 2 and report.two.rounds[0].origin == "question"
    assert report.two.rounds[1].query and report.two.rounds[1].origin in ("model", "fallback")
    assert report.one.rounds[0].files == report.two.rounds[0].files  # the first search is the same search
    assert set(report.one.files) <= set(report.two.files)
    assert report.sources_found(report.two) is (set(report.sources) <= set(report.two.files))
    assert report.one.right is not None and report.two.right is not None
    body = json.loads(json.dumps(report.to_dict()))
    assert (
        body["experiment"] == "hops"
        and body["question"] == "Where does the   quillfish swim?"
        and body["domain"] == "zoology"
    )
    assert len(body["two_hops"]["rounds"]) == 2 and "sources_retrieved" in body["one_hop"]
    text = "\n".join(report.lines())
    assert "search 2 (" in text and "quillfish.txt" in text and report.explanation.count(".") >= 2
    assert report.png().startswith(b"\x89PNG")


def test_a_question_of_its_own_words_has_no_known_sources(fake_engine: Engine) -> None:
    report = run_experiment(fake_engine, "hops", "What does the zorblat eat?", "zoology")
    assert isinstance(report, HopsReport)
    assert report.sources == () and report.one.right is None and report.sources_found(report.one) is None
    assert known_question(fake_engine, "zoology", "What does the zorblat eat?") is None
    assert report.png().startswith(b"\x89PNG")


@pytest.mark.real_models
def test_the_real_run_on_a_shipped_multihop_question(real_engine: Engine) -> None:
    question = (
        "With US support, which country did Panama separate from in the year of the Wright brothers' first "
        "powered flight?"
    )
    report = run_experiment(real_engine, "hops", question, "history")
    assert isinstance(report, HopsReport)
    assert report.sources == ("wright-brothers-first-flight.md", "panama-canal.md")
    first, second = report.two.rounds
    assert first.query == question and second.query != question and second.passages
    assert not {(path, span) for path, span, *_ in second.passages} & {
        (path, span) for path, span, *_ in first.passages
    }
    assert report.sources_found(report.two) is True
    assert report.png().startswith(b"\x89PNG")
