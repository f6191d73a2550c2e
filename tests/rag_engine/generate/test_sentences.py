"""Sentence splitting of passages: where sentences end (and where they do not), Markdown structure, the line
and page each sentence carries, and the cut of over-long sentences. Pure text, no models."""

from __future__ import annotations

from rag_engine.generate.sentences import MAX_SENTENCE_CHARS, split_sentences
from rag_engine.records import Passage


def _passage(text: str, line_start: int = 1, page: int | None = None) -> Passage:
    return Passage(
        id=42,
        path="guide.md",
        text=text,
        line_start=line_start,
        line_end=line_start + text.count("\n"),
        page_start=page,
        page_end=page,
    )


def _texts(text: str) -> list[str]:
    return [sentence.text for sentence in split_sentences(_passage(text))]


def test_sentences_end_at_full_stops_exclamation_and_question_marks() -> None:
    text = "The 2021 guideline is 5 µg/m³. It replaced the 2005 value! Is it binding? No, it is advice."
    assert _texts(text) == [
        "The 2021 guideline is 5 µg/m³.",
        "It replaced the 2005 value!",
        "Is it binding?",
        "No, it is advice.",
    ]


def test_a_closing_quote_or_bracket_stays_with_its_sentence() -> None:
    assert _texts('He said "Stop." Then he left (quietly.) "Why?" she asked.') == [
        'He said "Stop."',
        "Then he left (quietly.)",
        '"Why?" she asked.',
    ]


def test_abbreviations_do_not_end_a_sentence() -> None:
    text = (
        "Dr. Smith met Mr. and Mrs. Jones at St. Mary's, i.e. the old hospital. "
        "The U.S. Congress passed it vs. the Senate's draft, approx. 20 votes apart, e.g. Ohio. "
        "See Fig. 3 and No. 5 for details."
    )
    assert _texts(text) == [
        "Dr. Smith met Mr. and Mrs. Jones at St. Mary's, i.e. the old hospital.",
        "The U.S. Congress passed it vs. the Senate's draft, approx. 20 votes apart, e.g. Ohio.",
        "See Fig. 3 and No. 5 for details.",
    ]


def test_initials_do_not_end_a_sentence() -> None:
    assert _texts("It was signed by George H. W. Bush and J. Smith in 1990. Both were there.") == [
        "It was signed by George H. W. Bush and J. Smith in 1990.",
        "Both were there.",
    ]


def test_no_before_a_word_ends_a_sentence_but_no_before_a_number_does_not() -> None:
    assert _texts("Is smoking allowed? No. The rule in No. 4 forbids it.") == [
        "Is smoking allowed?",
        "No.",
        "The rule in No. 4 forbids it.",
    ]


def test_decimals_and_lowercase_continuations_do_not_split() -> None:
    assert _texts("PM2.5 levels were 2.5 times higher. in the city. Values rose 3. 4 sites closed.") == [
        "PM2.5 levels were 2.5 times higher. in the city.",
        "Values rose 3.",
        "4 sites closed.",
    ]


def test_markdown_headings_are_sentences_of_their_own_without_their_marker() -> None:
    text = "# Air quality\nThe guideline is 5 µg/m³.\n\n## Sources of PM2.5\nTraffic and heating."
    assert _texts(text) == ["Air quality", "The guideline is 5 µg/m³.", "Sources of PM2.5", "Traffic and heating."]


def test_list_items_start_new_sentences_and_lose_their_bullet() -> None:
    text = "Sources:\n- traffic on main roads\n* wood stoves\n+ industry\n1. Numbered steps keep their number."
    assert _texts(text) == [
        "Sources:",
        "traffic on main roads",
        "wood stoves",
        "industry",
        "1. Numbered steps keep their number.",
    ]


def test_wrapped_lines_stay_in_one_sentence_with_their_text_exact() -> None:
    text = "The Maillard reaction starts\nabove 140 °C and browns   the crust.\nIt needs sugars."
    assert _texts(text) == ["The Maillard reaction starts\nabove 140 °C and browns   the crust.", "It needs sugars."]


def test_each_sentence_carries_its_line_passage_path_domain_and_page() -> None:
    text = "# Guidelines\n\nThe annual mean is 5 µg/m³. The daily\nmean is 15 µg/m³.\n- Interim target 1 is 35.\n"
    sentences = split_sentences(_passage(text, line_start=10), domain="air-quality")
    assert [(s.text, s.line) for s in sentences] == [
        ("Guidelines", 10),
        ("The annual mean is 5 µg/m³.", 12),
        ("The daily\nmean is 15 µg/m³.", 12),
        ("Interim target 1 is 35.", 14),
    ]
    assert {(s.passage_id, s.path, s.domain, s.page) for s in sentences} == {(42, "guide.md", "air-quality", None)}
    assert sentences[0].where == "guide.md:10"


def test_a_pdf_passage_gives_its_page_to_every_sentence() -> None:
    sentences = split_sentences(_passage("First sentence here. Second one.", line_start=1, page=7))
    assert [(s.page, s.where) for s in sentences] == [(7, "guide.md p. 7"), (7, "guide.md p. 7")]


def test_empty_pieces_are_skipped() -> None:
    assert _texts("\n\n   \n#\n- \n") == []
    assert _texts("  Only one.  \n\n\n") == ["Only one."]


def test_a_long_sentence_is_cut_at_semicolons_then_commas_under_the_limit() -> None:
    clauses = [f"the sensor at site {n} reported an annual mean of {n}.5 µg/m³ over the period" for n in range(12)]
    sentence = "; ".join(clauses[:4]) + "; " + ", ".join(clauses[4:]) + "."
    assert len(sentence) > MAX_SENTENCE_CHARS
    pieces = _texts(sentence)
    assert len(pieces) > 1
    assert all(len(piece) < MAX_SENTENCE_CHARS for piece in pieces)
    # Cut after "; " first: the first piece ends at a semicolon, the comma part comes in later pieces.
    assert pieces[0].endswith(";")
    assert any(piece.endswith(",") for piece in pieces)
    # Nothing is lost or changed: the pieces put back together (with the separators' spaces) are the sentence.
    assert " ".join(pieces) == sentence


def test_a_sentence_of_exactly_the_limit_is_not_cut() -> None:
    sentence = "word, " * 66 + "end."
    sentence = sentence[: MAX_SENTENCE_CHARS - 1] + "."
    assert len(sentence) == MAX_SENTENCE_CHARS
    assert _texts(sentence) == [sentence]


def test_a_long_run_without_separators_is_still_cut() -> None:
    sentence = "x" * (2 * MAX_SENTENCE_CHARS + 10)
    pieces = _texts(sentence)
    assert [len(piece) for piece in pieces] == [MAX_SENTENCE_CHARS, MAX_SENTENCE_CHARS, 10]
    assert "".join(pieces) == sentence
