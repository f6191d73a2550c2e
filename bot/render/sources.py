"""The retrieved passages of an answer as embed pages: rank, file and span, distance, use, a snippet.

Every page fits Discord's embed limits however long the paths and passages are: the 6000-character total is
shared among the page's fields. The description says how to read the numbers (Euclidean distance, lower is
closer; what ranked them when it was not the embeddings).

Not here: the pager's buttons (`bot.views`).
"""

from __future__ import annotations

import math

import discord

from bot.render.text import (
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FIELDS_LIMIT,
    EMBED_TOTAL_LIMIT,
    SNIPPET_CHARS,
    defuse_mentions,
    escaped,
    snippet,
    truncate,
)
from rag_engine.records import Answer, Hit
from rag_engine.safe_names import display_name

_SOURCES_COLOUR = discord.Colour.blurple()


def source_pages(answer: Answer, per_page: int) -> int:
    """How many pages `sources_embed` has for this answer (at least 1)."""
    per_page = _per_page(per_page)
    return max(1, math.ceil(len(answer.hits) / per_page))


def _per_page(per_page: int) -> int:
    return max(1, min(per_page, EMBED_FIELDS_LIMIT))


def hit_use(hit: Hit, max_distance: float) -> str:
    """What became of a retrieved passage, in the terminal renderer's words."""
    if hit.in_prompt:
        return "in prompt"
    return "too far" if hit.distance > max_distance else "not used"


def _location(hit: Hit) -> str:
    # Names are shown escaped: a control character or a byte that is not UTF-8 in a file name stays visible text.
    path = display_name(f"{hit.domain}/{hit.passage.path}" if hit.domain else hit.passage.path)
    return f"{path} {hit.passage.span}"


def sources_embed(answer: Answer, page: int = 0, per_page: int = 4) -> discord.Embed:
    """One page of the retrieved passages: rank, file and span, distance, whether it was used, a snippet.

    `page` is 0-based and clamped into range; `per_page` is clamped to 1..25 (Discord's field limit).
    """
    per_page = _per_page(per_page)
    pages = source_pages(answer, per_page)
    page = min(max(page, 0), pages - 1)
    shown = answer.hits[page * per_page : (page + 1) * per_page]
    embed = discord.Embed(title="Sources", description=_sources_description(answer), colour=_SOURCES_COLOUR)
    footer = f"page {page + 1}/{pages}"
    embed.set_footer(text=footer)
    if not answer.used_rag:
        return embed
    # Share what the total limit leaves among this page's fields, so 25 long fields still fit in 6000.
    fixed = len(embed.title or "") + len(embed.description or "") + len(footer)
    budget = (EMBED_TOTAL_LIMIT - fixed) // max(1, len(shown))
    name_limit = min(EMBED_FIELD_NAME_LIMIT, budget // 3)
    for hit in shown:
        name = truncate(defuse_mentions(f"#{hit.rank} · {_location(hit)}"), name_limit)
        head = f"distance `{hit.distance:.3f}` · {hit_use(hit, answer.max_distance)}{_ranks(hit, answer.mode)}\n> "
        value_limit = min(EMBED_FIELD_VALUE_LIMIT, budget - len(name))
        text = snippet(defuse_mentions(hit.passage.text), SNIPPET_CHARS)
        value = head + escaped(text, max(1, value_limit - len(head)))
        embed.add_field(name=name, value=value[:value_limit], inline=False)
    return embed


def _sources_description(answer: Answer) -> str:
    if not answer.used_rag:
        return "No sources: this answer did not use retrieval (the model's weights alone)."
    if not answer.hits:
        return "No sources: nothing is indexed here yet."
    used = sum(hit.in_prompt for hit in answer.hits)
    text = (
        "Euclidean distance between the question's and each passage's embedding: **lower is closer**. "
        f"Passages farther than **{answer.max_distance:.2f}** are too far to use. "
        f"{used} of {len(answer.hits)} went into the prompt."
    )
    if answer.mode == "bm25":
        text += " Ranked by **BM25** (shared words), so rank 1 need not be the closest."
    elif answer.mode == "hybrid":
        text += " Ranked by **hybrid** search (embeddings and shared words fused), so rank 1 need not be the closest."
    if not answer.covered:
        text += " None was close enough, so the model was not asked."
    return text


def _ranks(hit: Hit, mode: str) -> str:
    return f" · {hit.retriever_ranks()}" if mode == "hybrid" else ""
