"""Grounding marks: answer tokens that belong to a content word of the context are marked."""

from __future__ import annotations

from rag_engine.generate.grounding import mark_tokens


def test_subword_tokens_of_a_context_word_are_all_marked() -> None:
    marked = mark_tokens(["The", " Bei", "jing", " average", " was", " 38", "."], "Beijing's average was 38 in 2023.")
    assert [(t.text, t.in_context) for t in marked] == [
        ("The", False),
        (" Bei", False),  # "Beijing" alone is not a context word ("Beijing's" is)
        ("jing", False),
        (" average", True),
        (" was", False),  # function word
        (" 38", True),
        (".", False),
    ]


def test_numbers_with_decimal_points_and_case_insensitivity() -> None:
    marked = mark_tokens(["PM", "2.5", " LIMIT"], "the pm2.5 limit")
    assert [t.in_context for t in marked] == [True, True, True]
    assert [t.text for t in marked] == ["PM", "2.5", " LIMIT"]


def test_nothing_is_marked_without_context() -> None:
    assert not any(t.in_context for t in mark_tokens(["Paris", " is", " nice"], ""))
