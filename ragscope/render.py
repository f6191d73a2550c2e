"""Terminal rendering of engine results: sources with distances, index stats, timings.

Only formatting: no engine calls, no printing (callers print the returned strings). File and domain names go
through `display_name`: a name with an ANSI escape or a byte that is not UTF-8 prints as backslash escapes.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence

from rag_engine.records import Answer, DomainStats, Hit, IndexUpdate
from rag_engine.safe_names import display_name

SNIPPET_CHARS = 160


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def header(domain: str | None, use_rag: bool, generator: str) -> str:
    """The line printed before a streamed answer says what kind of answer follows."""
    mode = f"RAG over {display_name(domain or 'all domains')}" if use_rag else "no RAG: the model's weights alone"
    return f"[{mode} · {generator}]"


def sources(answer: Answer) -> str:
    if not answer.used_rag:
        return "No sources: this answer did not use retrieval."
    if not answer.hits:
        if answer.mode == "bm25":
            return "No sources: no passage shares a word with the question."
        return "No sources: nothing is indexed."
    ranked = "" if answer.mode == "dense" else f", ranked by {answer.mode}"
    lines = [
        f"Sources — Euclidean distance, lower is closer (threshold {answer.max_distance:.2f}, "
        f"{sum(h.in_prompt for h in answer.hits)} of {len(answer.hits)} in the prompt{ranked}):"
    ]
    for hit in answer.hits:
        path = display_name(f"{hit.domain}/{hit.passage.path}" if hit.domain else hit.passage.path)
        used = "in prompt" if hit.in_prompt else ("too far" if hit.distance > answer.max_distance else "not used")
        lines.append(f"  {hit.rank}. {hit.distance:.3f}  {path} {hit.passage.span}  ({used}){_ranks(hit, answer.mode)}")
        lines.append(textwrap.indent(snippet(hit.passage.text), "       "))
    return "\n".join(lines)


# How a round's query came about, in words (`Round.origin`).
ROUND_ORIGINS = {
    "question": "the question",
    "model": "the question + what the model said to look up next",
    "fallback": "fallback, the model's reply added nothing: the question + the first round's names and numbers",
}


def rounds(answer: Answer) -> str:
    """A multi-hop answer's retrieval rounds: what each searched with and what it found ("" for one round)."""
    if not answer.rounds:
        return ""
    lines = [f"Retrieval rounds ({answer.hops} hops; the sources above are both rounds, taken in turn):"]
    for number, found in enumerate(answer.rounds, start=1):
        origin = ROUND_ORIGINS.get(found.origin, found.origin)
        said = f"; the model said {snippet(found.said, 80)!r}" if found.origin != "question" else ""
        lines.append(f"  round {number}: “{snippet(found.query, 200)}” ({origin}{said})")
        for hit in found.hits:
            path = display_name(f"{hit.domain}/{hit.passage.path}" if hit.domain else hit.passage.path)
            used = "in prompt" if hit.in_prompt else ("too far" if hit.distance > answer.max_distance else "not used")
            lines.append(f"     {hit.rank}. {hit.distance:.3f}  {path} {hit.passage.span}  ({used})")
    return "\n".join(lines)


def not_covered(answer: Answer) -> str:
    """Why a RAG answer has no text: the engine reports the facts (nothing within `max_distance`), this
    words them for the terminal; "" for a covered answer."""
    if answer.covered:
        return ""
    where = f"the {display_name(answer.domain)} documents" if answer.domain else "the documents"
    closest = answer.closest_distance
    if closest is not None:
        reason = (
            f"the closest passage is at distance {closest:.2f}, farther than the {answer.max_distance:.2f} "
            "threshold, so they do not seem to cover it"
        )
    elif answer.mode == "bm25":
        reason = "no passage shares a word with the question"
    else:
        reason = "there are no indexed passages"
    return f"I can't answer that from {where}: {reason}."


def check(answer: Answer) -> str:
    """The support check under an answer: what the sources do not hold, and the sentence that supports it."""
    if not answer.used_rag or not answer.covered:
        return ""
    if answer.grounding == "refused":
        return "Check: the model found no answer in the passages it was given."
    lines = []
    unsupported = [claim for claim in answer.unsupported if claim.kind != "asked"]
    if answer.grounding == "unsupported":
        lines.append("⚠ Nothing in the sources supports this answer: do not rely on it.")
    lines += [f"⚠ the question asks for {claim.span}" for claim in answer.unsupported if claim.kind == "asked"]
    if unsupported:
        lines.append("⚠ not in the sources: " + ", ".join(claim.span for claim in unsupported))
    elif answer.support and answer.grounding != "unsupported":
        lines.append("✓ every number and name in the answer is in the sources")
    if answer.evidence is not None:
        evidence = answer.evidence
        where = display_name(f"{evidence.domain}/{evidence.where}" if evidence.domain else evidence.where)
        lines.append(f"Evidence ({where}): “{snippet(evidence.text, 300)}”")
    return "\n".join(lines)


def _ranks(hit: Hit, mode: str) -> str:
    return f"  [{hit.retriever_ranks()}]" if mode == "hybrid" else ""


def timings(answer: Answer) -> str:
    parts = [f"{step} {seconds * 1000:.0f} ms" for step, seconds in answer.timings.items()]
    return "timings: " + ", ".join(parts)


def domain_stats(stats: Sequence[DomainStats], verbose: bool = True) -> str:
    lines = []
    for item in stats:
        failed = len(item.failed)
        lines.append(
            f"{display_name(item.domain)}: {len(item.files)} files, {item.passages} passages, "
            f"{len(item.skipped) - failed} skipped, {failed} failed · v{item.version}, updated {when(item.updated_at)}"
        )
        if verbose:
            lines.extend(
                f"    {'failed' if s.failed else 'skipped'} {display_name(s.path)}: {display_name(s.reason)}"
                for s in item.skipped
            )
    return "\n".join(lines)


def when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "never"


def update_line(update: IndexUpdate) -> str:
    """One line per applied update, for `ragscope watch` and `ragscope index`."""
    domain = display_name(update.domain)
    if update.domain_removed:
        return f"{domain}: folder removed, index dropped"
    files = f"+{update.added} ~{update.changed} -{update.removed} files"
    if update.skipped or update.failed:
        files += f" ({update.skipped} skipped, {update.failed} failed)"
    kind = "rebuilt" if update.rebuilt else "updated"
    return (
        f"{domain}: {kind} to v{update.version} in {update.seconds:.2f}s · {files} · "
        f"{update.embedded} passages embedded, {update.reused} reused, {update.dropped} dropped · "
        f"{update.passages} passages"
    )
