"""`/knowledge status`: one embed with a field per domain (files, passages, version, last update, and the
skipped or failed files with their reasons), within Discord's limits however many domains and files."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.render.text import (
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FIELDS_LIMIT,
    EMBED_TOTAL_LIMIT,
    code,
    defuse_mentions,
    truncate,
)
from rag_engine.records import DomainStats
from rag_engine.safe_names import display_name

_STATUS_COLOUR = discord.Colour.green()


def discord_timestamp(unix_seconds: float, style: str = "R") -> str:
    """`<t:1700000000:R>`: Discord shows it in each reader's time zone ("3 minutes ago" for R)."""
    return f"<t:{int(unix_seconds)}:{style}>"


def status_embed(stats: Sequence[DomainStats]) -> discord.Embed:
    """One field per domain: files, passages, version, last update, and skipped / failed files with reasons."""
    total = sum(item.passages for item in stats)
    if stats:
        description = f"{len(stats)} domain{'s' if len(stats) != 1 else ''}, {total} passages in all."
    else:
        description = "No domains yet: each subfolder of the knowledge folder is a domain."
    embed = discord.Embed(title="Knowledge", description=description, colour=_STATUS_COLOUR)
    models = sorted({item.embedding_model for item in stats if item.embedding_model})
    footer = truncate(f"embedding model: {', '.join(models)}", 200) if models else ""
    if footer:
        embed.set_footer(text=footer)
    shown = list(stats)
    hidden = 0
    if len(shown) > EMBED_FIELDS_LIMIT:
        hidden = len(shown) - (EMBED_FIELDS_LIMIT - 1)
        shown = shown[: EMBED_FIELDS_LIMIT - 1]
    more = f"… and {hidden} more domains" if hidden else ""
    fixed = len(embed.title or "") + len(description) + len(footer) + (len(more) + 1 if more else 0)
    budget = (EMBED_TOTAL_LIMIT - fixed) // max(1, len(shown))
    for item in shown:
        name = truncate(defuse_mentions(display_name(item.domain)), min(EMBED_FIELD_NAME_LIMIT, 100))
        limit = min(EMBED_FIELD_VALUE_LIMIT, budget - len(name))
        embed.add_field(name=name, value=_domain_value(item, limit), inline=False)
    if more:
        embed.add_field(name=more, value="\u200b", inline=False)
    return embed


def _domain_value(item: DomainStats, limit: int) -> str:
    stamp = item.updated_at or item.built_at
    updated = f"updated {discord_timestamp(stamp)}" if stamp else "never indexed"
    failed = len(item.failed)
    skipped = len(item.skipped) - failed
    lines = [f"**{len(item.files)}** files · **{item.passages}** passages · v{item.version} · {updated}"]
    if item.skipped:
        lines.append(f"{skipped} skipped, {failed} failed:")
    value = "\n".join(lines)
    # Failures first: they are the ones someone should fix. Reasons are cut so several files fit.
    ordered = sorted(item.skipped, key=lambda s: not s.failed)
    for index, entry in enumerate(ordered):
        kind = "failed" if entry.failed else "skipped"
        path, reason = display_name(entry.path), display_name(entry.reason)
        line = f"\n• {kind} `{code(truncate(path, 60))}`: {truncate(reason, 80)}"
        rest = len(ordered) - index
        tail = f"\n… and {rest - 1} more" if rest > 1 else ""
        if len(value) + len(defuse_mentions(line)) + len(tail) > limit:
            value += f"\n… and {rest} more"
            break
        value += defuse_mentions(line)
    return truncate(value, limit)
