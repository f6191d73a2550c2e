"""Loading: every supported type gives text blocks with spans; every bad file gives a reason, not a crash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag_engine.config import LoadingConfig
from rag_engine.errors import DocumentError
from rag_engine.ingest.loading import is_candidate, load_document
from tests.conftest import write
from tests.pdf import make_pdf

CONFIG = LoadingConfig()


def test_markdown_paragraphs_keep_line_spans(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "# Title\n\nFirst line\nsecond line.\n\n\n  Third   para.\n")
    document = load_document(path, "a.md", CONFIG)
    assert [(b.text, b.line_start, b.line_end) for b in document.blocks] == [
        ("# Title", 1, 1),
        ("First line\nsecond line.", 3, 4),
        ("Third para.", 7, 7),
    ]
    assert document.kind == "md"


def test_html_keeps_visible_text_only_with_source_lines(tmp_path: Path) -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>var x = 1;</script></head>\n"
        "<body>\n<h1>Gouda</h1>\n<p>Gouda is a Dutch\ncheese &amp; a city.</p>\n</body></html>\n"
    )
    document = load_document(write(tmp_path / "g.html", html), "g.html", CONFIG)
    texts = [b.text for b in document.blocks]
    assert texts == ["Gouda", "Gouda is a Dutch cheese & a city."]
    assert [(b.line_start, b.line_end) for b in document.blocks] == [(3, 3), (4, 5)]


def test_pdf_text_is_read_per_page(tmp_path: Path) -> None:
    path = write(tmp_path / "r.pdf", make_pdf(["Page one talks about zorblats.", "Page two is about moss."]))
    document = load_document(path, "r.pdf", CONFIG)
    assert [b.page for b in document.blocks] == [1, 2]
    assert "zorblats" in document.blocks[0].text and "moss" in document.blocks[1].text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "corrupt PDF"),
        ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content"),
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"\n\n   \n", "no text"),
        ("table.csv", b"a,b\n1,2\n", "unsupported file type .csv"),
        ("controls.txt", bytes(range(1, 31)) * 20, "binary content"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DocumentError, match=reason):
        load_document(path, name, CONFIG)


def test_files_over_the_size_limit_are_refused_without_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "word " * 1000)
    with pytest.raises(DocumentError, match="too large: 5,000 bytes"):
        load_document(path, "big.txt", dataclasses.replace(CONFIG, max_file_bytes=4999))


def test_a_file_deleted_before_reading_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="disappeared"):
        load_document(tmp_path / "gone.md", "gone.md", CONFIG)


def test_hidden_editor_and_ignored_files_are_not_candidates() -> None:
    assert is_candidate("notes.md", CONFIG)
    for name in (".hidden.md", "notes.md~", "~$draft.md", "questions.jsonl"):
        assert not is_candidate(name, CONFIG)


def test_a_utf16_file_with_a_bom_is_text_not_binary(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.txt", "First para.\r\n\r\nSecond, with é.\r\n".encode("utf-16"))  # BOM included
    document = load_document(path, "wide.txt", CONFIG)
    assert [(b.text, b.line_start) for b in document.blocks] == [("First para.", 1), ("Second, with é.", 3)]


def test_a_name_that_is_not_utf8_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"^file name is not valid UTF-8$"):
        load_document(tmp_path / "caf\udce9.md", "caf\udce9.md", CONFIG)  # never opened: it does not even exist
