"""Evidence selection: the sentences of the retrieved passages nearest to the question, instead of whole passages.

A small model given four 800-character passages picks the wrong figure among the many it sees (context
dilution). Here every retrieved passage is split into sentences, each sentence is scored against the question
(cosine similarity of its embedding to the question's, plus the share of the question's content words it
contains, plus a small bonus when the sentence holds the kind of thing the question asks for: a number for
"how many / when / what temperature", a name for "who"), and the best `max_sentences` are kept with
`neighbours` sentences on each side (a sentence often names its subject in the one before). A sentence is
embedded with its document's name in front ("who 2021 air quality guidelines: PM2.5: annual mean 5"): alone,
"annual mean 5" does not say what it is about. Overlapping picks from one passage merge into one excerpt; excerpts are
ordered best first and cut to `max_context_tokens` by the prompt builder.

Not here: splitting (`sentences.py`), the prompt text (`prompt.py`), the check of the answer (`support.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np

from rag_engine.config import EvidenceConfig
from rag_engine.generate.sentences import split_sentences
from rag_engine.records import Hit, Sentence
from rag_engine.seams import Embedder

_WORD = re.compile(r"[^\W_]+(?:[.,][0-9]+)*", re.UNICODE)
# Words that say nothing about which sentence answers: question words and the commonest function words.
_STOP = frozenset(
    """a an the and or but of in on at to for from by with as is are was were be been being it its this that
    these those which who whom whose what when where why how than then there their they he she his her we you
    i not no do does did has have had will would can could may might should about into over under after before
    much many long far often does did any some each per most more one""".split()  # noqa: SIM905
)


# Questions that ask for a number (a count, an amount, a date, a measure) or for a name.
_ASKS_NUMBER = re.compile(
    r"\b(how (many|much|long|far|tall|high|hot|cold|big|old|heavy|large|fast|often|deep|wide)"
    r"|what (year|date|day|month|temperature|level|percentage|percent|age|concentration|size|speed|number|share)"
    r"|when|in what year|which year|at what|up to what|to what)\b",
    re.IGNORECASE,
)
_ASKS_NAME = re.compile(r"\b(who|whom|whose|which (person|country|city|president|company|scientist|doctor))\b", re.I)
_DIGIT = re.compile(r"\d")
# A capitalised word that does not open the sentence.
_INNER_NAME = re.compile(r"(?<=[^.!?\s] )[A-Z][a-z]+")


def answer_type_bonus(question: str, sentence: str, bonus: float) -> float:
    """`bonus` when the sentence holds what the question's form asks for (a number; a name)."""
    if _ASKS_NUMBER.search(question) and _DIGIT.search(sentence):
        return bonus
    if _ASKS_NAME.search(question) and _INNER_NAME.search(sentence):
        return bonus
    return 0.0


