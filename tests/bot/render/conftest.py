"""Records for the render tests, built directly (no engine): answers with hits, hostile hits, and the check
that an embed is within every Discord limit."""

from __future__ import annotations

import re

import discord

from bot.render.text import EMBED_TOTAL_LIMIT
from rag_engine.records import Answer, AnswerToken, Hit, Passage

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
