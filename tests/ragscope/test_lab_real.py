"""`ragscope lab` with the REAL models on a copy of the shipped cooking domain: the console script as a user runs
it (the engine the CLI makes itself, the config file's models), printing exactly the report's lines and then its
explanation, and writing its picture. The report is the one the run produced (`run_experiment` is wrapped to
keep it; the real one runs). `retriever` is the experiment used: it needs no attention model, so the test stays
within a minute; the surfaces do not depend on which experiment runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import ragscope.lab
from rag_engine.engine import Engine
from rag_engine.lab import run_experiment
from rag_engine.lab.report import LabReport
from ragscope.cli import main
from tests.conftest import REPO, SHIPPED_KNOWLEDGE

pytestmark = pytest.mark.real_models

QUESTION = "How hot does the inside of a chicken need to get before it's safe to eat?"


def test_lab_prints_the_reports_lines_and_explanation_and_writes_its_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SHIPPED_KNOWLEDGE / "cooking", tmp_path / "knowledge" / "cooking")
    kept: list[LabReport] = []

    def keeping(engine: Engine, name: str, question: str, domain: str | None) -> LabReport:
        kept.append(run_experiment(engine, name, question, domain))
        return kept[-1]

    monkeypatch.setattr(ragscope.lab, "run_experiment", keeping)
    picture = tmp_path / "retriever.png"
    args = ["lab", "retriever", QUESTION, "--domain", "cooking", "--png", str(picture), "--config",
            str(REPO / "config.toml"), "--knowledge", str(tmp_path / "knowledge"), "--data-dir", str(tmp_path / "data"),
            "--set", "generation.max_answer_tokens=48"]  # fmt: skip
    assert main(args) == 0

    [report] = kept
    assert (report.experiment, report.domain, report.question) == ("retriever", "cooking", QUESTION)
    stdout = capsys.readouterr().out
    assert stdout == "\n".join(report.lines()) + f"\n\n{report.explanation}\nwrote {picture}\n"
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
