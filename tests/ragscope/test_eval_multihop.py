"""`ragscope eval answers --questions multihop --hops N` with fake models: each domain's multihop.jsonl asked with
one or two retrieval rounds, the "sources retrieved" rate in the report. The real-model figures are
benchmarks/results/multihop.json (tests/rag_engine/test_hops_real.py checks two hops beat one)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionsFileError
from ragscope import eval_answers
from tests.conftest import run_eval_command, write
from tests.fakes import HashingEmbedder, ScriptedGenerator

ROW = {
    "question": "Where does the quillfish swim?",
    "source": ["quillfish.txt", "zorblat.md"],
    "answer": "Varnholm",
    "key": ["Varnholm"],
    "kind": "multihop",
}


def test_the_multihop_file_is_asked_with_the_hops_asked_for(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write(config.paths.knowledge_dir / "zoology" / "multihop.jsonl", json.dumps(ROW) + "\n")
    one = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, top_k=1))
    engine = Engine(one, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("Blue moss zorblat."))
    reports = {}
    for hops in ("1", "2"):
        args = ["answers", "--questions", "multihop", "--hops", hops, "--columns", "rag", "--json"]
        assert run_eval_command(eval_answers.register, args, engine) == 0
        reports[hops] = json.loads(capsys.readouterr().out)
    for hops, body in reports.items():
        assert body["settings"]["hops"] == int(hops)
        assert list(body["domains"]) == ["zoology"]  # geology has no multihop.jsonl
        assert body["results"][0]["kind"] == "multihop"
    # One passage per round: one round retrieves one of the two files, two rounds (the fallback query holds
    # the first passage's names) can retrieve both.
    assert reports["1"]["overall"]["sources.retrieved"] == 0.0
    assert len(reports["2"]["results"][0]["retrieved"]) == 2
    assert reports["2"]["overall"]["sources.retrieved"] == 1.0
    assert reports["1"]["results"][0]["rounds"] == []
    first, second = reports["2"]["results"][0]["rounds"]
    assert first["origin"] == "question" and second["query"] and first["files"] != second["files"]


def test_no_multihop_file_is_refused(config: Config) -> None:
    engine = Engine(config, embedder=HashingEmbedder, generator=lambda: ScriptedGenerator("x"))
    with pytest.raises(QuestionsFileError, match=r"multihop\.jsonl"):
        run_eval_command(eval_answers.register, ["answers", "--questions", "multihop"], engine)
