"""`ragscope eval domains` with fake models: the JSON and the table, BM25 mode, the refusals, and the console
script's exit code and reason. The measuring is tested in tests/rag_engine/evaluation/test_eval_domains.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, QuestionsFileError, UnknownDomainError
from ragscope import eval_domains
from ragscope.cli import main
from tests.conftest import run_eval_command
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.rag_engine.evaluation.samples import QUESTIONS, questions_engine


@pytest.fixture
def engine(config: Config) -> Engine:
    return questions_engine(config)


def run(argv: list[str], engine: Engine) -> int:
    return run_eval_command(eval_domains.register, argv, engine)


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
    paths = engine.config.paths
    argv = ["eval", "domains", "--knowledge", str(paths.knowledge_dir), "--data-dir", str(tmp_path / "d"), "--json"]

    def fake(config: Config) -> Engine:
        return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)

    assert main(argv, make_engine=fake) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["questions"] == 3
    assert main([*argv[:-1], "--domain", "geology"], make_engine=fake) == 2
    assert "no questions.jsonl" in capsys.readouterr().err
