"""Text within Discord's limits: the limits themselves, cutting, splitting into messages, escaping.

Discord rejects a request over its limits: 2000 characters of content; embed title 256, description 4096, at
most 25 fields of 256 (name) / 1024 (value), footer 2048, and 6000 characters in all. Every other render
module builds on these helpers. Also here: `@everyone` / `@here` made inert, markdown escaped without
breaking an escape at a cut, and text made safe inside inline code.
"""

from __future__ import annotations

import re

from discord.utils import escape_markdown

MESSAGE_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELDS_LIMIT = 25
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
SNIPPET_CHARS = 300
ELLIPSIS = "…"

_MASS_MENTION = re.compile(r"@(everyone|here)")


def defuse_mentions(text: str) -> str:
    """`@everyone` / `@here` with a zero-width space after the `@`: inert even where mentions would resolve.
    The bot sends with mentions disabled; this keeps embeds and copied text harmless as well."""
    return _MASS_MENTION.sub("@\u200b\\1", text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters with "…", preferring a word boundary near the end."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) * 0.8:  # a word boundary close to the end reads better than a cut word
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def escaped(text: str, limit: int) -> str:
    """Markdown-escaped `text` within `limit` characters. Escaping adds backslashes, so the raw text is cut
    before escaping (cutting escaped text could split a `\\*` pair and start emphasis)."""
    whole = escape_markdown(text)
    if len(whole) <= limit:
        return whole
    keep = limit - len(ELLIPSIS)
    while keep > 0:
        candidate = escape_markdown(text[:keep].rstrip()) + ELLIPSIS
        if len(candidate) <= limit:
            return candidate
        keep -= len(candidate) - limit
    return ELLIPSIS[:limit]


def code(text: str) -> str:
    """Text safe inside inline code or a code block: a backtick would end it."""
    return text.replace("`", "ˋ")


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A passage flattened to one line, cut to `limit` (not escaped)."""
    return truncate(" ".join(text.split()), limit)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut `text` into messages of at most `limit` characters, at paragraph, else line, else word breaks.

    Concatenating the parts gives `text` back exactly (separators stay at the end of the part before the
    cut), except that a part of nothing but whitespace is dropped, since Discord cannot send one. Empty or
    blank text gives []. Code fences are not kept balanced across parts.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return [part for part in parts if part.strip()]


def _cut_point(text: str, limit: int) -> int:
    """Where to end the next part: after the last paragraph, line or word break within `limit`.

    A break only counts if it leaves the part at least half full, trying the coarser kinds first; without
    one, the latest break of any kind; without any, a hard cut at `limit`.
    """
    window = text[:limit]
    fallback = 0
    for separator in ("\n\n", "\n", " "):
        index = window.rfind(separator)
        if index <= 0:
            continue
        cut = index + len(separator)
        if cut >= limit // 2:
            return cut
        fallback = max(fallback, cut)
    return fallback or limit
