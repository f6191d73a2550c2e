"""bot.render: every output within Discord's limits, with long and hostile inputs; records built directly."""

from __future__ import annotations

import dataclasses
import random
import re

import discord
import pytest

from bot.render import (
    EMBED_TOTAL_LIMIT,
    HELP_TEXT,
    MESSAGE_LIMIT,
    answer_content,
    answer_messages,
    marked_tokens,
    not_covered_note,
    pipeline_text,
    prompt_file,
    source_pages,
    sources_embed,
    split_message,
    status_embed,
)
from rag_engine.records import Answer, AnswerToken, DomainStats, Hit, Passage, SkippedFile

EVERYONE = re.compile(r"@(everyone|here)")


def make_hit(rank: int, distance: float, *, in_prompt: bool = False, path: str = "zorblat.md", text: str = "") -> Hit:
    passage = Passage(
        id=rank,
        path=path,
        text=text or f"Passage {rank}: the zorblat lives in the valley of Quenth and eats blue moss.",
        line_start=rank,
        line_end=rank + 3,
    )
    return Hit(rank=rank, passage=passage, distance=distance, domain="zoology", in_prompt=in_prompt)


def make_answer(
    *,
    hits: tuple[Hit, ...] | None = None,
    text: str = "The zorblat eats blue moss.",
    tokens: tuple[AnswerToken, ...] | None = None,
    question: str = "What does the zorblat eat?",
    used_rag: bool = True,
    covered: bool = True,
) -> Answer:
    if hits is None:
        hits = (make_hit(1, 0.8123, in_prompt=True), make_hit(2, 1.05), make_hit(3, 1.4))
    if tokens is None:
        # Pieces as a tokenizer streams them: leading spaces belong to the next word.
        pieces = re.findall(r"\s*\S+", text)
        tokens = tuple(AnswerToken(piece, piece.strip() in {"zorblat", "blue", "moss."}) for piece in pieces)
    return Answer(
        question=question,
        domain="zoology",
        used_rag=used_rag,
        text=text,
        hits=hits,
        prompt="System: answer from the context.\n\n[1] zoology/zorblat.md\nThe zorblat eats blue moss.\n",
        prompt_tokens=312,
        tokens=tokens,
        timings={"load": 0.4, "embed_query": 0.012, "search": 0.003, "build_prompt": 0.001, "generate": 2.31},
        models={"embedding": "all-MiniLM-L6-v2", "generator": "SmolLM2-135M-Instruct"},
        top_k=4,
        max_distance=1.2,
        covered=covered,
        context_tokens=2048,
    )


def hostile_hits(count: int) -> tuple[Hit, ...]:
    """Long paths and passages, markdown and mass mentions in both."""
    return tuple(
        make_hit(
            rank,
            0.5 + rank / 50,
            in_prompt=rank <= 3,
            path=f"@everyone/{'deep_' * 60}{rank}.md",
            text=("@everyone **look** `code` " + "word " * 2000),
        )
        for rank in range(1, count + 1)
    )


def assert_embed_within_limits(embed: discord.Embed) -> None:
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25
    for field in embed.fields:
        assert field.name and len(field.name) <= 256
        assert field.value and len(field.value) <= 1024
    assert len(embed.footer.text or "") <= 2048
    assert len(embed) <= EMBED_TOTAL_LIMIT
    assert not EVERYONE.search(str(embed.to_dict()))


# -- split_message ----------------------------------------------------------------------------------------------
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
    from bot.render import _cut_point

    parts = []
    while len(text) > limit:
        cut = _cut_point(text, limit)
        parts.append(text[:cut])
        text = text[cut:]
    return [*parts, text]


# -- answer_content ---------------------------------------------------------------------------------------------
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


