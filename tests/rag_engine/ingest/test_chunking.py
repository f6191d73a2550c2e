"""Chunking: passages respect the size limit, split on paragraph/sentence boundaries, overlap, and keep spans."""

from __future__ import annotations

import itertools

from rag_engine.config import ChunkingConfig
from rag_engine.ingest.chunking import chunk, passage_id, split_sentences
from rag_engine.records import Block, Document


def doc(*blocks: Block, path: str = "d.md") -> Document:
    return Document(path=path, kind="md", blocks=tuple(blocks), content_hash="x")


def test_short_paragraphs_are_packed_together_with_their_line_span() -> None:
    passages = chunk(doc(Block("One.", 1, 1), Block("Two.", 3, 4)), ChunkingConfig(100, 0))
    assert [(p.text, p.line_start, p.line_end) for p in passages] == [("One.\n\nTwo.", 1, 4)]


def test_paragraphs_are_never_cut_when_they_fit() -> None:
    first, second = "A" * 60 + ".", "B" * 60 + "."
    passages = chunk(doc(Block(first, 1, 1), Block(second, 3, 3)), ChunkingConfig(100, 0))
    assert [p.text for p in passages] == [first, second]
    assert [(p.line_start, p.line_end) for p in passages] == [(1, 1), (3, 3)]


def test_long_paragraph_is_split_at_sentence_ends_and_no_passage_exceeds_the_size() -> None:
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(30)]
    passages = chunk(doc(Block(" ".join(sentences), 5, 9)), ChunkingConfig(200, 0))
    assert len(passages) > 1
    assert all(len(p.text) <= 200 for p in passages)
    for passage in passages:
        assert passage.text.endswith(".")  # cut after a sentence, never inside one
        assert (passage.line_start, passage.line_end) == (5, 9)
    assert " ".join(p.text for p in passages) == " ".join(sentences)


def test_overlap_repeats_trailing_sentences_in_the_next_passage() -> None:
    sentences = [f"Fact {i} is stated here in full." for i in range(20)]
    passages = chunk(doc(Block(" ".join(sentences), 1, 1)), ChunkingConfig(150, 60))
    assert len(passages) > 2
    for before, after in itertools.pairwise(passages):
        last_sentence = split_sentences(before.text)[-1]
        assert after.text.startswith(last_sentence)
        assert after.text != before.text
    # every sentence is somewhere
    assert all(any(s in p.text for p in passages) for s in sentences)


def test_a_sentence_longer_than_a_passage_is_cut_between_words() -> None:
    words = " ".join(f"word{i}" for i in range(100))
    passages = chunk(doc(Block(words, 1, 1)), ChunkingConfig(120, 0))
    assert all(len(p.text) <= 120 for p in passages)
    assert " ".join(p.text for p in passages).split() == words.split()


def test_pdf_passages_carry_page_spans() -> None:
    blocks = (Block("Page one.", 1, 1, page=1), Block("Page two.", 1, 1, page=2))
    (passage,) = chunk(doc(*blocks, path="r.pdf"), ChunkingConfig(100, 0))
    assert (passage.page_start, passage.page_end, passage.span) == (1, 2, "p. 1-2")


def test_sentence_split_keeps_abbreviations_and_decimals() -> None:
    text = "PM2.5 is about 2.5 µm, e.g. smoke. The WHO set 5 µg/m³ in 2021! Really? Yes."
    assert split_sentences(text) == [
        "PM2.5 is about 2.5 µm, e.g. smoke.",
        "The WHO set 5 µg/m³ in 2021!",
        "Really?",
        "Yes.",
    ]


def test_passage_ids_are_stable_positive_int64_and_depend_on_place_and_text() -> None:
    a = passage_id("a.md", 1, "text")
    assert a == passage_id("a.md", 1, "text")
    assert 0 <= a < 2**63
    assert len({a, passage_id("b.md", 1, "text"), passage_id("a.md", 2, "text"), passage_id("a.md", 1, "other")}) == 4


def test_a_path_from_a_name_that_is_not_utf8_still_gets_a_stable_id() -> None:
    # os.fsdecode(b"caf\xe9.md"): the undecodable byte is a lone surrogate, which plain .encode() refuses.
    odd = passage_id("caf\udce9.md", 1, "text")
    assert odd == passage_id("caf\udce9.md", 1, "text") and 0 <= odd < 2**63
    assert odd != passage_id("café.md", 1, "text")
