"""Loading: turn one file into a `Document` of text blocks, or a `DocumentError` saying why not.

Supported: Markdown and plain text (paragraphs with line numbers), HTML (visible text only, with source line
numbers) and PDF (text per page, via pypdf). Anything else, anything binary, empty or over the size limit is
refused with a short reason; the caller logs it, records it in the index stats and keeps going.
Chunking is not done here (see `chunking.py`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from rag_engine.config import LoadingConfig
from rag_engine.errors import DocumentError, DocumentReadError
from rag_engine.records import Block, Document

log = logging.getLogger(__name__)
# pypdf logs every oddity of a damaged file as a warning; the skip reason we record says enough.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# How much of a file is sniffed for NUL bytes before it is decoded.
_SNIFF_BYTES = 8192
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


# Files editors, downloads and office suites leave next to a document while working on it: never documents,
# never reported. (vim: .swp/.swx/.swo and its `4913` probe; emacs: #name#; browsers: .part/.crdownload.)
_SCRATCH_SUFFIXES = (".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload", ".bak")


def is_candidate(path: Path, config: LoadingConfig) -> bool:
    """True for files the indexer should look at (and report on); hidden, scratch and ignored files are silent."""
    name = path.name
    if name.startswith((".", "~")) or name.endswith("~") or (name.startswith("#") and name.endswith("#")):
        return False
    if name == "4913" or name.lower().endswith(_SCRATCH_SUFFIXES):
        return False
    return name not in config.ignored_names


def load_document(path: Path, relative: str, config: LoadingConfig) -> Document:
    """Read and parse one file. Raises `DocumentError` with a user-readable reason."""
    suffix = path.suffix.lower()
    if suffix not in config.extensions:
        raise DocumentError(f"unsupported file type {suffix or '(none)'}")
    try:
        size = path.stat().st_size
        if size > config.max_file_bytes:
            raise DocumentError(f"too large: {size:,} bytes (limit {config.max_file_bytes:,})")
        if size == 0:
            raise DocumentError("empty file")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DocumentReadError("file disappeared while indexing") from exc
    except OSError as exc:
        raise DocumentReadError(f"unreadable: {exc.strerror or exc}") from exc
    if suffix == ".pdf":
        kind, blocks = "pdf", _pdf_blocks(data)
    else:
        text = _decode_text(data)
        if suffix in (".html", ".htm"):
            kind, blocks = "html", _html_blocks(text)
        else:
            kind, blocks = suffix.lstrip("."), list(_paragraph_blocks(text, first_line=1))
    if not blocks:
        raise DocumentError("no text found")
    return Document(
        path=relative,
        kind=kind,
        blocks=tuple(blocks),
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise DocumentError("binary content (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (invalid byte at offset {exc.start})") from exc
    # Control characters other than whitespace are a strong sign of a binary file with a text name.
    controls = sum(1 for ch in text[:_SNIFF_BYTES] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > max(8, len(text[:_SNIFF_BYTES]) // 100):
        raise DocumentError("binary content (control characters), not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _paragraph_blocks(text: str, first_line: int, page: int | None = None) -> Iterator[Block]:
    """Split on blank lines; each paragraph keeps its 1-based line span."""
    position = 0
    for match in [*_BLANK_LINE.finditer(text), None]:
        end = match.start() if match else len(text)
        chunk = text[position:end]
        stripped = chunk.strip()
        if stripped:
            lead = len(chunk) - len(chunk.lstrip())
            start_line = first_line + text.count("\n", 0, position + lead)
            end_line = start_line + stripped.count("\n")
            yield Block(text=_squeeze(stripped), line_start=start_line, line_end=end_line, page=page)
        if match:
            position = match.end()


def _squeeze(text: str) -> str:
    """Collapse runs of spaces inside a paragraph but keep its line breaks (lists, headings)."""
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


class _VisibleText(HTMLParser):
    """Collects visible text with the source line where each piece started; block tags end a paragraph."""

    _BLOCK_TAGS = frozenset(
        """address article aside blockquote br dd div dl dt figcaption footer form h1 h2 h3 h4 h5 h6
        header hr li main nav ol p pre section table td th tr ul title""".split()  # noqa: SIM905
    )
    _HIDDEN_TAGS = frozenset(("script", "style", "noscript", "template", "head"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._parts: list[str] = []
        self._start: int | None = None
        self._end = 0
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN_TAGS and tag != "head":
            self._hidden += 1
        if tag in self._BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN_TAGS and tag != "head" and self._hidden:
            self._hidden -= 1
        if tag in self._BLOCK_TAGS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self._hidden or not data.strip():
            return
        line = self.getpos()[0]
        if self._start is None:
            leading = data[: len(data) - len(data.lstrip())]
            self._start = line + leading.count("\n")
        self._end = line + data.rstrip().count("\n")
        self._parts.append(data)

    def flush(self) -> None:
        text = " ".join(" ".join(self._parts).split())
        if text and self._start is not None:
            self.blocks.append(Block(text=text, line_start=self._start, line_end=max(self._end, self._start)))
        self._parts, self._start = [], None


def _html_blocks(text: str) -> list[Block]:
    parser = _VisibleText()
    parser.feed(text)
    parser.close()
    parser.flush()
    return parser.blocks


def _pdf_blocks(data: bytes) -> list[Block]:
    # Imported here: pypdf is only needed when a PDF shows up.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentError("encrypted PDF")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            page_text = (page.extract_text() or "").replace("\r\n", "\n")
            blocks.extend(_paragraph_blocks(page_text, first_line=1, page=number))
    except DocumentError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DocumentReadError(f"corrupt PDF: {exc}") from exc
    return blocks
