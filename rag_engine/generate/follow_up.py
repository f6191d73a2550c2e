"""The second hop's query: after a first retrieval round, what must still be looked up to answer the question.

A multi-hop question ("Which railroad was completed in the year the Suez Canal opened?") needs a fact that
the first round finds (1869) to find the document that answers it (the railroad's). The generator is asked, in
a short separate generation with its own prompt, which name, place, year or number in the first round's best
excerpts must be looked up next: the bridging entity. Asked for a whole search query instead, the 0.5B default
model mostly repeats the question; asked for the entity, it names one. Its reply is cleaned (first line, no
"Query:" label, no quotes) and, when it adds something, the second round searches with the question followed by
it (the question keeps the search on topic, the entity leads to the other document; the first round's passages
are left out of the second, so it cannot simply find them again). A reply that is empty, a refusal, or only the
question's own words again is replaced by the fallback: the question followed by the names and numbers of the
first round's best excerpt that the question does not already hold (the bridge is usually among them).

Not here: the searches and how the rounds' passages are merged (`Engine.answer`, `search/rounds.py`), the
answer's prompt (`prompt.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag_engine.generate.evidence import content_words
from rag_engine.generate.generation import Generator
from rag_engine.generate.support import is_refusal

FOLLOW_UP_SYSTEM = "You extract facts from passages for a search engine."
FOLLOW_UP_TEMPLATE = (
    "Passages:\n{context}\n\n"
    'To answer "{question}", which name, place, year or number in these passages must be looked up next? '
    "Reply with it only."
)
# The first round's best excerpts shown to the model: enough to hold the bridge, short enough for a small model.
MAX_CONTEXTS = 3
# A search query, not an essay: a longer reply is cut here.
MAX_QUERY_CHARS = 200
# How many of the first round's names and numbers the fallback adds to the question.
MAX_FALLBACK_TERMS = 8

_LABEL = re.compile(r"^\s*(?:[-*•\d.)]+\s*)?(?:(?:search\s+)?query|search|answer)\s*:\s*", re.IGNORECASE)
# Numbers (years, dates, amounts) and capitalised words: what a bridge between two documents usually is.
_TERM = re.compile(r"\b\d[\d.,]*\b|\b[A-Z][\w'’-]*[\w]\b")


@dataclass(frozen=True)
class FollowUp:
    """The second round's query, whether the model's or the fallback's, and what the model said."""

    query: str
    origin: str  # "model" or "fallback" (`records.ROUND_ORIGINS`)
    said: str


def follow_up_prompt(question: str, contexts: Sequence[str], generator: Generator, budget_tokens: int) -> str:
    """The follow-up prompt with as many of `contexts` (best first) as fit in `budget_tokens`."""
    shown = list(contexts[:MAX_CONTEXTS])
    for count in range(len(shown), -1, -1):
        context = "\n".join(f"[{rank}] {' '.join(text.split())}" for rank, text in enumerate(shown[:count], 1))
        user = FOLLOW_UP_TEMPLATE.format(question=question, context=context or "(nothing)")
        text = generator.format_chat(FOLLOW_UP_SYSTEM, user)
        if generator.count_tokens(text) <= budget_tokens:
            return text
    return ""


def clean_follow_up(said: str) -> str:
    """The model's reply as a query: its first non-empty line, without a "Query:" label, quotes or a final dot."""
    line = next((line for line in said.splitlines() if line.strip()), "")
    return _LABEL.sub("", line).strip(" \t\"'“”‘’`.?!")[:MAX_QUERY_CHARS].strip()


def adds_something(query: str, question: str) -> bool:
    """Whether `query` can lead somewhere the question alone did not: not a refusal, and a word of its own."""
    if not query or is_refusal(query):
        return False
    return bool(content_words(query) - content_words(question))


def bridge_terms(question: str, contexts: Sequence[str]) -> list[str]:
    """The names and numbers of the best context (`contexts[0]`) that the question does not hold, in order."""
    if not contexts:
        return []
    asked = {word.lower() for word in re.findall(r"\w+", question)}
    terms: dict[str, None] = {}
    for match in _TERM.finditer(contexts[0]):
        term = match.group(0).rstrip(".,")
        if term.lower() not in asked and content_words(term):
            terms.setdefault(term, None)
    return list(terms)[:MAX_FALLBACK_TERMS]


def fallback_query(question: str, contexts: Sequence[str]) -> str:
    """The question followed by the first round's bridging candidates (its best excerpt's names and numbers)."""
    return " ".join([question, *bridge_terms(question, contexts)])


def follow_up_query(
    question: str, contexts: Sequence[str], generator: Generator, max_tokens: int, budget_tokens: int
) -> FollowUp:
    """Ask the generator what is still missing (at most `max_tokens`): the question + its reply, or the
    fallback when its reply is useless or the prompt does not fit in `budget_tokens`."""
    prompt = follow_up_prompt(question, contexts, generator, budget_tokens)
    said = "".join(generator.stream(prompt, max_tokens, "\n".join(contexts[:MAX_CONTEXTS]))) if prompt else ""
    bridge = clean_follow_up(said)
    if adds_something(bridge, question):
        return FollowUp(f"{question} {bridge}", "model", said.strip())
    return FollowUp(fallback_query(question, contexts), "fallback", said.strip())
