"""bot.render.answer: streamed and final answers within one message or split, the not-covered wording and
the label line."""

from __future__ import annotations

from bot.render.answer import answer_body, answer_content, answer_messages, comparison_content, not_covered_note
from bot.render.sources import sources_embed
from bot.render.text import MESSAGE_LIMIT
from tests.bot.render.conftest import EVERYONE, make_answer, make_hit


def test_streaming_preview_is_cut_to_one_message() -> None:
    partial = "word " * 2000  # 10,000 characters so far
    content = answer_content(None, partial, label="RAG answer · history")
    assert len(content) <= MESSAGE_LIMIT
    assert content.startswith("**RAG answer · history**\nword word")
    assert content.endswith("…")


def test_final_content_uses_the_answer_text() -> None:
    answer = make_answer(text="x " * 5000)
    content = answer_content(answer, "ignored partial", label="No RAG: the model's weights alone")
    assert content.startswith("**No RAG: the model's weights alone**\nx x")
    assert len(content) <= MESSAGE_LIMIT and "ignored" not in content


def test_content_placeholders_and_mentions() -> None:
    assert answer_content(None, "", label="RAG answer · history") == "**RAG answer · history**\n…"
    assert "no text" in answer_content(make_answer(text=""), "", label="RAG answer")
    content = answer_content(make_answer(text="Hi @everyone and @here"), "", label="RAG answer · @everyone")
    assert not EVERYONE.search(content)
    assert "everyone" in content and "here" in content


def test_a_not_covered_answer_is_worded_from_the_engines_facts() -> None:
    far = make_answer(hits=(make_hit(1, 1.5), make_hit(2, 1.25)), covered=False, text="", tokens=())
    content = answer_content(far, "", label="RAG answer · zoology")
    assert content.startswith("**RAG answer · zoology**\nI can't answer that from the **zoology** documents.\n")
    assert content.endswith(not_covered_note(far))
    assert "at distance 1.250, farther than the" in content  # the closest hit, not rank 1
    assert "produced no text" not in content


def test_answer_messages_split_instead_of_cutting() -> None:
    short = make_answer()
    assert answer_messages(short, label="RAG answer") == [answer_content(short, "", label="RAG answer")]
    text = "\n\n".join(f"Paragraph {n} @everyone " + "word " * 150 for n in range(14))  # about 10,000 characters
    parts = answer_messages(make_answer(text=text), label="RAG answer · history")
    assert len(parts) >= 5
    assert all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert parts[0].startswith("**RAG answer · history**\nParagraph 0")
    joined = "".join(parts)
    assert joined.replace("@\u200b", "@") == "**RAG answer · history**\n" + text.strip()
    assert not EVERYONE.search(joined)
    far = make_answer(hits=(), covered=False, text="x " * 1500, tokens=())
    assert answer_messages(far, label="RAG")[-1].endswith(not_covered_note(far))


def test_a_markdown_label_stays_one_bold_line() -> None:
    content = answer_content(None, "text", label="RAG answer · my_**domain**")
    assert content.split("\n")[0] == r"**RAG answer · my\_\*\*domain\*\***"


def test_not_covered_note() -> None:
    assert not_covered_note(make_answer()) == ""
    far = make_answer(hits=(make_hit(1, 1.4321), make_hit(2, 1.6)), covered=False)
    note = not_covered_note(far)
    assert "1.432" in note and "1.20" in note and "not asked" in note
    assert len(note) <= MESSAGE_LIMIT
    assert "no indexed passages" in not_covered_note(make_answer(hits=(), covered=False))
    assert "not asked" in (sources_embed(far).description or "")


def test_every_surface_words_a_not_covered_answer_the_same() -> None:
    far = make_answer(hits=(make_hit(1, 1.5),), covered=False, text="", tokens=())
    body = answer_body(far)
    assert body == "I can't answer that from the **zoology** documents.\n" + not_covered_note(far)
    assert answer_content(far, "", label="RAG answer").endswith(body)
    side_by_side = comparison_content(body, answer_body(make_answer(used_rag=False, hits=())), "zoology")
    assert "**With RAG · zoology**\nI can't answer that" in side_by_side and "at distance 1.500" in side_by_side
