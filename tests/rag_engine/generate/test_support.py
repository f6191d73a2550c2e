"""The support check: claims extracted from an answer, looked up in the prompt's passages, the evidence sentence,
refusals, verdicts and the warning line. Pure text, no models."""

from __future__ import annotations

import pytest

from rag_engine.generate.sentences import split_sentences
from rag_engine.generate.support import (
    best_evidence,
    check_support,
    extract_claims,
    grounding_verdict,
    is_refusal,
    marker,
    question_focus,
    unmentioned,
)
from rag_engine.records import GROUNDING_VERDICTS, Claim, Passage, Sentence

WHO = Passage(
    id=1,
    path="air-quality/who.md",
    text="The 2021 guideline for the annual mean of PM2.5 is 5 µg/m³. The earlier 2005 value was 10 µg/m³.",
    line_start=3,
    line_end=3,
)
NIXON = Passage(
    id=2,
    path="history/epa.md",
    text="President Richard Nixon signed the Clean Air Act of 1970. Nixon's EPA enforced it.",
    line_start=8,
    line_end=8,
)


def _passage(text: str, id: int = 9, path: str = "notes.md") -> Passage:
    return Passage(id=id, path=path, text=text, line_start=1, line_end=1 + text.count("\n"))


def _supported(answer: str, passage_text: str, question: str = "") -> list[tuple[str, bool]]:
    return [(claim.span, claim.supported) for claim in check_support(answer, question, [_passage(passage_text)])]


# --- extract_claims: numbers ---------------------------------------------------------------------------------


def test_numbers_and_dates_are_claims_as_written() -> None:
    answer = "About 1,000 people, 2.5 times more than in 1970 and the 1970s, the 20th such count; it fell to −40 °C."
    assert [span for span, kind in extract_claims(answer, "") if kind == "number"] == [
        "1,000",
        "2.5",
        "1970",
        "1970s",
        "20th",
        "−40",
    ]


def test_a_unit_is_not_part_of_the_number_and_is_not_a_number() -> None:
    assert extract_claims("It is done at 165°F; the limit is 35 µg/m³ and the run is 5km.", "") == [
        ("165", "number"),
        ("35", "number"),
        ("5", "number"),
    ]


def test_names_of_things_with_digits_are_names_not_numbers() -> None:
    claims = extract_claims(
        "Here PM2.5, PM10 and CO2 matter, as do COVID-19 rules; pm2.5 written small is skipped.", ""
    )
    assert claims == [("PM2.5", "name"), ("PM10", "name"), ("CO2", "name"), ("COVID-19", "name")]


def test_ranges_and_compounds_give_their_numbers() -> None:
    assert extract_claims("In the mid-1970s it rose by 5-10 units, from 5–10 to 12.", "") == [
        ("1970s", "number"),
        ("5", "number"),
        ("10", "number"),
        ("12", "number"),
    ]


def test_list_numbering_and_passage_citations_are_not_claims() -> None:
    assert extract_claims("1. Nixon signed it [2].\n2) Ford did not [1].", "") == [("Nixon", "name"), ("Ford", "name")]


# --- extract_claims: names -----------------------------------------------------------------------------------


def test_consecutive_capitalised_words_make_one_name() -> None:
    answer = (
        "It was George H. W. Bush, not Dr. Smith; Louis-Camille Maillard worked at St Mary's Hospital "
        "near the Bank of England."
    )
    assert extract_claims(answer, "") == [
        ("George H. W. Bush", "name"),
        ("Dr. Smith", "name"),
        ("Louis-Camille Maillard", "name"),
        ("St Mary's Hospital", "name"),
        ("Bank of England", "name"),
    ]


def test_common_words_that_open_a_sentence_are_not_names() -> None:
    answer = "Yes. According to the report, it rose. However Nixon won. The Eiffel Tower is tall. In May 1970, I left."
    assert extract_claims(answer, "") == [
        ("Nixon", "name"),
        ("Eiffel Tower", "name"),
        ("May", "name"),
        ("1970", "number"),
    ]


def test_a_name_that_opens_a_sentence_is_still_a_name() -> None:
    # "who" in the question is not the acronym "WHO" of the answer.
    assert extract_claims("Nixon signed it. WHO sets the guideline.", "Who signed it?") == [
        ("Nixon", "name"),
        ("WHO", "name"),
    ]


def test_a_lone_capital_letter_is_not_a_name() -> None:
    assert extract_claims("The water boils at 212 °F, see vitamin C.", "") == [("212", "number")]


