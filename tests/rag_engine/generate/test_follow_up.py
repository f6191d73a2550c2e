"""The second hop's follow-up query: cleaning the model's reply, judging whether it adds anything, and the
fallback (the question + the first round's names and numbers) when it does not. Fake generators only."""

from __future__ import annotations

from collections.abc import Iterator

from rag_engine.generate.follow_up import (
    FOLLOW_UP_SYSTEM,
    adds_something,
    bridge_terms,
    clean_follow_up,
    fallback_query,
    follow_up_prompt,
    follow_up_query,
)
from tests.fakes import EchoGenerator, ScriptedGenerator

QUESTION = "Which railroad was completed in the same year the Suez Canal opened?"
CONTEXTS = [
    "The canal opened on 17 November 1869 with a lavish ceremony. Empress Eugénie of France led the procession.",
    "The Suez Canal Company was formed in 1858.",
]


def test_a_reply_is_cut_to_its_first_line_without_label_or_quotes() -> None:
    assert clean_follow_up('Search query: "transcontinental railroad 1869".\nIt opened...') == (
        "transcontinental railroad 1869"
    )
    assert clean_follow_up("\n\n- Query: railroad completed 1869?") == "railroad completed 1869"
    assert clean_follow_up("   ") == ""


def test_a_reply_adds_something_only_with_a_word_of_its_own() -> None:
    assert adds_something("railroad completed 1869", QUESTION)
    assert not adds_something("railroad completed Suez Canal", QUESTION)  # the question's own words again
    assert not adds_something("I don't know", QUESTION)
    assert not adds_something("", QUESTION)


def test_the_bridge_terms_are_the_best_contexts_names_and_numbers_the_question_lacks() -> None:
    terms = bridge_terms(QUESTION, CONTEXTS)
    assert "1869" in terms and "November" in terms and "Eugénie" in terms
    assert "Suez" not in terms and "Canal" not in terms and "1858" not in terms  # asked, or not the best context
    assert bridge_terms(QUESTION, []) == []
    assert fallback_query(QUESTION, CONTEXTS).startswith(QUESTION + " ")
    assert "1869" in fallback_query(QUESTION, CONTEXTS)


def test_a_useful_reply_is_the_query() -> None:
    generator = ScriptedGenerator("Query: transcontinental railroad 1869")
    follow = follow_up_query(QUESTION, CONTEXTS, generator, 24, 1000)
    assert (follow.query, follow.origin) == (f"{QUESTION} transcontinental railroad 1869", "model")
    prompt = generator.prompts[0]
    assert FOLLOW_UP_SYSTEM in prompt and QUESTION in prompt and "17 November 1869" in prompt


def test_a_useless_reply_falls_back_and_is_kept_in_the_trace() -> None:
    for reply in ("", "I do not know.", "Suez Canal opened"):
        follow = follow_up_query(QUESTION, CONTEXTS, ScriptedGenerator(reply), 24, 1000)
        assert follow.origin == "fallback", reply
        assert follow.query == fallback_query(QUESTION, CONTEXTS)
        assert follow.said == reply.strip()


def test_contexts_are_dropped_until_the_prompt_fits_and_no_fit_falls_back() -> None:
    generator = EchoGenerator()
    whole = generator.count_tokens(follow_up_prompt(QUESTION, CONTEXTS, generator, 10_000))
    shorter = follow_up_prompt(QUESTION, CONTEXTS, generator, whole - 1)
    assert "17 November 1869" in shorter and "1858" not in shorter
    assert follow_up_prompt(QUESTION, CONTEXTS, generator, 5) == ""

    class Silent(ScriptedGenerator):
        def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
            raise AssertionError("the model is not asked when the prompt cannot fit")

    assert follow_up_query(QUESTION, CONTEXTS, Silent("x"), 24, 5).origin == "fallback"
