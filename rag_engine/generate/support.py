"""The support check: an answer's checkable claims looked up in the passages its prompt carried.

The claims are the spans a reader would want to verify: numbers and dates ("35", "1,000", "1970s") and proper
names ("George H. W. Bush", "PM2.5"). A number is supported when a passage holds the same number as a whole
token (thousands separators aside: "5" is not in "35", "2.5" or "1950"); a name when a passage holds its
surname and at least half of its significant words. Words the question already holds are not claims: an
answer that repeats the question proves nothing. Also here: the one sentence that best supports the answer,
whether the answer is a refusal ("the documents do not say"), the verdict, the warning line, and the names a
question asks about that a passage must mention.

Not here: finding the numbers and names in a text (`spans.py`), applying all this to a built prompt
(`verification.py`), how surfaces render it, and any model: the check is lexical on purpose, so it is fast,
deterministic and explainable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag_engine.generate.spans import (
    COMMON_WORDS,
    CONNECTORS,
    Lookup,
    Span,
    bare_words,
    claim_spans,
    is_acronym,
    lower_words,
    name_spans,
    opens_sentence,
    words_of,
)
from rag_engine.records import GROUNDING_VERDICTS, Claim, Passage, Sentence

# Unit names written capitalised that a passage may write as a symbol instead ("°C", "°F", "K").
_UNIT_NAMES = frozenset({"celsius", "fahrenheit", "kelvin", "centigrade", "scoville"})

_REFUSAL = re.compile(
    r"\bi (?:don't|do not) know\b"
    r"|\bnot mentioned\b|\bno mention\b"
    r"|\b(?:does|do|did) not (?:mention|say|specify|state)\b|\b(?:doesn't|don't|didn't) (?:mention|say|specify|state)\b"
    r"|\bnot provided\b|\bno information\b|\bnot enough information\b"
    r"|\bnot in the (?:provided |given )?(?:context|documents?|passages?|sources?|text)\b"
    r"|\b(?:cannot|can not|can't|unable to) answer\b"
    r"|\b(?:is|are|was|were) not specified\b|\bnot stated\b|\bunknown\b",
    re.IGNORECASE,
)


def extract_claims(answer: str, question: str) -> list[tuple[str, str]]:
    """The checkable spans of `answer` as (span, kind), kind "number" or "name", in answer order, once each;
    numbers and names that the question already holds are left out."""
    return [(found.span, found.kind) for found in claim_spans(answer, question)]


def check_support(answer: str, question: str, passages: Sequence[Passage]) -> tuple[Claim, ...]:
    """Every claim of `answer`, supported or not by `passages`; a supported claim names the first passage (in
    the given order) that holds it."""
    indexed = [(passage, Lookup(passage.text)) for passage in passages]
    claims: list[Claim] = []
    for found in claim_spans(answer, question):
        holder = next((passage for passage, lookup in indexed if lookup.holds(found)), None)
        if holder is None:
            claims.append(Claim(found.span, found.kind, False))
        else:
            claims.append(Claim(found.span, found.kind, True, holder.id, holder.path))
    return tuple(claims)


def best_evidence(answer: str, question: str, sentences: Sequence[Sentence]) -> Sentence | None:
    """The sentence that best supports `answer`, or None when no sentence shares anything with it.

    Score: 3 per claim of the answer the sentence holds, plus per content word of the answer the sentence
    holds 1 (0.5 when the question has it too: it is then as much the question's word as the answer's),
    divided by 1 + words/40 so that a long sentence does not win by length alone. Ties go to the earlier one.
    """
    claims = claim_spans(answer, question)
    asked = lower_words(question)
    answered = bare_words(answer)
    weights = {word: 0.5 if word in asked else 1.0 for word in answered if word not in COMMON_WORDS}
    best: Sentence | None = None
    best_score = 0.0
    for sentence in sentences:
        lookup = Lookup(sentence.text)
        score = 3.0 * sum(1 for found in claims if lookup.holds(found))
        score += sum(weight for word, weight in weights.items() if word in lookup.lower)
        score /= 1 + len(words_of(sentence.text)) / 40
        if score > best_score:
            best, best_score = sentence, score
    return best


def is_refusal(answer: str) -> bool:
    """Whether the answer says the context does not answer the question (or is empty)."""
    return not answer.strip() or _REFUSAL.search(answer.replace("’", "'")) is not None


def grounding_verdict(claims: Sequence[Claim], evidence: Sentence | None, refused: bool) -> str:
    """How the answer stands (one of `records.GROUNDING_VERDICTS`): refused; else by its claims (all, none or
    some supported); without claims, by whether an evidence sentence was found."""
    if refused:
        verdict = "refused"
    elif claims:
        supported = sum(1 for claim in claims if claim.supported)
        verdict = "grounded" if supported == len(claims) else "unsupported" if supported == 0 else "partly"
    else:
        verdict = "grounded" if evidence is not None else "unsupported"
    assert verdict in GROUNDING_VERDICTS
    return verdict


def question_focus(question: str) -> list[str]:
    """The names the question asks about ("Los Angeles", "India", "WHO"): an answer taken from passages that
    never mention them most likely answers another question (the London figure for a Los Angeles question).

    Not names here: a single word opening the question ("Roughly how many…", "Up to what…": questions open with
    adverbs and prepositions, rarely with their subject), and unit names ("in degrees Celsius": a passage
    writes "°C")."""
    focus = []
    for found in name_spans(question):
        words = words_of(found.span)
        if len(words) == 1 and not is_acronym(words[0]) and opens_sentence(question, found.start):
            continue
        if all(word.lower() in _UNIT_NAMES for word in words):
            continue
        focus.append(found.span)
    return focus


def unmentioned(focus: Sequence[str], text: str) -> list[str]:
    """The names of `focus` that `text` does not mention: by the same rule as a claim (its last significant
    word and half of them), or by its initials ("World Health Organization" / "WHO", "US" / "United States")."""
    lookup = Lookup(text)
    words = [word for word in words_of(text) if word not in CONNECTORS]
    missing = []
    for name in focus:
        found = Span(0, name, "name", name.lower())
        if lookup.holds(found) or _initials(name) in lookup.exact or _spelled_out(name, words):
            continue
        missing.append(name)
    return missing


def _spelled_out(acronym: str, words: Sequence[str]) -> bool:
    """Whether consecutive capitalised `words` have the acronym's letters as initials ("US": United States)."""
    if not is_acronym(acronym) or not acronym.isalpha():
        return False
    width = len(acronym)
    return any(
        all(word[0].isupper() for word in words[i : i + width])
        and "".join(word[0] for word in words[i : i + width]) == acronym
        for i in range(len(words) - width + 1)
    )


def _initials(name: str) -> str:
    words = [word for word in words_of(name) if word[0].isupper() and word not in CONNECTORS]
    return "".join(word[0] for word in words) if len(words) > 1 else name


def marker(claims: Sequence[Claim]) -> str:
    """The warning under an answer naming its unsupported claims; "" when there are none."""
    missing = [claim.span for claim in claims if not claim.supported]
    return f"⚠ not in the sources: {', '.join(missing)}" if missing else ""