def test_what_the_question_already_says_is_not_a_claim() -> None:
    question = "When did President Nixon sign the Clean Air Act of 1970?"
    answer = "Nixon signed the Clean Air Act of 1970 on 31 December 1970, with Richard Nixon's pen."
    # "Nixon", "Clean Air Act", "1970" are the question's; "Richard Nixon" adds "Richard", so it stays.
    assert extract_claims(answer, question) == [("31", "number"), ("December", "name"), ("Richard Nixon's", "name")]


def test_claims_are_deduplicated_in_answer_order() -> None:
    assert extract_claims("Paris had 1,000 cases; Paris then had 1000 and 35.", "") == [
        ("Paris", "name"),
        ("1,000", "number"),
        ("35", "number"),
    ]


# --- check_support -------------------------------------------------------------------------------------------


def test_a_wrong_guideline_value_is_unsupported_and_the_right_one_supported() -> None:
    question = "What is the WHO guideline for the annual mean of PM2.5?"
    wrong = check_support("The WHO guideline is 35 µg/m³.", question, [WHO])
    assert wrong == (Claim("35", "number", False),)
    right = check_support("It is 5 µg/m³.", question, [WHO])
    assert right == (Claim("5", "number", True, 1, "air-quality/who.md"),)


def test_a_number_matches_only_as_a_whole_token() -> None:
    for text in ("35 µg/m³", "2.5 times", "5.0 units", "in 1950", "PM2.5 levels", "15th"):
        assert _supported("It is 5.", text) == [("5", False)], text
    for text in ("5 µg/m³", "(5)", "5–10 days", "5-10 days", "it was 5.", "5km"):
        assert _supported("It is 5.", text) == [("5", True)], text


def test_thousands_separators_do_not_matter() -> None:
    for text in ("1000 cases", "1,000 cases", "1 000 cases", "1\u202f000 cases"):
        assert _supported("There were 1,000 cases.", text) == [("1,000", True)], text
        assert _supported("There were 1000 cases.", text) == [("1000", True)], text
        assert _supported("There were 1 000 cases.", text) == [("1 000", True)], text
    assert _supported("There were 1,000 cases.", "10000 cases or 100 cases") == [("1,000", False)]


def test_decimals_ordinals_and_decades_match_exactly() -> None:
    assert _supported("It is 2.5.", "the 2.5 figure") == [("2.5", True)]
    assert _supported("It is 2.5.", "the 2.50 figure, 25 and 5") == [("2.5", False)]
    assert _supported("In the 1970s.", "during the 1970s") == [("1970s", True)]
    assert _supported("In the 1970s.", "in 1970") == [("1970s", False)]
    assert _supported("The 20th one.", "the 20th century") == [("20th", True)]


def test_a_signed_number_needs_the_sign_but_an_unsigned_one_does_not() -> None:
    assert _supported("It fell to −40 °C.", "a low of -40 °C") == [("−40", True)]
    assert _supported("It fell to −40 °C.", "a low of 40 °C") == [("−40", False)]
    assert _supported("It was 40 below.", "a low of −40 °C") == [("40", True)]


def test_a_different_president_does_not_support_a_name() -> None:
    claims = check_support("George H. W. Bush signed it in 1970.", "Who signed the act?", [NIXON])
    assert claims == (Claim("George H. W. Bush", "name", False), Claim("1970", "number", True, 2, "history/epa.md"))


def test_a_surname_supports_a_name() -> None:
    assert check_support("Nixon signed it.", "Who signed the act?", [NIXON]) == (
        Claim("Nixon", "name", True, 2, "history/epa.md"),
    )
    # The surname and half of the significant words: "Richard" is not needed, "Milhous" neither.
    assert _supported("Richard Milhous Nixon signed it.", "President Nixon signed it.") == [
        ("Richard Milhous Nixon", False)  # 1 of 3 significant words: less than half
    ]
    assert _supported("Richard Nixon signed it.", "President Nixon signed it.") == [("Richard Nixon", True)]


def test_a_first_name_alone_does_not_support_a_name() -> None:
    assert _supported("Richard Bush signed it.", "Richard Nixon signed it.") == [("Richard Bush", False)]


def test_titles_and_initials_are_not_needed_and_possessives_match() -> None:
    assert _supported("Dr. Maillard found it.", "Louis-Camille Maillard's reaction") == [("Dr. Maillard", True)]
    assert _supported("George H. W. Bush's veto.", "Bush vetoed it.") == [("George H. W. Bush's", True)]
    assert _supported("It is at St Mary's Hospital.", "St Mary's Hospital, London") == [("St Mary's Hospital", True)]


