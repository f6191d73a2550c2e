"""How the bot shows engine results in Discord: message text, embeds and files, within Discord's limits.

Pure formatting: functions take records (`Answer`, `DomainStats`) and return strings, `discord.Embed` or
`discord.File`; nothing here sends, edits or calls the engine. Limits that Discord enforces (and rejects a
request for) are respected here, so a long answer or fifty sources can never make a reply fail: 2000
characters of content; embed title 256, description 4096, at most 25 fields of 256 (name) / 1024 (value),
footer 2048, and 6000 characters in all. The wording follows the terminal renderer
(`ragscope.render`): Euclidean distance, lower is closer, and which passages went into the prompt.

Not here: buttons and their callbacks (`bot.views`), choosing what to show when (the cogs).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import discord
from discord.utils import escape_markdown

from rag_engine.records import Answer, AnswerToken, DomainStats, Hit
from rag_engine.safe_names import display_name

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

# Colours only tell embeds apart at a glance: sources blue, status green.
_SOURCES_COLOUR = discord.Colour.blurple()
_STATUS_COLOUR = discord.Colour.green()

HELP_TEXT = """\
**ragscope** answers questions from this server's documents, and shows how it found the answer.
How RAG (retrieval-augmented generation) works, in five steps:
1. Every document is cut into passages and each passage becomes a vector (its *embedding*).
2. Your question becomes a vector the same way.
3. The passages nearest to it are retrieved (Euclidean distance: lower is closer); too-far ones are dropped.
4. Those passages and your question are put together into one prompt.
5. A small language model writes the answer from that prompt, token by token.
Then every number and name of the answer is looked up in those passages: what they do not hold is marked ⚠.

**Commands**
`/ask` (or mention me) — answer from the documents of this channel's domain
`/norag` — the model alone, without documents (what it "knows" from its weights)
`/compare` — both answers, with and without RAG, side by side
`/pipeline` — the five steps for one question: embedding map, distance table, prompt, attention heatmap
`/domain` — show or set which domain this channel asks about
`/eval` — how well this domain's test questions are answered (`what: retrieval` or `answers`)
`/knowledge status` — what is indexed: files, passages, skipped or failed files
`/knowledge upload` — add a document to a domain (Manage Server or a knowledge role)
`/knowledge reindex` — rebuild a domain's index (same permission)
`/help` — this message
Under an answer: **Answer without RAG**, **Show pipeline** (the five steps, with pictures), **More sources**."""

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


def _escaped(text: str, limit: int) -> str:
    """Markdown-escaped `text` within `limit` characters. Escaping adds backslashes, so the raw text is cut
    before escaping (cutting escaped text could split a `\\*` pair and start emphasis)."""
    escaped = escape_markdown(text)
    if len(escaped) <= limit:
        return escaped
    keep = limit - len(ELLIPSIS)
    while keep > 0:
        candidate = escape_markdown(text[:keep].rstrip()) + ELLIPSIS
        if len(candidate) <= limit:
            return candidate
        keep -= len(candidate) - limit
    return ELLIPSIS[:limit]


def _code(text: str) -> str:
    """Text safe inside inline code or a code block: a backtick would end it."""
    return text.replace("`", "ˋ")


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A passage flattened to one line, cut to `limit` (not escaped)."""
    return truncate(" ".join(text.split()), limit)


# -- messages ---------------------------------------------------------------------------------------------------
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


def _label_line(label: str) -> str:
    return f"**{_escaped(defuse_mentions(label), 200)}**"


def _final_body(answer: Answer) -> tuple[str, str]:
    """(answer text, note): the note explains a not-covered answer, or gives the support check; it must
    survive any cut of the text."""
    if not answer.covered:  # nothing was generated: the engine gives the facts, the note words them
        return f"I can't answer that from {_where(answer)}.", not_covered_note(answer)
    text = defuse_mentions(answer.text.strip()) or "*(the model produced no text)*"
    return text, check_note(answer)


def _where(answer: Answer) -> str:
    return f"the **{_escaped(display_name(answer.domain), 100)}** documents" if answer.domain else "the documents"


