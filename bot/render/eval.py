"""What `/eval` shows: the retrieval report (hit@k, MRR, the misses with what came back instead) and the
answer report (right answers, refusals, the wrong ones with the step that lost them), one embed each.

Within Discord's limits however many domains and misses there are: what does not fit is counted, not shown,
and the embed points to the terminal command that shows it all.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord
from discord.utils import escape_markdown

from bot.render.text import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELD_VALUE_LIMIT,
    EMBED_FIELDS_LIMIT,
    EMBED_TOTAL_LIMIT,
    defuse_mentions,
    truncate,
)
from rag_engine.evaluation.answers import AnswerResult, summarize
from rag_engine.evaluation.domains import MRR_DEPTH, QUESTIONS_FILE, DomainReport, QuestionResult, overall

_COLOUR = discord.Colour.gold()
# A domain's summary line and one miss are kept short, so several domains and misses share one embed.
_QUESTION_CHARS = 150
_FILE_CHARS = 60


def _file(path: str) -> str:
    # Inside inline code a backtick would end it early.
    return "`" + truncate(path, _FILE_CHARS).replace("`", "ˋ") + "`"


def _numbers(report: DomainReport) -> str:
    if not report.questions:
        return f"no questions in its {QUESTIONS_FILE}"
    return (
        f"hit@{report.k} **{report.hit_at_k:.0%}** ({report.hits}/{report.questions}) · "
        f"MRR@{report.depth} **{report.mrr:.3f}**"
    )


def _miss_line(domain: str | None, miss: QuestionResult) -> str:
    question = escape_markdown(defuse_mentions(truncate(" ".join(miss.question.split()), _QUESTION_CHARS)))
    where = f"[{escape_markdown(domain)}] " if domain else ""
    rank = f"rank {miss.rank}" if miss.rank else f"not in the top {MRR_DEPTH}"
    got = ", ".join(_file(path) for path in miss.got) or "nothing"
    return f"• {where}{question}\n  → expected {_file(miss.expected)} ({rank}); got {got}"


def eval_embed(reports: Sequence[DomainReport]) -> discord.Embed:
    """One domain: its numbers and misses. Several: the overall numbers, one field per domain, then the misses.

    Within Discord's limits however many domains and misses there are: what does not fit is counted, not shown.
    """
    several = len(reports) != 1
    k = reports[0].k if reports else 0
    title = "Retrieval evaluation · " + ("all domains" if several else reports[0].domain)
    if several:
        total = overall(reports)
        head = (
            f"{total['questions']} questions in {len(reports)} domains · hit@{k} **{total['hit@k']:.0%}** · "
            f"MRR@{MRR_DEPTH} **{total['mrr']:.3f}**"
        )
    else:
        head = f"{reports[0].questions} questions · {_numbers(reports[0])}"
    legend = (
        f"hit@{k}: the expected file is among the {k} nearest passages. MRR: 1 / the rank of its first passage "
        f"within the top {MRR_DEPTH} (0 if absent), averaged."
    )
    embed = discord.Embed(
        title=truncate(defuse_mentions(title), 256),
        description=truncate(head + "\n-# " + legend, EMBED_DESCRIPTION_LIMIT),
        colour=_COLOUR,
    )
    used = len(embed.title or "") + len(embed.description or "")

    def add(name: str, value: str) -> bool:
        """Add a field if it fits in what is left; False when it does not."""
        nonlocal used
        name = truncate(defuse_mentions(name), EMBED_FIELD_NAME_LIMIT)
        value = truncate(value, EMBED_FIELD_VALUE_LIMIT)
        # Keep room for the closing "… and N more" field.
        if len(embed.fields) >= EMBED_FIELDS_LIMIT - 1 or used + len(name) + len(value) > EMBED_TOTAL_LIMIT - 80:
            return False
        embed.add_field(name=name, value=value, inline=False)
        used += len(name) + len(value)
        return True

    left_out = 0
    if several:
        for report in reports:
            if not add(report.domain, _numbers(report)):
                left_out += 1

    misses = [(report.domain if several else None, miss) for report in reports for miss in report.misses]
    if not misses and any(report.questions for report in reports):
        add("Misses", f"None: every expected file was in the top {k}.")
    # Misses are packed into as few fields as possible (each up to 1024 characters), in question order.
    chunks: list[tuple[str, int]] = []  # (field value, misses in it)
    value, count = "", 0
    for domain, miss in misses:
        line = _miss_line(domain, miss)
        if value and len(value) + 1 + len(line) > EMBED_FIELD_VALUE_LIMIT:
            chunks.append((value, count))
            value, count = "", 0
        value, count = (f"{value}\n{line}" if value else line), count + 1
    if value:
        chunks.append((value, count))
    shown = 0
    for index, (value, count) in enumerate(chunks):
        if not add("Misses" if index == 0 else "Misses (continued)", value):
            break
        shown += count
    left_out_misses = len(misses) - shown
    if left_out or left_out_misses:
        parts = []
        if left_out:
            parts.append(f"{left_out} more domains")
        if left_out_misses:
            parts.append(f"{left_out_misses} more misses")
        embed.add_field(name="… and " + " and ".join(parts), value="Run `ragscope eval domains` for all.", inline=False)
    return embed


def _rate(value: float | None) -> str:
    return "–" if value is None else f"**{value:.0%}**"


def answers_embed(per_domain: dict[str, list[AnswerResult]]) -> discord.Embed:
    """Right answers per domain (answerable questions), refusals of the unanswerable ones, and the wrong ones
    with the step that lost them; within Discord's limits (what does not fit is counted)."""
    everything = [result for results in per_domain.values() for result in results]
    total = summarize(everything)
    title = "Answer evaluation · " + (next(iter(per_domain)) if len(per_domain) == 1 else "all domains")
    head = (
        f"{total['answerable']} answerable questions: right {_rate(total['rag.right'])} · "
        f"{total['unanswerable']} unanswerable: refused {_rate(total['unanswerable.refused'])}"
    )
    legend = (
        "Right: the answer holds the question's key facts and was not refused or flagged. A wrong answer names "
        "the step that lost it: not retrieved, below threshold, not in prompt, refused, not used, answered "
        "(an unanswerable question got an answer)."
    )
    embed = discord.Embed(
        title=truncate(defuse_mentions(title), 256),
        description=truncate(head + "\n-# " + legend, EMBED_DESCRIPTION_LIMIT),
        colour=_COLOUR,
    )
    used = len(embed.title or "") + len(embed.description or "")
    if len(per_domain) > 1:
        for name, results in per_domain.items():
            summary = summarize(results)
            value = f"right {_rate(summary['rag.right'])} · refused {_rate(summary['unanswerable.refused'])}"
            embed.add_field(name=truncate(defuse_mentions(name), EMBED_FIELD_NAME_LIMIT), value=value, inline=False)
            used += len(name) + len(value)
    lines = []
    for result in everything:
        if result.why:
            question = escape_markdown(defuse_mentions(truncate(" ".join(result.item.question.split()), 120)))
            said = escape_markdown(defuse_mentions(truncate(" ".join(result.columns["rag"].text.split()), 120)))
            lines.append(f"• [{escape_markdown(result.domain)}] {question}\n  → {result.why}: “{said}”")
    chunks: list[tuple[str, int]] = []  # (field value, wrong answers in it), packed up to 1024 characters
    for line in lines:
        if chunks and len(chunks[-1][0]) + 1 + len(line) <= EMBED_FIELD_VALUE_LIMIT:
            chunks[-1] = (chunks[-1][0] + "\n" + line, chunks[-1][1] + 1)
        else:
            chunks.append((truncate(line, EMBED_FIELD_VALUE_LIMIT), 1))
    shown = 0
    for value, count in chunks:
        if len(embed.fields) >= EMBED_FIELDS_LIMIT - 1 or used + len(value) + 20 > EMBED_TOTAL_LIMIT - 100:
            break
        embed.add_field(name="Wrong answers", value=value, inline=False)
        used += len(value) + len("Wrong answers")
        shown += count
    if shown < len(lines):
        embed.add_field(
            name=f"… and {len(lines) - shown} more", value="Run `ragscope eval answers` for all.", inline=False
        )
    return embed
