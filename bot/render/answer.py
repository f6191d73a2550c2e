"""An answer's message: the bold label line, the text (streamed or final), and the notes below it.

The engine returns facts for an answer it did not generate (`covered=False`: the hits with their distances,
the threshold, the mode; `text == ""`); this module is the one place in the bot that words them
(`not_covered_note`), for `/ask`, mentions, `/compare` and `/pipeline` alike. The support check under a
covered answer is `check_note`. A final answer is split into message-sized parts rather than cut
(`answer_messages`); a streamed preview is cut to one message (`answer_content`).

Not here: the sources embed (`bot.render.sources`), when a message is edited (`bot.answering`).
"""

from __future__ import annotations

from bot.render.text import MESSAGE_LIMIT, defuse_mentions, escaped, snippet, split_message, truncate
from rag_engine.records import Answer
from rag_engine.safe_names import display_name

# How much of each side `/compare` shows, so both answers and their labels fit in one message.
_COMPARE_SIDE = (MESSAGE_LIMIT - 200) // 2


def answer_label(domain: str | None, use_rag: bool, mode: str | None = None) -> str:
    """The bold first line of an answer; a retrieval mode other than dense is named (it ranks differently)."""
    if not use_rag:
        return "No RAG: the model's weights alone"
    ranked = f" · {mode}" if mode and mode != "dense" else ""
    return f"RAG answer · {domain or 'all domains'}{ranked}"


def label_line(label: str) -> str:
    return f"**{escaped(defuse_mentions(label), 200)}**"


def status_content(label: str, status: str) -> str:
    """The label line over a status instead of text ("In the queue: #2", "waited too long")."""
    return label_line(label) + "\n" + status


def queue_status(position: int) -> str:
    return f"⏳ In the queue: #{position} (one answer is generated at a time)."


def _final_body(answer: Answer) -> tuple[str, str]:
    """(answer text, note): the note explains a not-covered answer, or gives the support check; it must
    survive any cut of the text."""
    if not answer.covered:  # nothing was generated: the engine gives the facts, the note words them
        return f"I can't answer that from {_where(answer)}.", not_covered_note(answer)
    text = defuse_mentions(answer.text.strip()) or "*(the model produced no text)*"
    notes = [note for note in (check_note(answer), rounds_note(answer)) if note]
    return text, "\n".join(notes)


def answer_body(answer: Answer) -> str:
    """The final answer's text with its note below, without the label line (`/compare`, `/pipeline`)."""
    text, note = _final_body(answer)
    return text + ("\n" + note if note else "")


def _where(answer: Answer) -> str:
    return f"the **{escaped(display_name(answer.domain), 100)}** documents" if answer.domain else "the documents"


def answer_content(answer: Answer | None, partial_text: str, *, label: str) -> str:
    """The reply's content: a bold label line, then the text so far (`answer` None: streaming) or the final
    answer (`answer` given: its text, `partial_text` is not used), with `not_covered_note` below a
    not-covered answer.

    At most 2000 characters: longer text is cut with "…". For a final answer that is longer, send
    `answer_messages` instead (it splits rather than cuts).
    """
    head = label_line(label)
    if answer is None:
        body = defuse_mentions(partial_text.lstrip()) or "…"
        return head + "\n" + truncate(body, MESSAGE_LIMIT - len(head) - 1)
    text, note = _final_body(answer)
    tail = "\n" + note if note else ""
    return head + "\n" + truncate(text, MESSAGE_LIMIT - len(head) - 1 - len(tail)) + tail


def answer_messages(answer: Answer, *, label: str | None = None) -> list[str]:
    """The final answer as message-sized parts, nothing cut: `answer_content` when it fits in one message,
    else the label line, text and note split with `split_message` (the first part starts with the label).
    `label` defaults to the answer's own (`answer_label`)."""
    if label is None:
        label = answer_label(answer.domain, answer.used_rag, answer.mode)
    full = label_line(label) + "\n" + answer_body(answer)
    if len(full) <= MESSAGE_LIMIT:
        return [full]
    return split_message(full)


def comparison_content(with_rag: str, without_rag: str, domain: str | None) -> str:
    """`/compare`: both answers in one message, each side cut to fit (the sources embed follows)."""

    def fit(text: str) -> str:
        return text if len(text) <= _COMPARE_SIDE else text[: _COMPARE_SIDE - 1].rstrip() + "…"

    return (
        f"**With RAG · {domain or 'all domains'}**\n{fit(with_rag)}\n\n"
        f"**Without RAG · the model's weights alone**\n{fit(without_rag)}"
    )


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


# What a later round added to the question (`Round.origin`), in a few words.
_ORIGINS = {"model": "the model's lead", "fallback": "the first search's names and numbers"}


def rounds_note(answer: Answer) -> str:
    """A multi-hop answer's later rounds in one short line each: what was added to the question for that
    search and which files it found ("" for one round). The sources embed lists both rounds' passages."""
    lines = []
    for number, found in enumerate(answer.rounds[1:], start=2):
        added = found.query.removeprefix(answer.question).strip() or found.query
        lead = escaped(defuse_mentions(snippet(added, 120)), 200)
        files = dict.fromkeys(display_name(hit.passage.path) for hit in found.hits)
        shown = ", ".join(escaped(name, 80) for name in list(files)[:3]) or "nothing new"
        origin = _ORIGINS.get(found.origin, found.origin)
        lines.append(f"-# 🔁 Search {number}: the question + “{lead}” ({origin}) → {shown}")
    return "\n".join(lines)


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
        spans = ", ".join(escaped(defuse_mentions(claim.span), 80) for claim in unsupported[:8])
        lines.append(f"-# ⚠ not in the sources: {spans}")
    if answer.evidence is not None:
        evidence = answer.evidence
        where = display_name(f"{evidence.domain}/{evidence.where}" if evidence.domain else evidence.where)
        quote = escaped(defuse_mentions(snippet(evidence.text, 300)), 400)
        lines.append(f"-# Evidence ({escaped(where, 150)}): “{quote}”")
    return "\n".join(lines)