def answer_content(answer: Answer | None, partial_text: str, *, label: str) -> str:
    """The reply's content: a bold label line, then the text so far (`answer` None: streaming) or the final
    answer (`answer` given: its text, `partial_text` is not used), with `not_covered_note` below a
    not-covered answer.

    At most 2000 characters: longer text is cut with "…". For a final answer that is longer, send
    `answer_messages` instead (it splits rather than cuts).
    """
    head = _label_line(label)
    if answer is None:
        body = defuse_mentions(partial_text.lstrip()) or ELLIPSIS
        return head + "\n" + truncate(body, MESSAGE_LIMIT - len(head) - 1)
    text, note = _final_body(answer)
    tail = "\n" + note if note else ""
    return head + "\n" + truncate(text, MESSAGE_LIMIT - len(head) - 1 - len(tail)) + tail


def answer_messages(answer: Answer, *, label: str) -> list[str]:
    """The final answer as message-sized parts, nothing cut: `answer_content` when it fits in one message,
    else the label line, text and note split with `split_message` (the first part starts with the label)."""
    head = _label_line(label)
    text, note = _final_body(answer)
    full = head + "\n" + text + ("\n" + note if note else "")
    if len(full) <= MESSAGE_LIMIT:
        return [full]
    return split_message(full)


def not_covered_note(answer: Answer) -> str:
    """Why nothing was generated when retrieval found nothing close enough; "" for a covered answer."""
    if answer.covered:
        return ""
    where = _where(answer)
    nearest = answer.closest_distance
    if nearest is not None:
        reason = (
            f"the nearest passage in {where} is at distance {nearest:.3f}, farther than the "
            f"{answer.max_distance:.2f} threshold"
        )
    elif answer.mode == "bm25":
        reason = f"no passage in {where} shares a word with the question"
    else:
        reason = f"{where} have no indexed passages"
    return (
        f"-# Not covered: {reason}, so the model was not asked (it would only guess). "
        "Try **Answer without RAG** to hear the model alone, or `/domain` to ask another domain."
    )


def check_note(answer: Answer) -> str:
    """The support check under a covered RAG answer: claims the sources do not hold, and the evidence line."""
    if not answer.used_rag or not answer.covered or not answer.grounding:
        return ""
    if answer.grounding == "refused":
        return "-# The model found no answer in the passages it was given."
    lines = []
    if answer.grounding == "unsupported":
        lines.append("-# ⚠ Nothing in the sources supports this answer: do not rely on it.")
    lines += [f"-# ⚠ the question asks for {claim.span}" for claim in answer.unsupported if claim.kind == "asked"]
    unsupported = [claim for claim in answer.unsupported if claim.kind != "asked"]
    if unsupported:
        spans = ", ".join(_escaped(defuse_mentions(claim.span), 80) for claim in unsupported[:8])
        lines.append(f"-# ⚠ not in the sources: {spans}")
    if answer.evidence is not None:
        evidence = answer.evidence
        where = display_name(f"{evidence.domain}/{evidence.where}" if evidence.domain else evidence.where)
        quote = _escaped(defuse_mentions(snippet(evidence.text, 300)), 400)
        lines.append(f"-# Evidence ({_escaped(where, 150)}): “{quote}”")
    return "\n".join(lines)


# -- sources ----------------------------------------------------------------------------------------------------
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
        value = head + _escaped(text, max(1, value_limit - len(head)))
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


# -- knowledge status -------------------------------------------------------------------------------------------
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
        line = f"\n• {kind} `{_code(truncate(path, 60))}`: {truncate(reason, 80)}"
        rest = len(ordered) - index
        tail = f"\n… and {rest - 1} more" if rest > 1 else ""
        if len(value) + len(defuse_mentions(line)) + len(tail) > limit:
            value += f"\n… and {rest} more"
            break
        value += defuse_mentions(line)
    return truncate(value, limit)


# -- pipeline ---------------------------------------------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f" · {seconds * 1000:.0f} ms" if seconds < 1 else f" · {seconds:.2f} s"


_TABLE_ROWS = 8


def _distance_table(answer: Answer) -> str:
    rows = [f"{'rank':<5}{'distance':<10}{'used':<11}source"]
    for hit in answer.hits[:_TABLE_ROWS]:
        source = truncate(_location(hit), 60)
        rows.append(f"{hit.rank:<5}{hit.distance:<10.3f}{hit_use(hit, answer.max_distance):<11}{source}")
    if len(answer.hits) > _TABLE_ROWS:
        rows.append(f"… and {len(answer.hits) - _TABLE_ROWS} more (see More sources)")
    return "```\n" + _code(defuse_mentions("\n".join(rows))) + "\n```"


