"""`ragscope lab` over fake models and a fake experiment (tests/lab_fakes.py): the report's lines then its
explanation, `--json`, `--png`, the experiments listed from `EXPERIMENTS`, and bad input or an unwritable
picture as one line and exit code 2. The real experiments run through the CLI in test_lab_real.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.lab import EXPERIMENTS
from ragscope.cli import build_parser, main
from tests.lab_fakes import EXPLANATION, use_fake_experiments
from tests.rag_engine.explain.helpers import QUESTION, fake_engine_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def fake_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_experiments(monkeypatch)


def run(args: list[str], knowledge: Path, data: Path) -> int:
    return main(["lab", "--knowledge", str(knowledge), "--data-dir", str(data), *args], make_engine=fake_engine_for)


def engine_over(knowledge: Path, data: Path) -> Engine:
    return fake_engine_for(Config().with_paths(knowledge_dir=knowledge, data_dir=data))


def test_text_output_is_the_reports_lines_then_its_explanation(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["k", QUESTION, "--domain", "zoology"], knowledge_dir, tmp_path) == 0
    stdout = capsys.readouterr().out
    # The fake answered at each configured k through the engine: the same answers as asking the engine here.
    engine = engine_over(knowledge_dir, tmp_path / "again")
    expected = [f"k={k:<2} {engine.answer(QUESTION, 'zoology', k=k).text}" for k in engine.config.lab.dilution_ks]
    lines = stdout.splitlines()
    assert lines[0] == "best passage: zorblat.md"
    assert lines[1 : 1 + len(expected)] == expected
    assert lines[1 + len(expected) :] == ["", EXPLANATION]


def test_json_prints_the_whole_report_and_nothing_else(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "out" / "k.png"
    assert run(["mmr", QUESTION, "--domain", "zoology", "--json", "--png", str(picture)], knowledge_dir, tmp_path) == 0
    data = json.loads(capsys.readouterr().out)  # one JSON object: the "wrote" line is not printed
    assert (data["experiment"], data["question"], data["domain"]) == ("mmr", QUESTION, "zoology")
    assert [row["k"] for row in data["answers"]] == list(Config().lab.dilution_ks)
    assert picture.read_bytes().startswith(PNG_MAGIC)


def test_png_writes_the_picture_and_says_where(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = tmp_path / "pictures" / "retriever.png"  # the folder is made
    assert run(["retriever", QUESTION, "--domain", "zoology", "--png", str(picture)], knowledge_dir, tmp_path) == 0
    assert capsys.readouterr().out.endswith(f"{EXPLANATION}\nwrote {picture}\n")
    data = picture.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_without_a_domain_the_first_domain_is_used(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["hops", QUESTION, "--json"], knowledge_dir, tmp_path) == 0
    first = engine_over(knowledge_dir, tmp_path / "again").domains()[0]
    assert json.loads(capsys.readouterr().out)["domain"] == first


def test_an_unwritable_picture_is_one_line_and_exit_code_2(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert run(["k", QUESTION, "--domain", "zoology", "--png", str(blocker / "k.png")], knowledge_dir, tmp_path) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ragscope: error: could not write the picture to ") and stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["k", QUESTION, "--domain", "botany"], "unknown domain"),
        (["k", "   ", "--domain", "zoology"], "question"),
    ],
)
def test_bad_input_is_refused_before_the_experiment_runs(
    knowledge_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    reason: str,
) -> None:
    use_fake_experiments(monkeypatch, k="run_broken")  # would fail loudly if it ran
    assert run(args, knowledge_dir, tmp_path) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("ragscope: error: ") and reason in stderr.lower()


def test_an_unknown_experiment_is_a_usage_error(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["dilution", QUESTION], knowledge_dir, tmp_path)
    assert exited.value.code == 2
    assert "invalid choice: 'dilution'" in capsys.readouterr().err


def test_help_lists_every_experiment_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXPERIMENTS, "demo", ("tests.lab_fakes", "run_k", "a demonstration added by this test"))
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = commands.choices["lab"].format_help()
    for name, (_, _, summary) in EXPERIMENTS.items():
        assert f"  {name:<10} {summary}" in text
    assert parser.parse_args(["lab", "demo", QUESTION]).experiment == "demo"
