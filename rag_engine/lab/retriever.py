"""Lab experiment "retriever", a bad retriever: the question's passages by the real embedder against a
deliberately weak one of the same dimension, and hit@k of both on the domain's own questions.

The weak embedder (`WordHashEmbedder`) knows no meaning: each word (lowercased, stop words and all, no
stemming) is hashed with BLAKE2b into one of `dimension` buckets with a sign, and the counts are normalised to
unit length. Two texts are near only when they share words, and common words weigh as much as rare ones. The
domain is re-embedded with it into an in-memory index (`spaces.py`); both retrievers then search densely (the
retrieval mode would mix in BM25, which is not what is compared) and the model answers from each list
(`Engine.answer_from`). hit@k: a question of `questions.jsonl` that names its file(s) (unanswerable ones are
left out) is a hit when any of its files is among the files of the top k passages. Not here: rendering.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag_engine.config import LabConfig
from rag_engine.engine import Engine
from rag_engine.errors import QuestionsFileError
from rag_engine.evaluation.domains import QUESTIONS_FILE, load_questions, questions_path
from rag_engine.explain.canvas import cut, new_figure, png
from rag_engine.lab.figures import grouped_bars, text_panel, titled
from rag_engine.lab.spaces import memory_space, stored_vectors
from rag_engine.records import Query
from rag_engine.seams import Vectors
from rag_engine.search.retrieval import SearchSpace, search

ANSWER_CHARS = 160
WORDS = re.compile(r"\w+")


class WordHashEmbedder:
    """A deliberately weak `Embedder`: signed word hashing into `dimension` buckets, unit length (deterministic:
    BLAKE2b, not Python's salted `hash`)."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.name = f"word-hashing-{dimension}"

    def embed(self, texts: Sequence[str]) -> Vectors:
        rows = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in WORDS.findall(text.lower()):
                value = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                rows[row, value % self.dimension] += 1.0 if (value >> 32) & 1 else -1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        # An empty text (no words) stays the zero vector rather than dividing by zero.
        return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class Retrieved:
    """What one embedder retrieved for the question and what the model answered from it."""

    embedder: str
    # (file, span, distance in that embedder's space) of each passage, best first.
    passages: tuple[tuple[str, str, float], ...]
    answer: str
    grounding: str
    # {k: (hits, questions)} on the domain's questions.
    hits_at: dict[int, tuple[int, int]]

    def hit_rate(self, k: int) -> float:
        hits, questions = self.hits_at[k]
        return hits / questions if questions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "passages": [{"path": p, "span": s, "distance": round(d, 6)} for p, s, d in self.passages],
            "answer": self.answer,
            "grounding": self.grounding,
            "hit_at_k": {
                str(k): {"hits": h, "questions": n, "rate": round(h / n, 4) if n else 0.0}
                for k, (h, n) in self.hits_at.items()
            },
        }


@dataclass(frozen=True)
class RetrieverReport:
    question: str
    domain: str
    k: int
    real: Retrieved
    weak: Retrieved
    # Why hit@k could not be measured (no questions file), else empty.
    questions_note: str = ""
    experiment: str = "retriever"

    @property
    def explanation(self) -> str:
        return (
            "The same question was answered twice: once from the passages the real embedding model found, once "
            "from those a weak word-hashing embedder found (it matches words, not meaning). hit@k counts how "
            "often each one brings a right file into the top k on this domain's test questions: garbage context "
            "in, garbage answer out."
        )

    def lines(self) -> list[str]:
        lines = [f"A bad retriever in {self.domain}: top {self.k} passages by each embedder (dense search)"]
        for result in (self.real, self.weak):
            rates = ", ".join(f"hit@{k} {result.hit_rate(k):.0%} ({h}/{n})" for k, (h, n) in result.hits_at.items())
            lines.append(f"{result.embedder}: {rates or self.questions_note}")
            lines.extend(f"  {path} {span} d={distance:.3f}" for path, span, distance in result.passages)
            lines.append(f"  answer: {cut(result.answer or '(no answer)', ANSWER_CHARS)}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "k": self.k,
            "real": self.real.to_dict(),
            "weak": self.weak.to_dict(),
            "questions_note": self.questions_note,
        }

    def png(self) -> bytes:
        figure, _ = new_figure()
        titled(
            figure,
            "A bad retriever: the real embedder against word hashing",
            f"{cut(self.question, 100)}\nhit@k on the domain's questions, and the top {self.k} passages of each",
        )
        chart = figure.add_axes((0.08, 0.52, 0.88, 0.31))
        ks = list(self.real.hits_at)
        grouped_bars(
            chart,
            [f"hit@{k}" for k in ks],
            {r.embedder: [r.hit_rate(k) for k in ks] for r in (self.real, self.weak)},
            "{:.0%}",
        )
        chart.set_ylim(0, 1.3)  # rates: room above 100 % for the values and the legend
        chart.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
        chart.set_yticklabels(["0%", "25%", "50%", "75%", "100%"])
        if not ks:
            chart.text(0.5, 0.5, self.questions_note, ha="center", transform=chart.transAxes)
        for left, result in ((0.02, self.real), (0.51, self.weak)):
            rows = [f"{path} {span} d={distance:.2f}" for path, span, distance in result.passages]
            rows.append(f"→ {result.answer or '(no answer)'}")
            text_panel(figure, (left, 0.02, 0.47, 0.38), result.embedder, rows)
        return png(figure)


def run_retriever(engine: Engine, query: Query, lab: LabConfig) -> RetrieverReport:
    """`query` answered from the real embedder's top k and the weak one's, with hit@1 and hit@k of both."""
    domain = query.domain or query.domains[0]
    real_space = engine.snapshot(domain).space
    embedder = engine.embedder()
    weak = WordHashEmbedder(embedder.dimension)
    passages, _ = stored_vectors(real_space)
    weak_space = memory_space(domain, passages, weak.embed([p.text for p in passages.values()]), engine.config)
    try:
        questions = [item for item in load_questions(questions_path(engine, domain)) if item.answerable]
        note = "" if questions else f"{QUESTIONS_FILE} has no answerable question"
    except QuestionsFileError as exc:
        questions, note = [], str(exc)
    ks = sorted({1, query.k})
    texts = [item.question for item in questions]
    results = []
    for name, model, space in ((embedder.name, embedder, real_space), (weak.name, weak, weak_space)):
        hits = search(model.embed([query.question])[0], [space], query.k)
        answer = engine.answer_from(query.question, hits, domain)
        found = _top_files(model.embed(texts), space, max(ks)) if texts else []
        hits_at = (
            {
                k: (
                    sum(bool(set(item.sources) & set(top[:k])) for item, top in zip(questions, found, strict=True)),
                    len(questions),
                )
                for k in ks
            }
            if questions
            else {}
        )
        passages_shown = tuple((h.passage.path, h.passage.span, h.distance) for h in hits)
        results.append(Retrieved(name, passages_shown, answer.text, answer.grounding, hits_at))
    return RetrieverReport(query.question, domain, query.k, results[0], results[1], note)


def _top_files(vectors: Vectors, space: SearchSpace, k: int) -> list[list[str]]:
    """For each question vector, the files of its top k passages, passage by passage (a file may repeat, so
    `top[:j]` is the files of the top j passages)."""
    return [[hit.passage.path for hit in search(vector, [space], k)] for vector in vectors]
