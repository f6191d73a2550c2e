"""bot.render.text: splitting long text into messages at the best breaks, losing nothing."""

from __future__ import annotations

import random

from bot.render.text import MESSAGE_LIMIT, _cut_point, split_message


def test_split_prefers_paragraphs() -> None:
    paragraphs = [f"Paragraph {n}. " + "Some words here. " * 30 for n in range(40)]
    text = "\n\n".join(paragraphs)  # about 21,000 characters
    parts = split_message(text)
    assert "".join(parts) == text
    assert all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert all(part.endswith("\n\n") for part in parts[:-1])


def test_split_falls_back_to_lines_then_words_then_hard_cuts() -> None:
    lines = "\n".join("line " + "x" * 70 for _ in range(100))
    parts = split_message(lines)
    assert "".join(parts) == lines and all(p.endswith("\n") for p in parts[:-1])

    words = " ".join(["word"] * 3000)
    parts = split_message(words)
    assert "".join(parts) == words and all(p.endswith(" ") for p in parts[:-1])
    assert all(len(part) <= MESSAGE_LIMIT for part in parts)

    blob = "x" * 4500
    assert split_message(blob) == ["x" * 2000, "x" * 2000, "x" * 500]


def test_split_short_and_empty_text() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("x" * MESSAGE_LIMIT) == ["x" * MESSAGE_LIMIT]
    assert split_message("") == []
    assert split_message("  \n\n ") == []


def test_split_keeps_all_text_for_random_inputs() -> None:
    rng = random.Random(4)
    alphabet = ["a", "bb", "ccc", " ", " ", "\n", "\n\n", "é", "**", "@everyone"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        limit = rng.randint(1, 60)
        parts = split_message(text, limit)
        assert all(0 < len(part) <= limit and part.strip() for part in parts)
        # Only whitespace-only parts may be dropped: every visible character survives, in order.
        assert "".join("".join(parts).split()) == "".join(text.split())
        if not any(part.strip() == "" for part in _raw_parts(text, limit)):
            assert "".join(parts) == text


def _raw_parts(text: str, limit: int) -> list[str]:
    """split_message's parts before blank ones are dropped (for the exact-concatenation check)."""
    parts = []
    while len(text) > limit:
        cut = _cut_point(text, limit)
        parts.append(text[:cut])
        text = text[cut:]
    return [*parts, text]
