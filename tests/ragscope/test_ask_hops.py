"""`ragscope ask --hops 2` with fake models: the JSON carries both rounds, the text shows round 2's query and
hits; `--hops 1` prints what a plain ask prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from ragscope.cli import main
from tests.fakes import EchoGenerator, HashingEmbedder

QUESTION = "Where does the quillfish swim?"


def fake(config: Config) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


def ask(args: list[str], knowledge: Path, data: Path) -> int:
    return main(["ask", "--knowledge", str(knowledge), "--data-dir", str(data), *args], make_engine=fake)


def test_json_has_both_rounds(knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask([QUESTION, "--hops", "2", "--k", "1", "--json"], knowledge_dir, tmp_path) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hops"] == 2
    first, second = data["rounds"]
    assert first["query"] == QUESTION and first["origin"] == "question"
    assert second["query"] and second["origin"] in ("model", "fallback")
    assert len(first["hits"]) == len(second["hits"]) == 1
    assert first["hits"][0]["path"] != second["hits"][0]["path"]  # round 2 leaves out what round 1 found
    assert {s["path"] for s in data["sources"]} == {first["hits"][0]["path"], second["hits"][0]["path"]}


def test_text_shows_round_twos_query_and_hits(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask([QUESTION, "--hops", "2", "--k", "1"], knowledge_dir, tmp_path) == 0
    out = capsys.readouterr().out
    assert "Retrieval rounds (2 hops" in out
    round_two = out.split("round 2: “", 1)[1]
    assert round_two.split("”", 1)[0].strip()  # the follow-up query
    assert " 1. " in round_two.split("\n", 2)[1]  # its hit, ranked, with a distance


def test_one_hop_prints_no_rounds(knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask([QUESTION, "--hops", "1", "--json"], knowledge_dir, tmp_path) == 0
    one = json.loads(capsys.readouterr().out)
    assert ask([QUESTION, "--json"], knowledge_dir, tmp_path) == 0
    default = json.loads(capsys.readouterr().out)
    assert one["rounds"] == [] and one["prompt"] == default["prompt"]
    assert ask([QUESTION, "--hops", "1"], knowledge_dir, tmp_path) == 0
    assert "Retrieval rounds" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        ask([QUESTION, "--hops", "3"], knowledge_dir, tmp_path)
