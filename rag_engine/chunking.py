"""Chunking: split a `Document` into `Passage`s of at most `chunk_size_chars`, on natural boundaries.

Whole paragraphs are packed together while they fit; a paragraph that is too long is cut into sentences, and a
sentence that is still too long into words. Consecutive passages share up to `chunk_overlap_chars` of trailing
sentences/paragraphs so that a fact on a boundary is found from both sides. Every passage keeps its source
path and line (or page) span. Embedding is not done here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rag_engine.config import ChunkingConfig
from rag_engine.records import Block, Document, Passage

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace and the next
# sentence's capital letter, digit or opening quote. Abbreviations like "e.g. the" do not split (lowercase).
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True)
class _Unit:
    """A piece that is never split further: a paragraph, a sentence, or a run of words."""

    text: str
    block: Block
    # The separator that goes before this unit when it follows another one in the same passage.
    joiner: str


def passage_id(path: str, line_start: int, text: str) -> int:
    """Stable 63-bit id (FAISS ids are signed int64) from where a passage is and what it says."""
    digest = hashlib.sha256(f"{path}\0{line_start}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _split_words(text: str, size: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > size:  # a "word" longer than a passage (a URL, a hash): hard cut
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:size])
            word = word[size:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size and current:
            pieces.append(current)
            current = word
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _units(blocks: tuple[Block, ...], size: int) -> list[_Unit]:
    units: list[_Unit] = []
    for block in blocks:
        if len(block.text) <= size:
            units.append(_Unit(block.text, block, "\n\n"))
            continue
        first = True
        for sentence in split_sentences(block.text):
            for piece in [sentence] if len(sentence) <= size else _split_words(sentence, size):
                units.append(_Unit(piece, block, "\n\n" if first else " "))
                first = False
    return units


def _joined(units: list[_Unit]) -> str:
    return "".join((u.joiner if i else "") + u.text for i, u in enumerate(units))


def _make_passage(path: str, units: list[_Unit]) -> Passage:
    text = _joined(units)
    blocks = [u.block for u in units]
    pages = [b.page for b in blocks if b.page is not None]
    line_start = min(b.line_start for b in blocks)
    return Passage(
        id=passage_id(path, line_start, text),
        path=path,
        text=text,
        line_start=line_start,
        line_end=max(b.line_end for b in blocks),
        page_start=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
    )


def chunk(document: Document, config: ChunkingConfig) -> list[Passage]:
    """Split one document into passages no longer than `chunk_size_chars`."""
    size, overlap = config.chunk_size_chars, config.chunk_overlap_chars
    passages: list[Passage] = []
    current: list[_Unit] = []
    for unit in _units(document.blocks, size):
        if current and len(_joined([*current, unit])) > size:
            passages.append(_make_passage(document.path, current))
            current = _overlap_tail(current, overlap, unit, size)
        current.append(unit)
    if current:
        passages.append(_make_passage(document.path, current))
    return passages


def _overlap_tail(emitted: list[_Unit], overlap: int, following: _Unit, size: int) -> list[_Unit]:
    """The trailing units of the passage just emitted that fit in `overlap` and still leave room for
    `following`; never the whole passage, so every passage adds something new."""
    tail: list[_Unit] = []
    for unit in reversed(emitted[1:]):
        candidate = [unit, *tail]
        if len(_joined(candidate)) > overlap or len(_joined([*candidate, following])) > size:
            break
        tail = candidate
    return tail
