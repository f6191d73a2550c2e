"""Verify before showing: an answer checked against the context blocks its prompt carried.

Every number, date and proper name of the answer is looked up in the blocks (what the model actually saw, not
the whole retrieved passages), the one sentence that best supports the answer is picked as its evidence, and
a verdict says how the answer stands (`records.GROUNDING_VERDICTS`). The rules themselves live in
`support.py`; this module applies them to a built prompt's blocks (and gathers the hits' whole documents,
`whole_documents`, where the question's names are looked up).

Not here: how a surface words the verdict (the CLI and Discord renderers), the evaluation of answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rag_engine.errors import RagError
from rag_engine.generate.answer_type import answer_type_mismatch
from rag_engine.generate.prompt import ContextBlock
from rag_engine.generate.support import (
    best_evidence,
    check_support,
    grounding_verdict,
    is_refusal,
    question_focus,
    unmentioned,
)
from rag_engine.records import Claim, Hit, Passage, Sentence


@dataclass(frozen=True)
class CheckedAnswer:
    claims: tuple[Claim, ...]
    evidence: Sentence | None
    verdict: str
    refused: bool


def _as_passage(block: ContextBlock) -> Passage:
    first = block.sentences[0] if block.sentences else None
    line = first.line if first else 1
    return Passage(
        id=block.passage_id,
        path=first.path if first else block.source,
        text=block.text,
        line_start=line,
        line_end=line + block.text.count("\n"),
    )


def _block_text(blocks: Sequence[ContextBlock], passage_id: int) -> str:
    return "\n".join(block.text for block in blocks if block.passage_id == passage_id)


def whole_documents(hits: Sequence[Hit], stored: Callable[[str], Iterable[Passage]]) -> dict[int, str]:
    """Each hit's whole document (every passage of its file, in order), by passage id: what the support check
    looks in for the names a question asks about (a passage need not repeat its document's subject).
    `stored(domain)` gives a domain's passages; each searched domain's are walked once, whatever the number of
    hits. A domain that cannot be read (a `RagError`) leaves its hits' own text."""
    wanted: dict[str, set[str]] = {}
    for hit in hits:
        wanted.setdefault(hit.domain, set()).add(hit.passage.path)
    parts: dict[tuple[str, str], list[Passage]] = {}
    for domain, paths in wanted.items():
        try:
            passages = stored(domain) if domain else ()
        except RagError:
            passages = ()
        for passage in passages:
            if passage.path in paths:
                parts.setdefault((domain, passage.path), []).append(passage)
    documents: dict[int, str] = {}
    for hit in hits:
        found = sorted(parts.get((hit.domain, hit.passage.path), ()), key=lambda p: p.line_start)
        documents[hit.passage.id] = "\n".join(p.text for p in found) or hit.passage.text
    return documents


def check_answer(
    answer: str, question: str, blocks: Sequence[ContextBlock], passages: Mapping[int, str] | None = None
) -> CheckedAnswer:
    """The support check of `answer` against `blocks`; a refusal ("the documents do not say") has no claims.

    Besides the answer's own numbers and names, the names the question asks about must be mentioned by the
    documents the answer came from: the evidence sentence's and those holding its supported claims
    (`passages`: passage id → its whole document's text; the block's text when absent). A name they do not
    mention becomes an unsupported claim of kind "topic", and the answer is "unsupported": a number that is
    in the sources but about something else is not an answer. Likewise an answer whose numbers are all of
    another kind than the question asks for (`answer_type.py`) gets an unsupported claim of kind "asked"."""
    refused = is_refusal(answer)
    if refused:
        return CheckedAnswer((), None, grounding_verdict((), None, True), True)
    claims = list(check_support(answer, question, [_as_passage(block) for block in blocks]))
    sentences = [sentence for block in blocks for sentence in block.sentences]
    evidence = best_evidence(answer, question, sentences)
    # Where the answer came from: the evidence sentence's document and those of its supported claims (a
    # two-document answer takes one fact from each, and each document names its own subject).
    sources = {claim.passage_id for claim in claims if claim.supported and claim.passage_id is not None}
    if evidence is not None:
        sources.add(evidence.passage_id)
    texts = {pid: (passages or {}).get(pid) or _block_text(blocks, pid) for pid in sources}
    around = "\n".join(dict.fromkeys(texts.values())) if texts else "\n".join(block.text for block in blocks)
    missing = unmentioned(question_focus(question), around)
    claims += [Claim(name, "topic", False) for name in missing]
    # An answer of another kind than the one asked for (a pressure for "how many minutes") answers another
    # question, however well its numbers are sourced.
    mismatch = answer_type_mismatch(question, answer)
    if mismatch is not None:
        claims.append(Claim(mismatch.describe(), "asked", False))
    verdict = "unsupported" if missing or mismatch else grounding_verdict(claims, evidence, False)
    return CheckedAnswer(tuple(claims), evidence, verdict, False)