# -- sources ----------------------------------------------------------------------------------------------------
def test_sources_page_shows_rank_place_distance_use_and_snippet() -> None:
    embed = sources_embed(make_answer())
    assert embed.title == "Sources"
    description = embed.description or ""
    assert "Euclidean" in description and "lower is closer" in description and "1.20" in description
    assert "1 of 3 went into the prompt" in description
    names = [field.name for field in embed.fields]
    assert names == ["#1 · zoology/zorblat.md L1-4", "#2 · zoology/zorblat.md L2-5", "#3 · zoology/zorblat.md L3-6"]
    values = [field.value or "" for field in embed.fields]
    assert values[0].startswith("distance `0.812` · in prompt\n> Passage 1: the zorblat")
    assert "· not used" in values[1] and "· too far" in values[2]
    assert embed.footer.text == "page 1/1"
    assert_embed_within_limits(embed)


def test_fifty_hostile_sources_fit_on_every_page() -> None:
    answer = make_answer(hits=hostile_hits(50))
    assert source_pages(answer, 4) == 13
    for page in range(13):
        embed = sources_embed(answer, page=page, per_page=4)
        assert embed.footer.text == f"page {page + 1}/13"
        assert len(embed.fields) == (4 if page < 12 else 2)
        assert_embed_within_limits(embed)
        for field in embed.fields:
            snippet = (field.value or "").split("\n> ", 1)[1]
            assert len(snippet) <= 330  # ~300 characters plus markdown escapes


@pytest.mark.parametrize("per_page", [25, 40, 100])
def test_a_full_page_of_sources_stays_under_6000(per_page: int) -> None:
    answer = make_answer(hits=hostile_hits(50))
    embed = sources_embed(answer, page=0, per_page=per_page)
    assert len(embed.fields) == 25
    assert embed.footer.text == "page 1/2"
    assert_embed_within_limits(embed)


def test_pages_are_clamped() -> None:
    answer = make_answer(hits=hostile_hits(10))
    assert sources_embed(answer, page=99, per_page=4).footer.text == "page 3/3"
    assert sources_embed(answer, page=-5, per_page=4).footer.text == "page 1/3"
    assert source_pages(answer, 0) == 10  # per_page below 1 counts as 1
    assert source_pages(make_answer(hits=()), 4) == 1


def test_sources_without_retrieval_or_without_hits() -> None:
    norag = sources_embed(make_answer(hits=(), used_rag=False))
    assert "did not use retrieval" in (norag.description or "") and not norag.fields
    empty = sources_embed(make_answer(hits=()))
    assert "nothing is indexed" in (empty.description or "") and not empty.fields


def test_not_covered_note() -> None:
    assert not_covered_note(make_answer()) == ""
    far = make_answer(hits=(make_hit(1, 1.4321), make_hit(2, 1.6)), covered=False)
    note = not_covered_note(far)
    assert "1.432" in note and "1.20" in note and "not asked" in note
    assert len(note) <= MESSAGE_LIMIT
    assert "no indexed passages" in not_covered_note(make_answer(hits=(), covered=False))
    assert "not asked" in (sources_embed(far).description or "")


# -- status -----------------------------------------------------------------------------------------------------
def make_stats(name: str, skipped: int = 0, failed: int = 0) -> DomainStats:
    files = tuple(f"file{n}.md" for n in range(12))
    reasons = tuple(SkippedFile(f"@everyone/skipped{n}.bin", "unsupported " * 40) for n in range(skipped)) + tuple(
        SkippedFile(f"broken`{n}`.pdf", "could not parse the PDF: " + "x" * 300, failed=True) for n in range(failed)
    )
    return DomainStats(
        domain=name,
        files=files,
        passages=340,
        skipped=reasons,
        built_at=1_700_000_000.5,
        embedding_model="all-MiniLM-L6-v2",
        updated_at=1_700_000_900.9,
        version=7,
    )


def test_status_of_one_domain() -> None:
    embed = status_embed([make_stats("history", skipped=2, failed=1)])
    assert embed.title == "Knowledge"
    (field,) = embed.fields
    value = field.value or ""
    assert field.name == "history"
    assert "**12** files · **340** passages · v7 · updated <t:1700000900:R>" in value
    assert "2 skipped, 1 failed" in value
    assert value.index("• failed") < value.index("• skipped")  # failures first
    assert "all-MiniLM-L6-v2" in (embed.footer.text or "")
    assert_embed_within_limits(embed)


