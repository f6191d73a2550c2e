"""A `LabReport` (`rag_engine.lab`) as one Discord message: the result's lines, what they mean, the picture.

The content is a label line with the question, the report's `lines()` in a code block (monospaced, so its
columns line up and nothing in a generated answer turns into markdown), then its `explanation`: two or three
plain sentences on what the user is looking at. All of it within Discord's 2000 characters: the explanation
and the question are cut first to a fixed share, the lines then fill what is left, whole lines only, and say
how many did not fit. The picture (`png()`) and everything measured (`to_dict()`, as `ragscope lab --json`
prints it) go as attachments, each only when within the upload limit Discord gave the interaction; one over it
is left out, and the message says so.

While the experiment waits its turn, `lab_status` says where it is in the queue, then that it runs.

Drawing the picture takes a while: call `lab_message` off the event loop (the cog runs it in the generation
queue, with the experiment). Not here: running the experiment (`rag_engine.lab.run_experiment`).
"""

from __future__ import annotations

import io
import json

import discord

from bot.render.answer import queue_status
from bot.render.text import MESSAGE_LIMIT, code, defuse_mentions, escaped, truncate
from rag_engine.lab.report import LabReport

QUESTION_CHARS = 200
EXPLANATION_CHARS = 600
# One line of the report: long enough for an answer's first sentence, short enough that several fit.
LINE_CHARS = 300
FENCE_OPEN, FENCE_CLOSE = "```\n", "\n```"
RUNNING = "⏳ Running the experiment: it answers your question several times, so it takes a while."


def lab_message(report: LabReport, size_limit: int) -> tuple[str, list[discord.File]]:
    """(content, files) for one message showing `report`; files over `size_limit` bytes are left out."""
    attachments = {
        f"lab-{report.experiment}.png": report.png(),
        f"lab-{report.experiment}.json": json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"),
    }
    files = [
        discord.File(io.BytesIO(data), filename=name) for name, data in attachments.items() if len(data) <= size_limit
    ]
    notes = [
        f"({name} is {_megabytes(len(data))}, over this server's upload limit of {_megabytes(size_limit)}: "
        f"`ragscope lab {report.experiment} … --png FILE` writes it.)"
        for name, data in attachments.items()
        if len(data) > size_limit
    ]
    return lab_content(report, notes), files


def lab_status(experiment: str, domain: str, question: str, position: int) -> str:
    """The message while the experiment waits in the generation queue (`position` > 0) or, after waiting, runs."""
    status = queue_status(position) if position > 0 else RUNNING
    return f"{_head(experiment, domain, question)}\n\n{status}"


def lab_content(report: LabReport, notes: list[str] | None = None) -> str:
    """The message text: label and question, the lines in a code block, the explanation, any `notes`."""
    head = _head(report.experiment, report.domain, report.question)
    tail = defuse_mentions(escaped(report.explanation.strip(), EXPLANATION_CHARS))
    for note in notes or []:
        tail += "\n-# " + defuse_mentions(note)
    room = MESSAGE_LIMIT - len(head) - len(tail) - len("\n\n") * 2 - len(FENCE_OPEN) - len(FENCE_CLOSE)
    block = _lines_within([code(truncate(line, LINE_CHARS)) for line in report.lines()], room)
    return f"{head}\n\n{FENCE_OPEN}{block}{FENCE_CLOSE}\n\n{tail}"


def _head(experiment: str, domain: str, question: str) -> str:
    label = f"**RAG lab · {escaped(experiment, 40)} · {escaped(domain, 100)}**\n"
    return label + "**Question:** " + defuse_mentions(escaped(" ".join(question.split()), QUESTION_CHARS))


def _lines_within(lines: list[str], room: int) -> str:
    """As many whole `lines` as fit in `room` characters, with a last line counting the rest."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        left = len(lines) - index - 1
        # Keep room for the "…N more lines" line unless this is the last one.
        reserve = 0 if left == 0 else len(_more(left)) + 1
        if used + len(line) + (1 if kept else 0) + reserve > room:
            kept.append(_more(len(lines) - index))
            break
        kept.append(line)
        used += len(line) + (1 if len(kept) > 1 else 0)
    return "\n".join(kept) or "(no result lines)"


def _more(count: int) -> str:
    return f"…{count} more line{'s' if count != 1 else ''} (the attached JSON has everything)"


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