def document_label(path: str) -> str:
    """A file's name as words: "air-quality/who-2021-guidelines.md" → "who 2021 guidelines"."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[-_]+", " ", stem).strip()


def content_words(text: str) -> set[str]:
    """Lower-cased words of `text` without function words (numbers kept: they are often the whole point)."""
    return {word.lower() for word in _WORD.findall(text)} - _STOP


def _starts_line(before: Sentence, sentence: Sentence) -> bool:
    """Whether `sentence` began a new line of the document (a heading, a list item, a new paragraph)."""
    return sentence.line > before.line


@dataclass(frozen=True)
class Excerpt:
    """Consecutive sentences of one passage that go into the prompt together, and the hit they came from."""

    hit: Hit
    sentences: tuple[Sentence, ...]
    score: float

    @property
    def text(self) -> str:
        """The sentences as the document laid them out: on one line when they shared one, else one line each
        (a list's items stay items: "PM2.5: annual mean 5" and "PM10: annual mean 15" must not run together)."""
        parts: list[str] = []
        for before, sentence in zip((None, *self.sentences), self.sentences, strict=False):
            if before is not None:
                parts.append(" " if sentence.line == before.line or not _starts_line(before, sentence) else "\n")
            parts.append(sentence.text)
        return "".join(parts)


def score_sentences(
    question: str, query_vector: np.ndarray, sentences: Sequence[Sentence], embedder: Embedder, config: EvidenceConfig
) -> list[float]:
    """Each sentence's relevance to the question: cosine similarity of "document label: sentence" to the
    question + `word_weight` × the share of the question's content words the sentence contains + the
    answer-type bonus."""
    if not sentences:
        return []
    vectors = embedder.embed([f"{document_label(sentence.path)}: {sentence.text}" for sentence in sentences])
    similarity = vectors @ np.asarray(query_vector, dtype=np.float32)
    asked = content_words(question)
    scores = []
    for sentence, cosine in zip(sentences, similarity, strict=True):
        overlap = len(asked & content_words(sentence.text)) / len(asked) if asked else 0.0
        bonus = answer_type_bonus(question, sentence.text, config.type_bonus)
        scores.append(float(cosine) + config.word_weight * overlap + bonus)
    return scores


def select_evidence(
    question: str,
    query_vector: np.ndarray,
    hits: Sequence[Hit],
    embedder: Embedder,
    config: EvidenceConfig,
) -> list[Excerpt]:
    """The excerpts for the prompt, best first: the best sentences of `hits` with their neighbours."""
    per_hit = [split_sentences(hit.passage, hit.domain) for hit in hits]
    flat = [(h, s) for h, sentences in enumerate(per_hit) for s in range(len(sentences))]
    scores = score_sentences(question, query_vector, [per_hit[h][s] for h, s in flat], embedder, config)
    ranked = sorted(range(len(flat)), key=lambda i: (-scores[i], i))
    chosen: dict[int, set[int]] = {}
    best_of: dict[tuple[int, int], float] = {}
    seen_texts: set[str] = set()
    picked = 0
    for i in ranked:
        if picked >= config.max_sentences:
            break
        h, s = flat[i]
        key = per_hit[h][s].text.strip().lower()
        if key in seen_texts:  # the overlap between neighbouring passages repeats sentences
            continue
        seen_texts.add(key)
        picked += 1
        window = range(max(0, s - config.neighbours), min(len(per_hit[h]), s + config.neighbours + 1))
        chosen.setdefault(h, set()).update(window)
        best_of[(h, s)] = scores[i]
    excerpts = []
    for h, indexes in chosen.items():
        run: list[int] = []
        for s in sorted(indexes):
            if run and s != run[-1] + 1:
                excerpts.append(_excerpt(hits[h], per_hit[h], run, best_of, h))
                run = []
            run.append(s)
        if run:
            excerpts.append(_excerpt(hits[h], per_hit[h], run, best_of, h))
    excerpts.sort(key=lambda excerpt: -excerpt.score)
    return _without_repeats(excerpts)


def _excerpt(
    hit: Hit, sentences: Sequence[Sentence], run: Sequence[int], best_of: dict[tuple[int, int], float], h: int
) -> Excerpt:
    score = max((best_of[(h, s)] for s in run if (h, s) in best_of), default=-1.0)
    return Excerpt(hit, tuple(sentences[s] for s in run), score)


def _without_repeats(excerpts: Sequence[Excerpt]) -> list[Excerpt]:
    """Drop sentences an earlier (better) excerpt already carries: overlapping passages share sentences."""
    seen: set[str] = set()
    kept = []
    for excerpt in excerpts:
        fresh = tuple(s for s in excerpt.sentences if s.text.strip().lower() not in seen)
        seen.update(s.text.strip().lower() for s in fresh)
        if fresh:
            kept.append(Excerpt(excerpt.hit, fresh, excerpt.score))
    return kept


def merge_excerpts(rounds: Sequence[Sequence[Excerpt]]) -> list[Excerpt]:
    """The excerpts of several retrieval rounds (each best first) taken in turn by rank, without repeated
    sentences: each round's scores are against its own query, so they do not compare across rounds, and the
    prompt keeps what fits from the front."""
    turns = [excerpt for tier in zip_longest(*rounds) for excerpt in tier if excerpt is not None]
    return _without_repeats(turns)
