"""Property-based tests (hypothesis) of loading, chunking and a whole sync over random files, and a bounded fuzz of
the PDF and HTML loaders with mutated valid documents.

The properties: nothing but a `DocumentError` ever comes out of `load_document`; what it returns chunks into passages
within the size limit whose text is UTF-8; a sync of a folder of random files (random bytes, names that are not
UTF-8 or hold control characters, random nesting) raises nothing, records every candidate file as indexed, skipped
or failed with a reason, always indexes the good files written beside them, and its stats encode as UTF-8 JSON.
Each test is bounded by its number of examples (a few seconds each on 2 cores); the hostile cases found by hand are
in test_hostile_files.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_engine.config import ChunkingConfig, Config, LoadingConfig
from rag_engine.engine import Engine
from rag_engine.errors import DocumentError
from rag_engine.ingest.chunking import chunk
from rag_engine.ingest.loading import is_candidate, load_document
from rag_engine.records import Document
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.pdf import make_pdf, raw_pdf

LOADING = LoadingConfig()
CHUNKING = ChunkingConfig(120, 30)  # small, so that short random texts still make several passages
SUFFIXES = (".md", ".txt", ".html", ".htm", ".pdf", ".csv", "")
GOOD = {
    "good-notes.md": b"# Good notes\n\nThe zorblat eats blue moss in the Quenth valley.\n",
    "good-page.html": b"<html><body><h1>Good page</h1><p>The quillfish has forty-two spines.</p></body></html>\n",
    "good-report.pdf": make_pdf(["The basalt columns are sixty million years old."]),
}
GOOD_HTML = GOOD["good-page.html"]
GOOD_PDF = make_pdf(["First page of the report.", "Second page.\nWith two lines."])
# Pieces that parsers choke on, for the random contents and the mutations.
NASTY = [
    b"[" * 3000,
    b"<<" * 2000,
    b"(" * 2000,
    b"\x00",
    b"\xff\xfe",
    b"\xfe\xff",
    b"<a b c ",
    b"<!--",
    b"<![ x>",
    b"&#xD800;",
    b"</",
    b"<script>",
    b"obj",
    b"endobj",
    b"stream\n",
    b"endstream",
    b"xref\n0 99\n",
    b"trailer << /Root 1 0 R /Size 1 >>",
    b"/Filter /FlateDecode",
    b"/Length 99999999",
    b"startxref\n0\n%%EOF",
    "é日\u202e🙂".encode(),
    b"\r\n\r\n",
    b"\n\n",
    b". No. 5. e.g. A",
]


# Random nesting: arrays, dictionaries, strings, balanced or not, up to depths past Python's recursion limit.
BRACKETS = [(b"[", b"]"), (b"<<", b">>"), (b"(", b")"), (b"<", b">")]
nesting = st.builds(
    lambda pair, depth, closed: pair[0] * depth + (pair[1] * depth if closed else b""),
    st.sampled_from(BRACKETS),
    st.integers(1, 4000),
    st.booleans(),
)


def fragments() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=64), st.sampled_from(NASTY), st.text(max_size=40).map(str.encode), nesting)


def contents() -> st.SearchStrategy[bytes]:
    return st.lists(fragments(), max_size=12).map(b"".join)


# A name segment as raw bytes: any byte but "/" and NUL (so invalid UTF-8 and control characters too). The "r" in
# front keeps it clear of the good files, of "." and "..", and of hidden names (a folder's would never be walked).
name_bytes = st.binary(min_size=1, max_size=12).map(lambda raw: b"r" + raw.replace(b"/", b"_").replace(b"\x00", b"_"))


@st.composite
def random_files(draw: st.DrawFn) -> list[tuple[tuple[bytes, ...], bytes]]:
    """(folder parts + file name, content) for up to 8 files, nested up to 3 folders deep."""
    files = []
    for _ in range(draw(st.integers(0, 8))):
        folders = tuple(draw(st.lists(name_bytes, max_size=3)))
        name = draw(name_bytes) + draw(st.sampled_from(SUFFIXES)).encode()
        files.append(((*folders, name), draw(contents())))
    return files


def _check_document(document: Document) -> None:
    assert document.blocks
    for block in document.blocks:
        assert block.text and block.text == block.text.strip()
        assert 1 <= block.line_start <= block.line_end
        block.text.encode("utf-8")
    for passage in chunk(document, CHUNKING):
        assert 0 < len(passage.text) <= CHUNKING.chunk_size_chars
        passage.text.encode("utf-8")


@settings(max_examples=300, deadline=None, database=None)
@given(data=contents(), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_load_into_a_document_or_a_document_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"doc{suffix}"
        path.write_bytes(data)
        try:
            document = load_document(path, path.name, LOADING)
        except DocumentError as exc:
            assert str(exc)
            str(exc).encode("utf-8")
            return
        _check_document(document)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=random_files())
def test_a_sync_over_random_files_records_every_file_and_indexes_the_good_ones(
    files: list[tuple[tuple[bytes, ...], bytes]],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        domain = root / "knowledge" / "mixed"
        domain.mkdir(parents=True)
        for name, content in GOOD.items():
            (domain / name).write_bytes(content)
        for parts, content in files:
            folder = os.path.join(os.fsencode(domain), *parts[:-1])
            try:
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, parts[-1]), "wb") as handle:
                    handle.write(content)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                continue  # a random file and a random folder with the same name: keep the first
        config = dataclasses.replace(
            Config().with_paths(knowledge_dir=root / "knowledge", data_dir=root / "data"), chunking=CHUNKING
        )
        engine = Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)

        update = engine.index("mixed")

        candidates = {
            Path(current, name).relative_to(domain).as_posix()
            for current, _, names in os.walk(domain)
            for name in names
            if is_candidate(name, config.loading)
        }
        records = engine.snapshot("mixed").records
        assert set(records) == candidates
        for rel, record in records.items():
            assert (record.reason is None) == bool(record.passage_ids), rel
            assert record.reason is None or record.reason.strip()
        stats = engine.domain_stats("mixed")
        assert set(GOOD) <= set(stats.files)
        assert len(stats.files) + len(stats.skipped) == len(candidates)
        assert update.added == len(stats.files)
        json.dumps({"stats": stats.to_dict(), "update": update.to_dict()}, ensure_ascii=False).encode("utf-8")


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few random edits: bytes replaced, pieces inserted or deleted, the end cut off. Half the
    edits land where the structure is (inside a content stream, at a dictionary, an array, a string, a tag)."""
    data = bytearray(original)
    structure = [m.end() for m in re.finditer(rb"stream\n|BT |<<|\[|\(|/|<|>", original)]
    for _ in range(draw(st.integers(1, 6))):
        at = min(len(data), draw(st.one_of(st.integers(0, len(data)), st.sampled_from(structure))))
        edit = draw(st.sampled_from(("replace", "insert", "delete", "truncate")))
        if edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(fragments())
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "truncate":
            del data[at:]
    return bytes(data)


