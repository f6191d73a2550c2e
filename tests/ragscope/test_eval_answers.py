"""`ragscope eval answers` with fake models: the JSON report with every column, and the refused options. The
scoring is tested in tests/rag_engine/evaluation/test_eval_answers.py, the real-model run in
tests/rag_engine/generate/test_answer_quality.py."""

from __future__ import annotations

import json

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError
from rag_engine.evaluation.domains import load_questions
from ragscope import eval_answers
from tests.conftest import run_eval_command, write
from tests.fakes import HashingEmbedder, ScriptedGenerator


def test_the_command_prints_json_with_every_column(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {
            "question": "When did Agatha Plimm first describe the zorblat?",
            "source": "zorblat.md",
            "answer": "1887",
            "key": ["1887"],
            "kind": "single",
        },
        {
            "question": "Which two things live in Varnholm and Quenth?",
            "source": ["zorblat.md", "quillfish.txt"],
            "answer": "zorblat, quillfish",
            "key": ["zorblat", "quillfish"],
            "kind": "two-doc",
        },
    ]
    path = write(
        config.paths.knowledge_dir / "zoology" / "questions.jsonl", "".join(json.dumps(r) + "\n" for r in rows)
    )
    assert [item.kind for item in load_questions(path)] == ["single", "two-doc"]
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("In 1887."))
    assert run_eval_command(eval_answers.register, ["answers", "--domain", "zoology", "--json"], engine) == 0
    body = json.loads(capsys.readouterr().out)
    first, second = body["results"]
    assert set(first) >= {"rag", "norag", "oracle", "why", "nearest_distance", "retrieved"}
    assert first["rag"]["right"] and not second["rag"]["right"] and second["why"]
    assert body["domains"]["zoology"]["rag.right.two-doc"] == 0.0
    assert body["overall"]["distance.answerable"]["min"] > 0


def test_bad_columns_and_a_questions_file_without_domain_are_refused(config: Config) -> None:
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("x"))
    with pytest.raises(QuestionError, match="--columns"):
        run_eval_command(eval_answers.register, ["answers", "--columns", "norag"], engine)
    with pytest.raises(QuestionError, match="--questions needs --domain"):
        run_eval_command(eval_answers.register, ["answers", "--questions", "q.jsonl"], engine)
