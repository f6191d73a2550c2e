"""The `ragscope` CLI with fake models: output shapes, exit codes and one-line reasons for bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from ragscope.chat import ChatSession
from ragscope.cli import main
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder


def fake(config: Config) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


def run(args: list[str], knowledge: Path, data: Path) -> int:
    return main([*args[:1], "--knowledge", str(knowledge), "--data-dir", str(data), *args[1:]], make_engine=fake)


def test_ask_json_has_the_trace_with_sources_nearest_first(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ask", "Who described the zorblat in 1887?", "--json", "--k", "3"], knowledge_dir, tmp_path) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["used_rag"] is True and data["domain"] is None
    assert data["sources"][0]["path"] == "zorblat.md"
    distances = [s["distance"] for s in data["sources"]]
    assert distances == sorted(distances) and len(distances) == 3
    assert [s["rank"] for s in data["sources"]] == [1, 2, 3]
    assert all(s["text"] for s in data["sources"])
    assert data["prompt"] and data["answer"] and data["timings"]["total"] > 0
    assert set(data["models"]) == {"embedding", "generator"}


def test_ask_streams_text_then_sources_with_distances(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ask", "quillfish spines", "--domain", "zoology"], knowledge_dir, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[RAG over zoology" in out
    assert "Euclidean distance, lower is closer" in out
    assert "zoology/quillfish.txt L1-2" in out


def test_no_rag_prints_no_sources(knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["ask", "quillfish spines", "--no-rag", "--json"], knowledge_dir, tmp_path) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["used_rag"] is False and data["sources"] == []


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["ask", "anything", "--domain", "astronomy"], "unknown domain 'astronomy' (known: geology, zoology)"),
        (["ask", "   "], "the question is empty"),
        (["ask", "x" * 5000], "the question is 5,000 characters long"),
        (["ask", "fine", "--k", "0"], "k must be between 1 and 20, not 0"),
        (["index", "--domain", "astronomy"], "unknown domain"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert run(args, knowledge_dir, tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("ragscope: error: ")
    assert reason in captured.err


@pytest.mark.parametrize("command", [["ask", "anything"], ["index"], ["domains"]])
def test_missing_knowledge_folder_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert run(command, tmp_path / "nowhere", tmp_path / "data") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "knowledge folder not found" in err


def test_index_json_reports_files_passages_and_skips(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(knowledge_dir / "zoology" / "bad.pdf", b"%PDF-1.7 not really")
    write(knowledge_dir / "zoology" / "notes.docx", b"PK\x03\x04 word document")
    assert run(["index", "--json"], knowledge_dir, tmp_path / "data") == 0
    domains = {d["domain"]: d for d in json.loads(capsys.readouterr().out)["domains"]}
    assert set(domains) == {"geology", "zoology"}
    zoology = domains["zoology"]
    assert zoology["files"] == 2
    assert sorted(zoology["indexed_files"]) == ["quillfish.txt", "zorblat.md"]
    assert [(s["path"], s["reason"]) for s in zoology["skipped"]] == [("notes.docx", "unsupported file type .docx")]
    assert zoology["failed"][0]["path"] == "bad.pdf" and "corrupt PDF" in zoology["failed"][0]["reason"]
    assert zoology["passages"] >= 2 and zoology["version"] == 1 and zoology["updated_at"] > 0
    assert zoology["update"]["added"] == 2 and zoology["update"]["rebuilt"]
    assert (tmp_path / "data" / "indexes" / "zoology.npz").is_file()
    assert run(["domains"], knowledge_dir, tmp_path / "data") == 0
    assert "zoology: 2 files" in capsys.readouterr().out


def test_separate_knowledge_folders_are_served_side_by_side(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    write(other / "astronomy" / "moon.md", "The moon of Quenth is called Lurra.\n")
    assert run(["domains", "--json"], other, tmp_path / "data-other") == 0
    assert [d["domain"] for d in json.loads(capsys.readouterr().out)["domains"]] == ["astronomy"]
    assert run(["domains", "--json"], knowledge_dir, tmp_path / "data-main") == 0
    assert [d["domain"] for d in json.loads(capsys.readouterr().out)["domains"]] == ["geology", "zoology"]


def test_chat_session_runs_the_bot_commands(fake_engine: Engine) -> None:
    script = (
        "/domain\n/domain zoology\nWho described the zorblat?\n/norag What is a zorblat?\n/domain mars\n/bogus\n/quit\n"
    )
    out = io.StringIO()
    assert ChatSession(fake_engine, None, lambda engine, domain: None).run(io.StringIO(script), out) == 0
    text = out.getvalue()
    assert "current domain: all; available: geology, zoology" in text
    assert "domain set to zoology" in text
    assert "zoology/zorblat.md" in text and "Euclidean distance" in text
    assert "No sources: this answer did not use retrieval." in text
    assert "error: unknown domain 'mars'" in text
    assert "unknown command /bogus" in text


def test_ask_on_a_full_disk_answers_from_the_last_index_with_a_warning(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    import rag_engine.ingest.storage

    assert run(["index", "--json"], knowledge_dir, tmp_path) == 0
    capsys.readouterr()
    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")

    def full_disk(path: Path, data: bytes, **_options: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(rag_engine.ingest.storage, "atomic_write_bytes", full_disk)
    assert (
        run(["ask", "Who described the zorblat in 1887?", "--domain", "zoology", "--json"], knowledge_dir, tmp_path)
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)["sources"][0]["path"] == "zorblat.md"
    assert "warning: zoology is not up to date" in err and "No space left on device" in err