def test_status_of_many_large_domains_fits() -> None:
    stats = [make_stats(f"domain-{n}-@everyone-" + "x" * 300, skipped=100, failed=100) for n in range(30)]
    embed = status_embed(stats)
    assert len(embed.fields) == 25
    assert embed.fields[-1].name == "… and 6 more domains"
    assert all("more" in (field.value or "") for field in embed.fields[:-1])  # long skip lists are cut
    assert_embed_within_limits(embed)


def test_status_edge_cases() -> None:
    assert "No domains" in (status_embed([]).description or "")
    never = dataclasses.replace(make_stats("empty"), built_at=0.0, updated_at=0.0, files=(), passages=0)
    embed = status_embed([never])
    assert "never indexed" in (embed.fields[0].value or "")
    assert "skipped" not in (embed.fields[0].value or "")
    assert "<t:1700000000:R>" in (
        status_embed([dataclasses.replace(never, built_at=1_700_000_000.0)]).fields[0].value or ""
    )


# -- pipeline ---------------------------------------------------------------------------------------------------
def test_pipeline_shows_the_five_steps() -> None:
    text = pipeline_text(make_answer())
    for step in ("1 · Embed documents", "2 · Embed query", "3 · Retrieve", "4 · Build prompt", "5 · Generate"):
        assert step in text
    assert "all-MiniLM-L6-v2" in text and "12 ms" in text and "3 ms" in text
    assert "1    0.812     in prompt  zoology/zorblat.md L1-4" in text
    assert "too far" in text
    assert "312 of 2048 tokens" in text and "2.31 s" in text
    assert text.endswith("The **zorblat** eats **blue moss.**")  # a run is one bold span, spaces outside
    assert len(text) <= MESSAGE_LIMIT


def test_pipeline_with_fifty_hits_and_a_long_answer_fits() -> None:
    tokens = tuple(AnswerToken(f" w{n}@everyone", n % 3 == 0) for n in range(3000))
    answer = make_answer(hits=hostile_hits(50), tokens=tokens, text="".join(t.text for t in tokens))
    answer = dataclasses.replace(answer, question="@everyone " + "why " * 500)
    text = pipeline_text(answer)
    assert len(text) <= MESSAGE_LIMIT
    assert "… and 42 more" in text
    assert text.count("```") == 2
    assert text.count("**") % 2 == 0
    assert text.endswith("…")
    assert not EVERYONE.search(text)


def test_pipeline_without_rag_and_when_not_covered() -> None:
    norag = pipeline_text(make_answer(hits=(), used_rag=False))
    assert "skipped: no RAG" in norag and "question only" in norag and "bold" not in norag
    far = pipeline_text(make_answer(hits=(make_hit(1, 1.5),), covered=False, tokens=()))
    assert "4 · Build prompt** — skipped" in far and "5 · Generate** — skipped" in far
    assert "1.500" in far


def test_marked_tokens_never_leave_bold_open() -> None:
    tokens = tuple(AnswerToken(f" t{n}*", n % 2 == 0) for n in range(50))
    full = marked_tokens(tokens, 10_000)
    assert full.startswith(r"**t0\***")
    for limit in range(0, len(full) + 2):
        cut = marked_tokens(tokens, limit)
        assert len(cut) <= limit
        assert cut.count("**") % 2 == 0
    assert marked_tokens((), 100) == ""


def test_prompt_file_holds_the_whole_prompt() -> None:
    answer = make_answer()
    file = prompt_file(answer)
    assert file.filename == "prompt.txt"
    assert file.fp.read() == answer.prompt.encode("utf-8")
    no_prompt = prompt_file(dataclasses.replace(answer, prompt=""))
    assert b"No prompt was built" in no_prompt.fp.read()


def test_help_text() -> None:
    assert len(HELP_TEXT) <= MESSAGE_LIMIT
    for command in (
        "/ask",
        "/norag",
        "/compare",
        "/domain",
        "/eval",
        "/knowledge status",
        "/knowledge upload",
        "/help",
    ):
        assert command in HELP_TEXT
    steps = [line for line in HELP_TEXT.splitlines() if re.match(r"[1-5]\. ", line)]
    assert len(steps) == 5
