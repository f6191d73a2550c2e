"""Chunking: split a `Document` into `Passage`s of at most `chunk_size_chars`, on natural boundaries.

Whole paragraphs are packed together while they fit; a paragraph that is too long is cut into sentences, and a
sentence that is still too long into words. Consecutive passages share up to `chunk_overlap_chars` of trailing
sentences/paragraphs so that a fact on a boundary is found from both sides. Every passage keeps its source
path and line (or page) span. The work is linear in the document's length: lengths are kept as running sums,
never re-measured by joining what is already packed. Embedding is not done here.
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
    # surrogatepass: a path from a file name that is not UTF-8 holds lone surrogates (Python's surrogateescape);
    # it still gets an id, and every valid path and text encodes exactly as before.
    digest = hashlib.sha256(f"{path}\0{line_start}\0{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _split_words(text: str, size: int) -> list[str]:
    pieces: list[str] = []
    words: list[str] = []
    length = 0  # len(" ".join(words))
    for word in text.split():
        if len(word) > size:  # a "word" longer than a passage (a URL, a hash): hard cuts
            if words:
                pieces.append(" ".join(words))
                words, length = [], 0
            cuts = [word[at : at + size] for at in range(0, len(word), size)]
            pieces.extend(cuts[:-1])
            word = cuts[-1]
        if words and length + 1 + len(word) > size:
            pieces.append(" ".join(words))
            words, length = [], 0
        length += len(word) + (1 if words else 0)
        words.append(word)
    if words:
        pieces.append(" ".join(words))
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


def _joined_length(units: list[_Unit]) -> int:
    """len(_joined(units)) without building the string."""
    return sum(len(u.text) for u in units) + sum(len(u.joiner) for u in units[1:])


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
    length = 0  # len(_joined(current)), kept as a running sum
    for unit in _units(document.blocks, size):
        if current and length + len(unit.joiner) + len(unit.text) > size:
            passages.append(_make_passage(document.path, current))
            current = _overlap_tail(current, overlap, unit, size)
            length = _joined_length(current)
        length += len(unit.text) + (len(unit.joiner) if current else 0)
        current.append(unit)
    if current:
        passages.append(_make_passage(document.path, current))
    return passages


def _overlap_tail(emitted: list[_Unit], overlap: int, following: _Unit, size: int) -> list[_Unit]:
    """The trailing units of the passage just emitted that fit in `overlap` and still leave room for
    `following`; never the whole passage, so every passage adds something new."""
    tail: list[_Unit] = []  # in reverse order while it grows
    length = 0  # len(_joined(tail in order))
    for unit in reversed(emitted[1:]):
        # Putting `unit` first adds its text, and the joiner of the unit that was first so far.
        candidate = length + len(unit.text) + (len(tail[-1].joiner) if tail else 0)
        if candidate > overlap or candidate + len(following.joiner) + len(following.text) > size:
            break
        tail.append(unit)
        length = candidate
    tail.reverse()
    return tail