def marked_tokens(tokens: Sequence[AnswerToken], limit: int) -> str:
    """The generated tokens with runs that also occur in the retrieved context in **bold**, within `limit`.

    Whitespace stays outside the `**` (Discord does not embolden `** word**`), text is markdown-escaped and
    mention-defused, and a cut never leaves a `**` open.
    """
    runs: list[tuple[str, bool]] = []
    for token in tokens:
        if runs and runs[-1][1] == token.in_context:
            runs[-1] = (runs[-1][0] + token.text, token.in_context)
        else:
            runs.append((token.text, token.in_context))
    out = ""
    for index, (raw, bold) in enumerate(runs):
        text = raw.lstrip() if index == 0 else raw
        core = text.strip()
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()) :]
        marks = "**" if bold and core else ""
        piece = lead + marks + escape_markdown(defuse_mentions(core)) + marks + trail
        if len(out) + len(piece) <= limit:
            out += piece
            continue
        # This run does not fit whole: as much of it as fits, closed properly, then "…".
        room = limit - len(out) - len(lead) - 2 * len(marks)
        if core and room > len(ELLIPSIS):
            out += lead + marks + _escaped(defuse_mentions(core), room) + marks
        elif len(out) + len(ELLIPSIS) <= limit:
            out = out.rstrip() + ELLIPSIS
        break
    return out


def pipeline_text(answer: Answer) -> str:
    """The five steps of this answer as one message (≤ 2000 characters): what each did and how long it took."""
    timings = answer.timings
    embedding = answer.models.get("embedding", "the embedding model")
    generator = answer.models.get("generator", "the language model")
    question = truncate(" ".join(answer.question.split()), 120)
    lines = [f"**Pipeline** for “{_escaped(defuse_mentions(question), 240)}”"]
    if answer.used_rag:
        # How many passages the domain holds is not part of the Answer; the cog may add it.
        lines.append(f"**1 · Embed documents** — done when the domain was indexed, with `{_code(embedding)}`")
        lines.append(f"**2 · Embed query** — the question becomes a vector{_duration(timings.get('embed_query'))}")
        lines.append(
            f"**3 · Retrieve** — the {answer.top_k} nearest passages by Euclidean distance (lower is closer), "
            f"threshold {answer.max_distance:.2f}{_duration(timings.get('search'))}"
        )
        lines.append(_distance_table(answer) if answer.hits else "nothing is indexed")
    else:
        lines.append("**1–3 · Embed and retrieve** — skipped: no RAG, the question went to the model alone")
    if not answer.covered:
        lines.append("**4 · Build prompt** — skipped: no passage was within the threshold")
        lines.append("**5 · Generate** — skipped: the model was not asked, the answer says why")
        return truncate("\n".join(lines), MESSAGE_LIMIT)
    context = "passages and question" if answer.used_rag else "question only, no context"
    budget = f" of {answer.context_tokens}" if answer.context_tokens else ""
    lines.append(
        f"**4 · Build prompt** — {answer.prompt_tokens}{budget} tokens ({context}; full text in prompt.txt)"
        f"{_duration(timings.get('build_prompt'))}"
    )
    legend = "; **bold** = also in the retrieved context" if answer.used_rag else ""
    lines.append(
        f"**5 · Generate** — {len(answer.tokens)} tokens with `{_code(generator)}`"
        f"{_duration(timings.get('generate'))}{legend}"
    )
    head = "\n".join(lines) + "\n"
    room = MESSAGE_LIMIT - len(head)
    if answer.tokens:
        body = marked_tokens(answer.tokens, room)
    else:
        body = _escaped(defuse_mentions(answer.text), room)
    # The slice is only a guard: both parts are built within their budgets.
    return (head + body)[:MESSAGE_LIMIT]


def prompt_file(answer: Answer) -> discord.File:
    """The exact prompt the model saw, as an attachment `prompt.txt` (prompts outgrow a message)."""
    text = (
        answer.prompt or "No prompt was built: nothing was retrieved within the threshold, so the model was not asked."
    )
    return discord.File(io.BytesIO(text.encode("utf-8")), filename="prompt.txt")