def test_names_match_case_insensitively_but_acronyms_exactly() -> None:
    assert _supported("Paris is big.", "PARIS IS BIG") == [("Paris", True)]
    assert _supported("The limit is set by the WHO.", "people who breathe it") == [("WHO", False)]
    assert _supported("The limit is set by the WHO.", "the WHO sets it") == [("WHO", True)]
    assert _supported("It holds PM2.5 particles.", "fine particles (PM2.5) are") == [("PM2.5", True)]


def test_a_claim_names_the_first_passage_that_holds_it() -> None:
    first = _passage("Nothing here.", id=11, path="a.md")
    second = _passage("Nixon was there in 1970.", id=12, path="b.md")
    third = _passage("Nixon again in 1970.", id=13, path="c.md")
    assert check_support("Nixon, 1970.", "", [first, second, third]) == (
        Claim("Nixon", "name", True, 12, "b.md"),
        Claim("1970", "number", True, 12, "b.md"),
    )
    assert check_support("Nixon, 1970.", "", []) == (Claim("Nixon", "name", False), Claim("1970", "number", False))


def test_all_words_of_a_name_must_be_in_one_passage() -> None:
    split = [_passage("Richard was there.", id=1), _passage("Nixon was there.", id=2)]
    assert check_support("Richard Nixon.", "", split) == (Claim("Richard Nixon", "name", True, 2, "notes.md"),)
    assert check_support("Louis Maillard.", "", [_passage("Louis wrote.", id=1), _passage("Louis read.", id=2)]) == (
        Claim("Louis Maillard", "name", False),
    )


# --- best_evidence -------------------------------------------------------------------------------------------


def test_best_evidence_picks_the_sentence_that_holds_the_number() -> None:
    sentences = split_sentences(
        _passage(
            "The WHO publishes air quality guidelines for the annual mean.\n"
            "The 2021 guideline for the annual mean of PM2.5 is 5 µg/m³.\n"
            "Most cities exceed the guideline."
        )
    )
    evidence = best_evidence("The annual guideline is 5 µg/m³.", "What is the annual PM2.5 guideline?", sentences)
    assert evidence is not None
    assert (evidence.text, evidence.line) == ("The 2021 guideline for the annual mean of PM2.5 is 5 µg/m³.", 2)


def test_best_evidence_prefers_the_answers_own_words_over_the_questions() -> None:
    sentences = [
        Sentence("Guidelines for Europe and the annual mean are set yearly.", 1, "a.md", 1),
        Sentence("Brown crusts come from the Maillard reaction.", 1, "a.md", 2),
    ]
    # "annual"/"mean" are shared with the question (0.5 each); "Maillard", "reaction", "crusts" are the answer's.
    evidence = best_evidence("The Maillard reaction browns crusts.", "Is it the annual mean?", sentences)
    assert evidence is sentences[1]


def test_a_long_sentence_does_not_win_by_length_alone() -> None:
    short = Sentence("Nixon signed the act.", 1, "a.md", 1)
    padded = Sentence(
        "Nixon signed the act, " + "and many other papers were also filed, " * 12 + "later.", 1, "a.md", 2
    )
    assert best_evidence("Nixon signed the act.", "", [padded, short]) is short


def test_no_evidence_when_nothing_is_shared() -> None:
    sentences = split_sentences(WHO)
    assert best_evidence("Bananas are yellow.", "What is the annual PM2.5 guideline?", sentences) is None
    assert best_evidence("Anything.", "", []) is None


# --- is_refusal ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know.",
        "I do not know who signed it.",
        "The year is not mentioned in the context.",
        "The passage does not mention a date.",
        "The documents doesn't say.",
        "The documents don’t say.",
        "That is not provided.",
        "There is no information about that.",
        "It is not in the context.",
        "I cannot answer this from the documents.",
        "I can't answer that.",
        "The dose is not specified.",
        "The text does not specify the dose.",
        "This is not stated anywhere.",
        "Unknown.",
        "",
        "   ",
    ],
)
def test_refusals_are_detected(answer: str) -> None:
    assert is_refusal(answer) is True


@pytest.mark.parametrize(
    "answer", ["The guideline is 5 µg/m³.", "Nixon signed it in 1970.", "Knowledge of the context helps."]
)
def test_answers_are_not_refusals(answer: str) -> None:
    assert is_refusal(answer) is False


