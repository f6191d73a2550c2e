"""The answer-type check: what kind of answer a question asks for, and answers whose numbers are of another kind."""

from __future__ import annotations

import pytest

from rag_engine.generate.answer_type import answer_type_mismatch, asked_kind, number_kinds
from rag_engine.generate.prompt import ContextBlock
from rag_engine.generate.verification import check_answer
from rag_engine.records import Sentence


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many minutes should pint jars be processed?", "duration"),
        ("How much did it cost to build the tower?", "money"),
        ("How long, in kilometres, was the cable?", "length"),
        ("How many doses were used?", "count"),
        ("At what temperature does water boil at altitude?", "temperature"),
        ("What percentage of people have type O blood?", "percent"),
        ("In what year did the canal open?", "year"),
        ("On what date were X-rays discovered?", "date"),
        ("Who signed the act?", None),
        ("Why does ozone peak in the afternoon?", None),
    ],
)
def test_the_kind_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asked_kind(question) == kind


def test_numbers_are_classified_by_the_unit_written_next_to_them() -> None:
    assert number_kinds("10 psi, 20 years, 5 km, 95 °C, $3, 7%, 1967, the 1850s, 27 July, 180 copies") == [
        "pressure",
        "duration",
        "length",
        "temperature",
        "money",
        "percent",
        "year",
        "year",
        "date",
        "bare",
    ]
    # Digits inside names are not numbers of the answer.
    assert number_kinds("PM2.5 and CO2") == []


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How many minutes should pint jars be processed in a pressure canner?", "10 psi"),
        ("How much did it cost to build the Eiffel Tower?", "20 years"),
        ("How long, in kilometres, was the cable?", "27 July 1866"),
        ("How many doses of vaccine were used?", "1967"),
    ],
)
def test_an_answer_of_another_kind_is_a_mismatch(question: str, answer: str) -> None:
    mismatch = answer_type_mismatch(question, answer)
    assert mismatch is not None
    assert mismatch.asked == asked_kind(question)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How many people died?", "4,000"),  # a bare number fits any kind
        ("How many years apart were the two prizes?", "1945 - 1923"),  # the years themselves
        ("At what temperature does water boil up there?", "At 1,600 m water boils at about 95 °C."),
        ("How many sailors returned?", "Eighteen sailors returned."),  # no digits: not judged
        ("How far did he fly?", "120 feet in 12 seconds"),
        ("Who signed the act?", "Nixon signed it in 1970."),  # the question's kind is not recognised
    ],
)
def test_answers_that_fit_or_cannot_be_judged_are_not_flagged(question: str, answer: str) -> None:
    assert answer_type_mismatch(question, answer) is None


def test_a_mismatched_answer_is_unsupported_even_when_its_number_is_in_the_sources() -> None:
    text = "Process pints at 10 psi, for 20 minutes at sea level."
    block = ContextBlock(1, "canning.md:3", text, (Sentence(text, 1, "canning.md", 3, "cooking"),))
    question = "How many minutes should pint jars of green beans be processed?"
    checked = check_answer("10 psi", question, [block])
    assert checked.verdict == "unsupported"
    asked = [claim for claim in checked.claims if claim.kind == "asked"]
    assert asked and not asked[0].supported and "duration" in asked[0].span
    # The same sources with the asked kind of answer stand.
    assert check_answer("20 minutes", question, [block]).verdict == "grounded"
