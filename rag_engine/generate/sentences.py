"""Sentence splitting: one retrieved passage → its sentences, each with the file line (or PDF page) it starts on.

A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before whitespace and something
that can open a sentence (a capital letter, a digit, a quote, a bracket), and at the line structure of plain
text and Markdown: a blank line, the end of a heading line, the start of a list item. Common abbreviations
("e.g.", "Dr.", "U.S."), initials ("George H. W. Bush") and decimals ("2.5") do not end a sentence. Sentences
longer than `MAX_SENTENCE_CHARS` are cut at "; " or ", " (then at spaces) so that no evidence unit is a wall
of text.

Not here: scoring or choosing sentences (`evidence.py`), checking an answer against them (`support.py`), and
cutting documents into passages (`chunking.py`, which keeps its own simpler splitter for packing).
"""

from __future__ import annotations

import re

from rag_engine.records import Passage, Sentence

MAX_SENTENCE_CHARS = 400

# Candidate sentence ends: the punctuation (and any closing quote/bracket) is kept with the sentence; the
# lookahead wants whitespace and an opener, so "2.5", "e.g. the" (lowercase) and "end.Next" never qualify.
# The lookbehind starts a match only at the first mark of a run: trying each "." of "......" (which all fail or
# succeed together) would scan the run once per mark.
_END = re.compile(r"(?<![.!?])[.!?]+[\"'”’)\]]*(?=\s+[A-Z0-9\"'“‘(\[])")
# Abbreviations after which a capitalised word usually continues the sentence (compared lowercase, without
# the final period). "etc." is left out on purpose: it ends sentences more often than not.
_ABBREVIATIONS = frozenset(
    "e.g i.e dr st mr mrs ms prof sr jr vs approx ca cf al ph.d mt gen col lt sgt gov sen rep rev".split()  # noqa: SIM905
)
# Abbreviations that are only such before a number ("No. 5", "Fig. 3"); before a word "No." is an answer.
_NUMBER_ABBREVIATIONS = frozenset(
    "no nos fig figs eq eqs vol vols p pp ch sec art jan feb mar apr jun jul aug sep sept oct nov dec".split()  # noqa: SIM905
)
_NEXT_CHAR = re.compile(r"\s*(\S)")
# One capital initial or a chain of them: "J", "H.W", "U.S".
_INITIALS = re.compile(r"[A-Z](?:\.[A-Z])*")
_OPENING = "\"'“‘(["
# Markdown structure: an ATX heading, and a list item (bullet or number) with text after its marker.
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|[0-9]{1,3}[.)])[ \t]+\S")
# The heading / bullet marker stripped from a sentence's text (numbered markers are kept: they are content).
_MARKER = re.compile(r"(?:#{1,6}|[-*+•])[ \t]+")
_NUMBERED = re.compile(r"[ \t]*[0-9]{1,3}[.)][ \t]+")
# Where an over-long sentence may be cut, best first; the last resort is a hard cut.
_LONG_CUTS = ("; ", ", ", " ")


