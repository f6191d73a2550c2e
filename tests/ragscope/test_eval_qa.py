"""`ragscope eval qa`: the JSON and the text report, the kept or temporary knowledge folder, the refusals, the
console script's exit code and reason, and one real-model run on a slice of the shared SQuAD dev file.

The command is driven through `register` on a parser of its own (what `ragscope eval` does), so these tests do
not depend on how the parent `eval` command is wired. The metrics, the SQuAD file handling and the evaluation
itself are tested in tests/rag_engine/evaluation/test_eval_qa.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, RagError
from ragscope import eval_qa
from ragscope.cli import main
from tests.conftest import REPO, run_eval_command, write
from tests.rag_engine.evaluation.samples import echo_engine, squad_file

SQUAD_DEV = REPO.parent / "shared" / "data" / "squad-dev-slice" / "dev-v1.1-first8.json"


def run(argv: list[str], engine: Engine) -> int:
    return run_eval_command(eval_qa.register, argv, engine)


def test_eval_qa_prints_the_json_keys(config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = squad_file(tmp_path / "tiny.json")
    out = tmp_path / "kept"
    assert (
        run(["qa", "--squad", str(path), "--limit", "2", "--json", "--knowledge-out", str(out)], echo_engine(config))
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert {"rag.em", "rag.f1", "norag.em", "norag.f1", "rag.contains", "hit@k", "questions"} <= set(report)
    assert report["questions"] == 2 and report["available_questions"] == 3
    assert [r["id"] for r in report["results"]] == ["q1", "q3"]  # spread: indices 0 and 1 of 3
    assert sorted(p.name for p in (out / "tiny").iterdir())[0] == "000-Zorblat-p000.md"
    # The indexes went to the configured data folder, under the domain named after the file.
    assert (Path(config.paths.data_dir) / "indexes" / "tiny.npz").is_file()


def test_eval_qa_text_report_and_temporary_knowledge(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["qa", "--squad", str(squad_file(tmp_path / "tiny.json")), "--k", "2"], echo_engine(config)) == 0
    text = capsys.readouterr().out
    assert "3 of 3 questions" in text and "retrieval hit@2" in text and "no RAG" in text


def test_eval_qa_refuses_bad_options_before_any_work(config: Config, tmp_path: Path) -> None:
    engine = echo_engine(config)
    with pytest.raises(QuestionError, match="--limit"):
        run(["qa", "--squad", "x.json", "--limit", "0"], engine)
    with pytest.raises(QuestionError, match="--k"):
        run(["qa", "--squad", "x.json", "--k", "0"], engine)
    with pytest.raises(RagError, match="not found"):
        run(["qa", "--squad", str(tmp_path / "missing.json")], engine)


def test_ragscope_eval_qa_through_the_console_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = squad_file(tmp_path / "tiny.json")
    argv = ["eval", "qa", "--squad", str(path), "--data-dir", str(tmp_path / "d"), "--limit", "1", "--json"]
    assert main(argv, make_engine=echo_engine) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 1
    assert main([*argv[:3], str(tmp_path / "nothing.json")], make_engine=echo_engine) == 2
    assert "SQuAD file not found" in capsys.readouterr().err


# -- the real models on the shared SQuAD slice -------------------------------------------------------------------
@pytest.mark.real_models
def test_real_models_on_a_squad_slice(real_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not SQUAD_DEV.is_file():
        pytest.skip(f"the shared SQuAD slice is not here: {SQUAD_DEV} (a checkout of ../shared is needed)")
    # The first two articles (about 100 paragraphs to index), 12 questions and answers of at most 24 tokens keep
    # this under a minute on an idle 2-core machine; the models are the session's, shared with the other
    # real-model tests. (The full file is `benchmarks/results/eval_squad.json`'s business.)
    raw = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))
    path = write(tmp_path / "squad-slice.json", json.dumps({**raw, "data": raw["data"][:2]}))
    config = real_engine.config
    short = dataclasses.replace(config, generation=dataclasses.replace(config.generation, max_answer_tokens=24))
    engine = real_engine.with_config(short)
    started = time.perf_counter()
    assert run(["qa", "--squad", str(path), "--limit", "12", "--json"], engine) == 0
    seconds = time.perf_counter() - started
    report = json.loads(capsys.readouterr().out)
    assert {"rag.em", "rag.f1", "norag.em", "norag.f1", "rag.contains", "hit@k", "questions"} <= set(report)
    assert report["questions"] == 12 and report["domain"] == "squad-slice"
    assert report["hit@k"] > 0.7, report
    assert report["rag.f1"] > report["norag.f1"], report
    print(
        f"eval qa on {report['questions']} questions: {seconds:.1f} s, "
        f"{json.dumps({k: v for k, v in report.items() if k != 'results'})}"
    )
