"""Answer quality with the real models: the README's demo question is answered right and its support check
shows, and `ragscope eval answers --json` reports the right / why / oracle columns.

The full measurement (every shipped question, the SQuAD slice) is a benchmark, not a test: see the README's
"Right answers" table and `benchmarks/eval_answers.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_engine.engine import Engine
from rag_engine.evaluation import answers
from ragscope import eval_answers, render
from tests.conftest import run_eval_command, write

pytestmark = pytest.mark.real_models

DEMO_QUESTION = "What is the WHO guideline for the annual average of PM2.5?"


def test_the_demo_question_is_answered_right_and_checked(real_engine: Engine) -> None:
    answer = real_engine.answer(DEMO_QUESTION)
    assert answers.contains_key(answer.text, ["5"]), answer.text
    assert answer.grounding == "grounded", (answer.text, answer.support)
    assert any(claim.span == "5" and claim.supported for claim in answer.support), answer.support
    assert answer.evidence is not None and "5" in answers.tokens(answer.evidence.text)
    assert answer.evidence.path == "who-2021-air-quality-guidelines.md"
    shown = render.check(answer)
    assert "Evidence (air-quality/who-2021-air-quality-guidelines.md:" in shown


def test_a_question_the_documents_do_not_answer_is_refused(real_engine: Engine) -> None:
    answer = real_engine.answer("How many people died in the Los Angeles smog episodes?", "air-quality")
    assert answers.refused(answer), (answer.text, answer.grounding, answer.support)


def test_eval_answers_reports_right_why_and_oracle(
    real_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {
            "question": DEMO_QUESTION,
            "source": "who-2021-air-quality-guidelines.md",
            "answer": "5 µg/m³",
            "key": ["5"],
            "kind": "single",
        },
        # A key no answer can hold: this row must come out wrong, with a reason.
        {
            "question": "Which US president signed the 1970 Clean Air Act?",
            "source": "us-clean-air-act-and-donora.md",
            "answer": "no one",
            "key": ["Zebulon"],
            "kind": "single",
        },
        {
            "question": "What is the WHO annual guideline for sulfur dioxide?",
            "answer": "",
            "key": [],
            "kind": "unanswerable",
        },
    ]
    path = write(tmp_path / "q.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    argv = ["answers", "--domain", "air-quality", "--questions", str(path), "--json"]
    assert run_eval_command(eval_answers.register, argv, real_engine) == 0
    body = json.loads(capsys.readouterr().out)
    results = body["results"]
    assert [r["kind"] for r in results] == ["single", "single", "unanswerable"]
    demo, impossible, unanswerable = results
    assert demo["rag"]["right"] is True and demo["why"] == ""
    # The oracle column: the gold file's nearest passage alone (whether the model gets it right from that
    # passage is what the column measures; here the nearest WHO passage is not the one holding the figure).
    assert isinstance(demo["oracle"]["right"], bool) and demo["oracle"]["answer"]
    assert isinstance(demo["norag"]["right"], bool) and demo["norag"]["answer"]
    assert impossible["rag"]["right"] is False and impossible["why"] in ("not in prompt", "not retrieved")
    assert impossible["oracle"]["right"] is False
    assert "oracle" not in unanswerable  # no gold passage to hand over
    overall = body["overall"]
    assert overall["answerable"] == 2 and overall["unanswerable"] == 1
    assert overall["rag.right"] == 0.5 and 0.0 <= overall["oracle.right"] <= 0.5
    assert overall["distance.answerable"]["min"] <= overall["distance.answerable"]["max"]
    assert overall["seconds.p50"] > 0 and overall["first_token.p50"] > 0