def split_sentences(passage: Passage, domain: str = "") -> list[Sentence]:
    """The sentences of `passage`, in order, with the line each starts on and the passage's page."""
    text = passage.text
    sentences: list[Sentence] = []
    # A running line count (sentences come in text order): each newline is counted once, not once per sentence.
    line, counted_to = passage.line_start, 0
    for block_start, block_end in _blocks(text):
        for index, (start, end) in enumerate(_sentence_spans(text, block_start, block_end)):
            start, end = _trimmed(text, start, end, strip_marker=index == 0)
            if start >= end:
                continue
            for piece_start, piece_end in _bounded(text, start, end, _LONG_CUTS):
                piece_start, piece_end = _trimmed(text, piece_start, piece_end, strip_marker=False)
                if piece_start >= piece_end:
                    continue
                line += text.count("\n", counted_to, piece_start)
                counted_to = piece_start
                sentences.append(
                    Sentence(
                        text=text[piece_start:piece_end],
                        passage_id=passage.id,
                        path=passage.path,
                        line=line,
                        domain=domain,
                        page=passage.page_start,
                    )
                )
    return sentences


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of `text` that the line structure separates: a blank line, a heading line (always alone), the
    start of a list item. Lines inside a block are wrapped text of one paragraph."""
    spans: list[tuple[int, int]] = []
    block_start = 0
    offset = 0
    previous_closes = False  # the previous line was blank or a heading: whatever follows starts afresh
    for line in text.split("\n"):
        line_start = offset
        offset += len(line) + 1
        blank = not line.strip()
        heading = _HEADING.match(line) is not None
        opens = blank or heading or previous_closes or _LIST_ITEM.match(line) is not None
        if opens and line_start > block_start:
            spans.append((block_start, line_start))
            block_start = line_start
        previous_closes = blank or heading
    spans.append((block_start, len(text)))
    return spans


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the sentences of `text[start:end]`, cut after each true sentence end."""
    spans: list[tuple[int, int]] = []
    piece_start = start
    # The period of a numbered list marker ("2. Next step") is not a sentence end.
    numbered = _NUMBERED.match(text, start, end)
    skip_before = numbered.end() if numbered else start
    for match in _END.finditer(text, start, end):
        if match.start() < skip_before:
            continue
        if match.group(0) == "." and _is_abbreviation(text, match.start(), end):
            continue
        spans.append((piece_start, match.end()))
        piece_start = match.end()
    spans.append((piece_start, end))
    return spans


def _is_abbreviation(text: str, period: int, end: int) -> bool:
    """Whether the single "." at `period` closes an abbreviation or an initial rather than a sentence."""
    word_start = period
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:period].lstrip(_OPENING)
    if not word:
        return False
    if _INITIALS.fullmatch(word) or word.lower() in _ABBREVIATIONS:
        return True
    if word.lower() in _NUMBER_ABBREVIATIONS:
        # The next non-space character, found without copying the rest of the block (once per period).
        following = _NEXT_CHAR.match(text, period + 1, end)
        return following is not None and following.group(1).isdigit()
    return False


def _trimmed(text: str, start: int, end: int, strip_marker: bool) -> tuple[int, int]:
    """`start`/`end` moved inward past whitespace and, at the start of a block, a heading or bullet marker."""
    while start < end and text[start].isspace():
        start += 1
    if strip_marker:
        marker = _MARKER.match(text, start, end)
        if marker:
            start = marker.end()
        elif text.startswith("#", start) and _HEADING.match(text, start, end):
            start = end  # a heading marker with no title: nothing to keep
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _bounded(text: str, start: int, end: int, cuts: tuple[str, ...]) -> list[tuple[int, int]]:
    """`text[start:end]` as pieces of at most `MAX_SENTENCE_CHARS`, cut after the first separator of `cuts`
    that occurs and packed greedily; a piece that is still too long is cut with the next separator."""
    if end - start <= MAX_SENTENCE_CHARS:
        return [(start, end)]
    if not cuts:
        return [(at, min(at + MAX_SENTENCE_CHARS, end)) for at in range(start, end, MAX_SENTENCE_CHARS)]
    separator, finer = cuts[0], cuts[1:]
    bounds = [start]
    at = text.find(separator, start, end)
    while at != -1:
        bounds.append(at + len(separator))
        at = text.find(separator, at + len(separator), end)
    if bounds[-1] != end:
        bounds.append(end)
    packed: list[tuple[int, int]] = []
    piece_start, piece_end = bounds[0], bounds[1]
    for bound in bounds[2:]:
        if bound - piece_start <= MAX_SENTENCE_CHARS:
            piece_end = bound
        else:
            packed.append((piece_start, piece_end))
            piece_start, piece_end = piece_end, bound
    packed.append((piece_start, piece_end))
    return [piece for s, e in packed for piece in _bounded(text, s, e, finer)]