# --- grounding_verdict and marker ----------------------------------------------------------------------------

YES = Claim("5", "number", True, 1, "who.md")
NO = Claim("35", "number", False)
EVIDENCE = Sentence("The guideline is 5 µg/m³.", 1, "who.md", 3)


def test_verdicts() -> None:
    assert grounding_verdict([YES, NO], EVIDENCE, refused=True) == "refused"
    assert grounding_verdict([YES], None, refused=False) == "grounded"
    assert grounding_verdict([NO], EVIDENCE, refused=False) == "unsupported"
    assert grounding_verdict([YES, NO], EVIDENCE, refused=False) == "partly"
    assert grounding_verdict([], EVIDENCE, refused=False) == "grounded"
    assert grounding_verdict([], None, refused=False) == "unsupported"


def test_verdicts_are_the_records_verdicts() -> None:
    verdicts = {
        grounding_verdict(claims, evidence, refused)
        for claims in ([], [YES], [NO], [YES, NO])
        for evidence in (None, EVIDENCE)
        for refused in (False, True)
    }
    assert verdicts == {"grounded", "partly", "unsupported", "refused"}
    assert verdicts <= set(GROUNDING_VERDICTS)


def test_marker_names_the_unsupported_claims_in_order() -> None:
    bush = Claim("George H. W. Bush", "name", False)
    assert marker([NO, YES, bush]) == "⚠ not in the sources: 35, George H. W. Bush"
    assert marker([YES]) == ""
    assert marker([]) == ""


def test_the_whole_check_of_a_wrong_answer() -> None:
    question = "What is the WHO guideline for the annual mean of PM2.5?"
    answer = "The WHO guideline is 35 µg/m³, set in 2021."
    claims = check_support(answer, question, [WHO])
    assert [(c.span, c.supported) for c in claims] == [("35", False), ("2021", True)]
    evidence = best_evidence(answer, question, split_sentences(WHO))
    assert evidence is not None and evidence.text.startswith("The 2021 guideline")
    assert grounding_verdict(claims, evidence, is_refusal(answer)) == "partly"
    assert marker(claims) == "⚠ not in the sources: 35"


# -- the question's focus ---------------------------------------------------------------------------------------
def test_the_question_focus_is_its_names() -> None:
    assert question_focus("How many people died in the Los Angeles smog episodes?") == ["Los Angeles"]
    assert question_focus("In what year did India stop selling leaded petrol?") == ["India"]
    assert question_focus("How hot should chicken be?") == []


def test_a_focus_name_the_passage_never_mentions_is_reported() -> None:
    london = "London's Great Smog of December 1952 killed about 4,000 people in the first days."
    assert unmentioned(["Los Angeles"], london) == ["Los Angeles"]
    assert unmentioned(["London"], london) == []


def test_a_focus_name_matches_its_acronym_both_ways() -> None:
    assert unmentioned(["World Health Organization"], "The WHO guideline is 5 µg/m³.") == []
    assert unmentioned(["US"], "The United States Congress passed it in 1970.") == []
    assert unmentioned(["EPA"], "The agency set it in 1971.") == ["EPA"]


def test_a_number_written_as_a_word_in_the_passage_supports_its_digits() -> None:
    cable = Passage(id=9, path="cable.md", text="The cable failed after about three weeks.", line_start=1, line_end=1)
    [claim] = check_support("It worked for 3 weeks.", "How long did the cable work?", [cable])
    assert claim.span == "3" and claim.supported
    [claim] = check_support("It worked for 4 weeks.", "How long did the cable work?", [cable])
    assert not claim.supported


def test_question_focus_skips_an_opening_adverb_and_unit_names() -> None:
    assert question_focus("Roughly how many copies of Gutenberg's Bible were printed?") == ["Gutenberg's Bible"]
    assert question_focus("Up to what PM2.5 level is a day rated Good by the EPA?") == ["PM2.5", "Good", "EPA"]
    assert question_focus("In degrees Celsius, how hot does a canner get?") == []
    # An acronym opening the question is still its subject.
    assert question_focus("WHO guidelines say what?") == ["WHO"]


def test_a_plural_name_is_found_in_its_singular() -> None:
    assert unmentioned(["Nobel Prizes"], "He shared the 1945 Nobel Prize in Physiology.") == []
    assert unmentioned(["Nobel Prize"], "Both Nobel Prizes went to the team.") == []