def _load_mutated(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(data)
        try:
            document = load_document(path, name, LOADING)
        except DocumentError as exc:
            str(exc).encode("utf-8")
            return
        _check_document(document)


# A content stream of random operators, operands, nesting and nasty pieces, inside a well-formed file (so that pypdf
# gets as far as parsing it), sometimes mutated further.
content_streams = st.lists(
    st.one_of(
        fragments(),
        st.sampled_from([b"BT ", b" ET", b" Tj", b" TJ", b" Td", b"/F1 12 Tf ", b"(text) "]),
    ),
    max_size=12,
).map(lambda parts: b"BT /F1 12 Tf " + b"".join(parts) + b" TJ ET")  # a text operator: pypdf parses the stream
pdfs = st.one_of(
    mutated(GOOD_PDF),
    content_streams.map(raw_pdf),
    content_streams.map(raw_pdf).flatmap(mutated),
)


@settings(max_examples=400, deadline=None, database=None)
@given(data=pdfs)
def test_mutated_pdfs_give_a_document_or_a_document_error(data: bytes) -> None:
    _load_mutated(data, "report.pdf")


@settings(max_examples=400, deadline=None, database=None)
@given(data=mutated(GOOD_HTML))
def test_mutated_html_gives_a_document_or_a_document_error(data: bytes) -> None:
    _load_mutated(data, "page.html")
