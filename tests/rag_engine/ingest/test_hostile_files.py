"""Hostile files in a knowledge folder, through the real loaders, a real sync and the real CLI (fake models only):
a PDF that makes pypdf recurse, a parser that raises something unexpected, file names that are not UTF-8 or hold
control characters, UTF-16 text, and inputs that used to make loading or chunking quadratic.

Each test builds its hostile input itself (tmp_path); none is checked in. Random inputs are in test_fuzz_loaders.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from discord.utils import escape_markdown

from bot.render.answer import check_note
from bot.render.sources import sources_embed
from bot.render.status import status_embed
from rag_engine.config import ChunkingConfig, Config, LoadingConfig
from rag_engine.engine import Engine
from rag_engine.errors import DocumentError, DocumentReadError
from rag_engine.generate.sentences import split_sentences
from rag_engine.ingest import incremental
from rag_engine.ingest.chunking import chunk
from rag_engine.ingest.loading import _closable, load_document
from rag_engine.records import Answer, Document, DomainStats, Hit, Passage, Sentence, SkippedFile
from rag_engine.safe_names import display_name, utf8_name
from ragscope import render as cli_render
from ragscope.cli import main
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.pdf import raw_pdf

LOADING = LoadingConfig()


def nested_pdf(depth: int) -> bytes:
    """A one-page PDF whose content stream is `BT [[[…]]] TJ ET` with `depth` nested arrays: pypdf parses arrays
    recursively, so a deep one raises RecursionError."""
    return raw_pdf(b"BT /F1 12 Tf " + b"[" * depth + b"]" * depth + b" TJ ET")


def fake(config: Config) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


def run(args: list[str], knowledge: Path, data: Path) -> int:
    return main([*args[:1], "--knowledge", str(knowledge), "--data-dir", str(data), *args[1:]], make_engine=fake)


def bytes_file(folder: Path, name: bytes, content: bytes) -> str:
    """Create `folder/name` from raw bytes (a name that need not be UTF-8); returns the name as Python sees it."""
    os.makedirs(os.fsencode(folder), exist_ok=True)
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        handle.write(content)
    return os.fsdecode(name)


# -- 1. whatever a loader raises is that file's failure ---------------------------------------------------------------


def test_a_pdf_nested_too_deeply_fails_alone_and_the_good_files_are_indexed(
    fake_engine: Engine, knowledge_dir: Path
) -> None:
    write(knowledge_dir / "zoology" / "deep.pdf", nested_pdf(100_000))
    update = fake_engine.index("zoology")
    assert (update.added, update.failed, update.skipped) == (2, 1, 0)
    stats = fake_engine.domain_stats("zoology")
    assert stats.files == ("quillfish.txt", "zorblat.md")
    assert stats.failed == (SkippedFile("deep.pdf", "corrupt PDF: nested too deeply", failed=True),)
    hits = fake_engine.retrieve("Agatha Plimm described the zorblat", "zoology", 2)
    assert hits[0].passage.path == "zorblat.md"


def test_ragscope_index_reports_the_deep_pdf_as_failed_and_exits_0(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(knowledge_dir / "zoology" / "deep.pdf", nested_pdf(100_000))
    assert run(["index", "--domain", "zoology", "--json"], knowledge_dir, tmp_path / "data") == 0
    (domain,) = json.loads(capsys.readouterr().out)["domains"]
    assert domain["failed"] == [{"path": "deep.pdf", "reason": "corrupt PDF: nested too deeply"}]
    assert domain["indexed_files"] == ["quillfish.txt", "zorblat.md"]


def test_the_loader_turns_a_parser_crash_into_a_document_read_error(tmp_path: Path) -> None:
    # Python 3.11's html.parser raises AssertionError on a marked section without a name.
    path = write(tmp_path / "odd.html", "<p>Fine text.</p>\n<![ x>\n<p>More.</p>\n")
    with pytest.raises(DocumentReadError, match=r"^unparsable HTML: AssertionError: expected name token"):
        load_document(path, "odd.html", LOADING)
    with pytest.raises(DocumentReadError, match=r"^corrupt PDF: nested too deeply$"):
        load_document(write(tmp_path / "deep.pdf", nested_pdf(5_000)), "deep.pdf", LOADING)


def test_a_memory_error_past_the_loader_fails_that_file_and_the_sync_goes_on(
    fake_engine: Engine, knowledge_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one stand-in here: nothing real raises MemoryError on demand. It is raised for one document only.
    def chunk_or_run_out(document: Document, config: ChunkingConfig) -> list[Passage]:
        if document.path == "quillfish.txt":
            raise MemoryError
        return chunk(document, config)

    monkeypatch.setattr(incremental, "chunk", chunk_or_run_out)
    update = fake_engine.index("zoology")
    assert (update.added, update.failed) == (1, 1)
    stats = fake_engine.domain_stats("zoology")
    assert stats.files == ("zorblat.md",)
    assert stats.failed == (SkippedFile("quillfish.txt", "could not be indexed: MemoryError", failed=True),)


# -- 2. file names that are not UTF-8 ---------------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_and_every_output_stays_utf8(
    config: Config, fake_engine: Engine, knowledge_dir: Path
) -> None:
    name = bytes_file(knowledge_dir / "zoology", b"caf\xe9.md", "Café notes on the zorblat.\n".encode())
    bytes_file(knowledge_dir / "zoology" / os.fsdecode(b"d\xff"), b"notes.md", b"Fine text.\n")
    assert name == "caf\udce9.md"
    update = fake_engine.index("zoology")
    assert (update.added, update.skipped, update.failed) == (2, 2, 0)
    stats = fake_engine.domain_stats("zoology")
    assert stats.files == ("quillfish.txt", "zorblat.md")
    assert stats.skipped == (
        SkippedFile("caf\udce9.md", "file name is not valid UTF-8"),
        SkippedFile("d\udcff/notes.md", "folder name is not valid UTF-8"),
    )
    payload = json.dumps({"stats": stats.to_dict(), "update": update.to_dict()}, ensure_ascii=False).encode("utf-8")
    skipped = json.loads(payload)["stats"]["skipped"]
    assert [entry["path"] for entry in skipped] == ["caf\\xe9.md", "d\\xff/notes.md"]
    # The stored index is UTF-8 JSON, and a restart finds the file already recorded (not read again).
    with np.load(fake_engine.index_file("zoology")) as archive:
        meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
    assert meta["records"][name]["reason"] == "file name is not valid UTF-8"
    restarted = Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)
    assert not restarted.index("zoology").applied
    assert restarted.domain_stats("zoology").skipped == stats.skipped


def test_ragscope_index_with_a_name_that_is_not_utf8_prints_it_escaped(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bytes_file(knowledge_dir / "zoology", b"caf\xe9.md", b"Some text.\n")
    # capsys encodes what is printed as UTF-8, strictly: a raw surrogate would raise here.
    assert run(["index", "--domain", "zoology", "--json"], knowledge_dir, tmp_path / "data") == 0
    (domain,) = json.loads(capsys.readouterr().out)["domains"]
    assert domain["skipped"] == [{"path": "caf\\xe9.md", "reason": "file name is not valid UTF-8"}]
    assert run(["index", "--domain", "zoology"], knowledge_dir, tmp_path / "data") == 0
    assert "    skipped caf\\xe9.md: file name is not valid UTF-8" in capsys.readouterr().out.splitlines()


# -- 9a. UTF-16 and UTF-32 with a byte-order mark ---------------------------------------------------------------------

TEXT = "# Título\n\nLine one\nline two.\n\n  Third — para 日本.\n"


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
    ],
)
def test_utf16_and_utf32_text_with_a_bom_reads_like_utf8(tmp_path: Path, bom: bytes, codec: str) -> None:
    expected = load_document(write(tmp_path / "utf8.md", TEXT), "utf8.md", LOADING).blocks
    path = write(tmp_path / "wide.md", bom + TEXT.replace("\n", "\r\n").encode(codec))
    assert load_document(path, "wide.md", LOADING).blocks == expected
    assert [(b.text, b.line_start) for b in expected][-1] == ("Third — para 日本.", 6)


def test_broken_utf16_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.txt", b"\xff\xfe" + "Some text".encode("utf-16-le") + b"\x00")  # odd length
    with pytest.raises(DocumentError, match="not valid UTF-16 text"):
        load_document(path, "cut.txt", LOADING)
    lone = write(tmp_path / "lone.txt", b"\xff\xfe" + "ab".encode("utf-16-le") + b"\x00\xd8" + "cd".encode("utf-16-le"))
    with pytest.raises(DocumentError, match="not valid UTF-16 text"):
        load_document(lone, "lone.txt", LOADING)


# -- 9b. control characters in names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\x1b[31mred.md", "a\\x1b[31mred.md"),
        ("tab\there.md", "tab\\there.md"),
        ("two\nlines\r.md", "two\\nlines\\r.md"),
        ("caf\udce9.md", "caf\\xe9.md"),
        ("lone\ud800.md", "lone\\ud800.md"),
        ("evil\u202egpj.md", "evil\\u202egpj.md"),
        ("del\x7f and c1\x9b.md", "del\\x7f and c1\\x9b.md"),
        ("café 日本 🙂 ok.md", "café 日本 🙂 ok.md"),
    ],
)
def test_display_name_escapes_what_a_terminal_or_utf8_cannot_take(name: str, shown: str) -> None:
    assert display_name(name) == shown
    display_name(name).encode("utf-8")
    assert utf8_name(name).encode("utf-8")  # only the surrogates escaped ...
    assert utf8_name("a\x1b.md") == "a\x1b.md"  # ... JSON escapes control characters itself


HOSTILE = "a\x1b[31mred\x1b[0m\tx.md"
SHOWN = "a\\x1b[31mred\\x1b[0m\\tx.md"


def _stats() -> DomainStats:
    skipped = (SkippedFile(HOSTILE, "unsupported file type"), SkippedFile("caf\udce9.md", "name", failed=True))
    return DomainStats("zoology", (HOSTILE,), 1, skipped, built_at=1.0, embedding_model="m")


def _answer() -> Answer:
    passage = Passage(7, HOSTILE, "The zorblat eats moss.", 1, 1)
    hit = Hit(1, passage, 0.5, domain="zoology", in_prompt=True)
    evidence = Sentence("The zorblat eats moss.", 7, HOSTILE, 1, domain="zoology")
    return Answer(
        "q", "zoology", True, "moss", (hit,), "p", 1, (), {"total": 0.1}, {}, top_k=1, max_distance=1.0,
        evidence=evidence, grounding="grounded",
    )  # fmt: skip


def test_the_terminal_shows_hostile_names_escaped() -> None:
    listing = cli_render.domain_stats([_stats()])
    assert f"skipped {SHOWN}: unsupported file type" in listing and "failed caf\\xe9.md: name" in listing
    sources = cli_render.sources(_answer())
    assert f"zoology/{SHOWN} L1-1" in sources
    check = cli_render.check(_answer())
    assert f"Evidence (zoology/{SHOWN}:1)" in check
    for text in (listing, sources, check):
        assert "\x1b" not in text and "\t" not in text
        text.encode("utf-8")


def test_the_terminal_shows_a_hostile_name_of_a_real_sync_escaped(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(knowledge_dir / "zoology" / "a\x1b[31mred.csv", "a,b\n")
    write(knowledge_dir / "zoology" / "tab\there.md", "The tabbed file tells of the quillfish.\n")
    assert run(["index", "--domain", "zoology"], knowledge_dir, tmp_path / "data") == 0
    out = capsys.readouterr().out
    assert "skipped a\\x1b[31mred.csv: unsupported file type .csv" in out and "\x1b" not in out
    assert (
        run(["ask", "tabbed file quillfish", "--domain", "zoology", "--mode", "bm25"], knowledge_dir, tmp_path / "data")
        == 0
    )
    out = capsys.readouterr().out
    assert "zoology/tab\\there.md L1-1" in out and "tab\there" not in out


def test_discord_shows_hostile_names_escaped() -> None:
    status = status_embed([_stats()])
    value = status.fields[0].value or ""
    assert f"skipped `{SHOWN}`" in value and "failed `caf\\xe9.md`" in value
    source = sources_embed(_answer()).fields[0].name or ""
    assert f"zoology/{SHOWN} L1-1" in source
    check = check_note(_answer())
    assert escape_markdown(f"zoology/{SHOWN}:1") in check
    for text in (value, source, check):
        assert "\x1b" not in text and "\t" not in text
        text.encode("utf-8")


# -- 4. linear loading and chunking ------------------------------------------------------------------------------------


def test_a_few_megabytes_of_short_paragraphs_keep_their_lines_and_passages(tmp_path: Path) -> None:
    count = 200_000  # ~4.5 MB; every paragraph is one line, so paragraph i is on line 2i + 1
    text = "".join(f"Paragraph {i} of the long file says little.\n\n" for i in range(count))
    document = load_document(write(tmp_path / "long.md", text), "long.md", LOADING)
    assert len(document.blocks) == count
    assert all(block.line_start == block.line_end == 2 * i + 1 for i, block in enumerate(document.blocks))
    passages = chunk(document, ChunkingConfig(800, 150))
    covered: set[int] = set()
    for passage in passages:
        numbers = [int(part.split()[1]) for part in passage.text.split("\n\n")]
        assert numbers == list(range(numbers[0], numbers[-1] + 1))  # whole paragraphs, in order
        assert (passage.line_start, passage.line_end) == (2 * numbers[0] + 1, 2 * numbers[-1] + 1)
        assert len(passage.text) <= 800
        covered.update(numbers)
    assert covered == set(range(count))
    assert len(passages) > count * 40 // 800


def test_a_megabyte_long_word_and_a_long_paragraph_are_cut_in_one_pass(tmp_path: Path) -> None:
    word = "x" * 2_000_003
    document = load_document(write(tmp_path / "blob.txt", word), "blob.txt", LOADING)
    assert [block.text for block in document.blocks] == [word]
    passages = chunk(document, ChunkingConfig(800, 0))
    assert [len(p.text) for p in passages] == [800] * 2500 + [3]
    sentences = " ".join(f"Sentence {i} is here." for i in range(60_000))
    passages = chunk(load_document(write(tmp_path / "para.md", sentences), "para.md", LOADING), ChunkingConfig(800, 0))
    assert " ".join(p.text for p in passages) == sentences
    assert all(len(p.text) <= 800 for p in passages)


def test_sentences_of_a_long_passage_carry_their_lines() -> None:
    lines = 50_000
    text = "\n".join(f"Line {i} ends here. Then No. {i} follows." for i in range(lines))
    passage = Passage(1, "p.md", text, line_start=10, line_end=10 + lines - 1)
    sentences = split_sentences(passage)
    assert len(sentences) == 2 * lines
    assert [s.line for s in sentences[:4]] == [10, 10, 11, 11]
    assert all(s.line == 10 + i // 2 for i, s in enumerate(sentences))


def test_unclosed_html_at_the_end_is_text_read_in_one_pass(tmp_path: Path) -> None:
    tail = "<a b c " * 20_000  # no ">" after it: html.parser re-scanned the rest once per "<"
    comments = "<!--x>" * 20_000  # no "-->" after them: the same
    html = f"<p>Intro.</p>\n{comments}\n<p>Middle.</p>\n{tail}"
    blocks = load_document(write(tmp_path / "open.html", html), "open.html", LOADING).blocks
    assert blocks[0].text == "Intro." and (blocks[0].line_start, blocks[0].line_end) == (1, 1)
    assert blocks[-1].text == tail.strip() and blocks[-1].line_start == 4
    assert any(block.text.startswith("<!--x>") and block.line_start == 2 for block in blocks)
    assert _closable("<p>a</p><b") == "<p>a</p>&lt;b"
    assert _closable("<!-- a --><p>b<!--c>") == "<!-- a --><p>b&lt;!--c>"
    assert _closable("<p>done</p>") == "<p>done</p>"
