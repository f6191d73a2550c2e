"""`ragscope pipeline` over fake models: every file written, step 3 named for the configured retrieval mode,
attention drawn, skipped (`--no-attention`) or explained, bad input and an unwritable folder as one line and
exit code 2."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from ragscope.cli import main
from tests.conftest import write
from tests.fakes import UniformAttention
from tests.rag_engine.explain.helpers import QUESTION, fake_engine_for


def run(args: list[str], knowledge: Path, data: Path, make_engine: Callable[[Config], Engine] = fake_engine_for) -> int:
    return main([*args[:1], "--knowledge", str(knowledge), "--data-dir", str(data), *args[1:]], make_engine=make_engine)


def test_cli_writes_every_file_and_notes_why_there_is_no_attention(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["pipeline", QUESTION, "--domain", "zoology", "--k", "2", "--out", str(out)]
    assert run(args, knowledge_dir, tmp_path) == 0  # the fake engine's attention model cannot read the GGUF
    stdout = capsys.readouterr().out
    assert "passages searched; nearest zoology/zorblat.md" in stdout
    assert "attention unavailable: transformers cannot read this GGUF" in stdout
    assert f"wrote 6 files to {out}" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["pipeline.json", "embedding_map.png", "distances.md", "prompt.txt", "answer.ansi",
                            "attention.txt"])  # fmt: skip
    data = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    assert data["domain"] == "zoology" and data["documents"]["domains"] == ["zoology"]
    assert [row["hit_rank"] for row in data["retrieval"]["rows"]][:2] == [1, 2]
    assert data["generation"]["attention"] is None
    assert "transformers cannot read this GGUF" in (out / "attention.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("mode", "line"),
    [
        ("dense", "Step 3, Retrieve with kNN: The 2 nearest of 2 passages by Euclidean distance"),
        ("bm25", "Step 3, Retrieve with BM25: The 2 best of 2 passages by BM25 word scores"),
        ("hybrid", "Step 3, Retrieve with kNN + BM25, fused: The 2 best of 2 passages: the kNN list"),
    ],
)
def test_cli_names_what_ranked_the_passages(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, line: str
) -> None:
    def in_mode(config: Config) -> Engine:
        return fake_engine_for(dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode=mode)))

    out = tmp_path / "out"
    args = ["pipeline", QUESTION, "--domain", "zoology", "--k", "2", "--no-attention", "--out", str(out)]
    assert run(args, knowledge_dir, tmp_path, in_mode) == 0
    assert line in capsys.readouterr().out
    data = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    assert data["retrieval"]["mode"] == mode and line.split(": ", 1)[1] in data["retrieval"]["ranking"]


def test_cli_attention_picture_and_no_attention_flag(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made: list[UniformAttention] = []

    def with_attention(config: Config) -> Engine:
        def make() -> UniformAttention:
            made.append(UniformAttention())
            return made[-1]

        return fake_engine_for(config, make)

    out = tmp_path / "out"
    assert run(["pipeline", QUESTION, "--out", str(out)], knowledge_dir, tmp_path / "data", with_attention) == 0
    assert (out / "attention.png").is_file() and not (out / "attention.txt").exists() and len(made) == 1
    args = ["pipeline", QUESTION, "--no-attention", "--out", str(out)]
    assert run(args, knowledge_dir, tmp_path / "data", with_attention) == 0
    assert not (out / "attention.png").exists() and len(made) == 1  # the second run never made the model
    assert (out / "attention.txt").read_text(encoding="utf-8").strip() == "attention was not computed (--no-attention)"
    assert run(["pipeline", QUESTION, "--no-rag", "--no-attention", "--out", str(out)], knowledge_dir, tmp_path) == 0
    assert "steps 1–3 are empty" in capsys.readouterr().out
    assert not (out / "embedding_map.png").exists() and not (out / "distances.md").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["pipeline", "anything", "--domain", "astronomy"], "unknown domain 'astronomy'"),
        (["pipeline", "   "], "the question is empty"),
        (["pipeline", "fine", "--k", "0"], "k must be between 1 and 20, not 0"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert run([*args, "--no-attention", "--out", str(tmp_path / "out")], knowledge_dir, tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and reason in captured.err
    assert not (tmp_path / "out").exists()


def test_cli_unwritable_output_is_one_line_and_exit_2(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = write(tmp_path / "a-file", "not a folder")
    assert run(["pipeline", QUESTION, "--no-attention", "--out", str(blocker / "out")], knowledge_dir, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not write the pipeline files to" in err


def test_cli_needs_an_output_folder(knowledge_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["pipeline", QUESTION], knowledge_dir, tmp_path)
    assert exit_info.value.code == 2
