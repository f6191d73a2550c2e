"""Loading: turn one file into a `Document` of text blocks, or a `DocumentError` saying why not.

Supported: Markdown and plain text in UTF-8, or UTF-16/UTF-32 with a byte-order mark (paragraphs with line
numbers), HTML (visible text only, with source line numbers) and PDF (text per page, via pypdf). Anything else,
anything binary, empty or over the size limit, and a file whose name is not UTF-8, is refused with a short reason;
the caller logs it, records it in the index stats and keeps going. Whatever a parser raises on a hostile file
(a RecursionError deep in pypdf, an AssertionError of `html.parser`, a MemoryError) comes out as a
`DocumentReadError`: one bad file never stops a domain. All the work is linear in the file's size.
Chunking is not done here (see `chunking.py`).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from rag_engine.config import LoadingConfig
from rag_engine.errors import DocumentError, DocumentReadError, FileAccessError
from rag_engine.records import Block, Document
from rag_engine.safe_names import display_name, is_utf8_name

log = logging.getLogger(__name__)
# pypdf logs every oddity of a damaged file as a warning; the skip reason we record says enough.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# How much of a file is sniffed for NUL bytes before it is decoded.
_SNIFF_BYTES = 8192
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# Byte-order marks of the Unicode encodings read besides UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
# The codecs named here read the mark and drop it.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Reasons quote at most this much of a parser's own message (which may hold the file's bytes).
_REASON_CHARS = 160


# Files editors, downloads and office suites leave next to a document while working on it: never documents,
# never reported. (vim: .swp/.swx/.swo and its `4913` probe; emacs: #name#; browsers: .part/.crdownload.)
_SCRATCH_SUFFIXES = (".swp", ".swx", ".swo", ".tmp", ".part", ".crdownload", ".bak")


def is_candidate(name: str, config: LoadingConfig) -> bool:
    """True for a file name the indexer should look at (and report on); hidden, scratch and ignored files are
    silent. A name, not a path: the folder walk asks this of every file, and a `Path` per file costs more than
    the check."""
    if name.startswith((".", "~")) or name.endswith("~") or (name.startswith("#") and name.endswith("#")):
        return False
    if name == "4913" or name.lower().endswith(_SCRATCH_SUFFIXES):
        return False
    return name not in config.ignored_names


def load_document(path: Path, relative: str, config: LoadingConfig) -> Document:
    """Read and parse one file. Raises `DocumentError` with a user-readable reason, and nothing else."""
    if not is_utf8_name(relative):
        # Its passages would carry a path no JSON, log or Discord message can hold as it is; skipped, and shown
        # with the bad bytes escaped (`caf\\xe9.md`) so that someone can rename it.
        part = "file" if not is_utf8_name(path.name) else "folder"
        raise DocumentError(f"{part} name is not valid UTF-8")
    suffix = path.suffix.lower()
    if suffix not in config.extensions:
        raise DocumentError(f"unsupported file type {display_name(suffix) or '(none)'}")
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
        raise FileAccessError(f"unreadable: {exc.strerror or exc}") from exc
    try:
        kind, blocks = _parse(suffix, data)
    except DocumentError:
        raise
    except Exception as exc:  # any parser bug on any file is that file's failure, nothing more
        log.debug("parsing %s raised", display_name(relative), exc_info=True)
        raise DocumentReadError(_failure_reason(suffix, exc)) from exc
    if not blocks:
        raise DocumentError("no text found")
    return Document(
        path=relative,
        kind=kind,
        blocks=tuple(blocks),
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _parse(suffix: str, data: bytes) -> tuple[str, list[Block]]:
    if suffix == ".pdf":
        return "pdf", _pdf_blocks(data)
    text = _decode_text(data)
    if suffix in (".html", ".htm"):
        return "html", _html_blocks(text)
    return suffix.lstrip("."), list(_paragraph_blocks(text, first_line=1))


def _failure_reason(suffix: str, exc: Exception) -> str:
    """A short reason for a parser that raised something other than its documented errors."""
    what = {".pdf": "corrupt PDF", ".html": "unparsable HTML", ".htm": "unparsable HTML"}.get(suffix, "unreadable")
    if isinstance(exc, RecursionError):
        return f"{what}: nested too deeply"
    if isinstance(exc, MemoryError):
        return f"{what}: out of memory while parsing"
    return f"{what}: {type(exc).__name__}: {_quoted(exc)}"


def _quoted(exc: BaseException) -> str:
    """An exception's message for a reason: one line, escaped, cut (a parser may quote the file's bytes)."""
    message = " ".join(str(exc).split()) or "(no message)"
    if len(message) > _REASON_CHARS:
        message = message[: _REASON_CHARS - 1] + "…"
    return display_name(message)


def _decode_text(data: bytes) -> str:
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(f"not valid {name} text (invalid bytes at offset {exc.start})") from exc
            break
    else:
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
    # A running line count: `line` is the line at offset `counted_to`, so each newline is counted once (counting
    # from the top of the text for every paragraph made a 4 MB file of short paragraphs take minutes).
    line, counted_to = first_line, 0
    for match in [*_BLANK_LINE.finditer(text), None]:
        end = match.start() if match else len(text)
        chunk = text[position:end]
        stripped = chunk.strip()
        if stripped:
            start = position + len(chunk) - len(chunk.lstrip())
            line += text.count("\n", counted_to, start)
            counted_to = start
            yield Block(text=_squeeze(stripped), line_start=line, line_end=line + stripped.count("\n"), page=page)
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
    parser.feed(_closable(text))
    parser.close()
    parser.flush()
    return parser.blocks


def _closable(html: str) -> str:
    """`html` with the `<` that can never be closed written as `&lt;` (the same text, shown the same way).

    Python 3.11's `html.parser` gets stuck at a tag or comment that is not closed before the end; at `close()` it
    then emits one character as text and re-scans the rest of the file from the next `<`, once per `<`: 60 kB of
    `<a <a <a …` took 30 s, 20 MB would take days. A `<` after the last `>`, and a `<!--` after the last `-->`,
    can never be closed, so writing them as text up front is what the parser would end up doing, in one pass."""
    last_close = html.rfind(">")
    head, tail = html[: last_close + 1], html[last_close + 1 :].replace("<", "&lt;")
    comment_end = head.rfind("-->")
    safe_to = comment_end + 3 if comment_end >= 0 else 0
    return head[:safe_to] + head[safe_to:].replace("<!--", "&lt;!--") + tail


def _pdf_text(text: str) -> str:
    """A page's extracted text with Windows line ends made Unix and lone surrogates (from a PDF string that is
    broken UTF-16) replaced: passage text must encode as UTF-8 for hashing, the cache and JSON."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\r\n", "\n"))


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
            page_text = _pdf_text(page.extract_text() or "")
            blocks.extend(_paragraph_blocks(page_text, first_line=1, page=number))
    except DocumentError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DocumentReadError(f"corrupt PDF: {_quoted(exc)}") from exc
    return blocks
