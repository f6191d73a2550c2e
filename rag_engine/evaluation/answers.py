"""Answer quality of the shipped domains: is the answer a user reads right, and when it is not, why not.

Each domain's `questions.jsonl` row carries a `key`: the tokens a right answer must contain (numbers exactly,
else a distinctive name), and a `kind`: "single" (one file answers it), "two-doc" (one fact from each of two
files) or "unanswerable" (on-topic, but no document holds the answer: the right answer is a refusal). A domain's
`multihop.jsonl` holds "multihop" rows: two facts from two files, the second file found through the first; they
are asked with one or two retrieval rounds (`hops`), and "sources retrieved" counts the questions whose every
gold file was among the retrieved passages (of either round).

Three columns per question:
- **RAG**: the engine's answer, as a user gets it (retrieval, threshold, evidence selection, support check);
- **no RAG**: the model's weights alone;
- **oracle**: the gold file's passage that holds the answer (the one with most of the key; each gold file's, for
  two-document questions) handed to the model as the only context: what generation does when retrieval is
  perfect. RAG < oracle means retrieval lost it;
  oracle wrong means the model cannot read it.

Right = every key occurs in the answer as whole tokens (case-insensitive; "1,000" = "1000", "three" = "3"), and
the answer was
not refused or flagged as unsupported; for unanswerable questions right = refused (the threshold, the model's
"the documents do not say", or an answer whose claims the sources do not support). A wrong RAG answer gets a
reason: `not retrieved` (a gold file is not among the top k), `below threshold` (retrieved, but no passage was
close enough to answer), `not in prompt` (retrieved, but the key never reached the prompt), `refused` (the key
was in the prompt, the answer refused or was flagged), `not used` (the key was in the prompt, the answer says
something else), `answered` (an unanswerable question got an answer).

Not here: retrieval-only metrics (`domains.py`), SQuAD (`qa.py`), the terminal command's options, progress
bars and table (`ragscope/eval_answers.py`).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag_engine.engine import Engine
from rag_engine.evaluation.domains import DomainQuestion
from rag_engine.generate.spans import NUMBER_WORDS
from rag_engine.generate.support import is_refusal
from rag_engine.ingest.incremental import Progress
from rag_engine.records import Answer, Hit

COLUMNS = ("rag", "norag", "oracle")
_TOKEN = re.compile(r"[^\W_]+(?:[.,][0-9]+)*", re.UNICODE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def tokens(text: str) -> list[str]:
    """Lower-cased word and number tokens; thousands separators dropped ("1,000" = "1000") and the numbers
    zero to twenty written as digits ("three" = "3")."""
    words = (token.lower() for token in _TOKEN.findall(_THOUSANDS.sub("", text)))
    return [NUMBER_WORDS.get(word, word) for word in words]


def contains_key(text: str, key: Sequence[str]) -> bool:
    """Every key (a token, or a phrase of tokens in order) occurs in `text` as whole tokens."""
    words = tokens(text)
    for phrase in key:
        wanted = tokens(phrase)
        if not wanted:
            continue
        width = len(wanted)
        if not any(words[i : i + width] == wanted for i in range(len(words) - width + 1)):
            return False
    return True


def refused(answer: Answer) -> bool:
    """The user was told the documents do not answer this (or that the sources do not support the answer)."""
    if not answer.used_rag:
        return is_refusal(answer.text)
    return not answer.covered or answer.grounding in ("refused", "unsupported")


@dataclass(frozen=True)
class Column:
    """One answer to one question, scored."""

    text: str
    right: bool
    refused: bool
    grounding: str
    seconds: float
    first_token: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "right": self.right,
            "refused": self.refused,
            "grounding": self.grounding,
            "seconds": round(self.seconds, 3),
            "first_token": round(self.first_token, 3) if self.first_token is not None else None,
        }


def score(answer: Answer, item: DomainQuestion) -> Column:
    said_no = refused(answer)
    right = said_no if not item.answerable else (not said_no and contains_key(answer.text, item.key))
    return Column(
        answer.text,
        right,
        said_no,
        answer.grounding,
        answer.timings.get("total", 0.0),
        answer.timings.get("first_token"),
    )


@dataclass(frozen=True)
class AnswerResult:
    domain: str
    item: DomainQuestion
    columns: dict[str, Column]
    # Why the RAG answer is wrong ("" when right).
    why: str
    # The nearest retrieved passage's distance: what a refusal threshold would look at.
    nearest: float | None
    retrieved: tuple[str, ...] = field(default=())
    # A multi-hop RAG answer's rounds: what each searched with, where that came from, the files it found.
    rounds: tuple[dict[str, Any], ...] = field(default=())

    @property
    def sources_retrieved(self) -> bool:
        """Every gold file was among the RAG answer's retrieved passages (of every round)."""
        return set(self.item.sources) <= set(self.retrieved)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "question": self.item.question,
            "kind": self.item.kind,
            "sources": list(self.item.sources),
            "gold": self.item.answer,
            "key": list(self.item.key),
            **{name: column.to_dict() for name, column in self.columns.items()},
            "why": self.why,
            "nearest_distance": self.nearest,
            "retrieved": list(self.retrieved),
            "rounds": list(self.rounds),
        }


def why_wrong(answer: Answer, item: DomainQuestion, column: Column) -> str:
    """The first step of the pipeline that lost the right answer (see the module docstring)."""
    if column.right:
        return ""
    if not item.answerable:
        return "answered"
    retrieved = {hit.passage.path for hit in answer.hits}
    if not set(item.sources) <= retrieved:
        return "not retrieved"
    if not answer.covered:
        return "below threshold"
    context = answer.prompt
    if not contains_key(context, item.key):
        return "not in prompt"
    return "refused" if column.refused else "not used"


def key_share(key: Sequence[str]) -> Callable[[str], float]:
    """How much of `key` a passage holds (the share of its phrases): how the oracle finds the gold passage."""

    def share(text: str) -> float:
        return sum(contains_key(text, [phrase]) for phrase in key) / len(key) if key else 0.0

    return share


def gold_passages(
    engine: Engine,
    question: str,
    domain: str,
    files: Sequence[str],
    holds: Callable[[str], float] | None = None,
) -> list[Hit]:
    """Each gold file's passage for the oracle column: the one holding most of the answer (`holds` scores a
    passage's text), nearest to the question among equals; the nearest one when `holds` is not given."""
    everything = engine.retrieve(question, domain, engine.domain_stats(domain).passages or 1, "dense")
    best: list[Hit] = []
    for name in files:
        candidates = [hit for hit in everything if hit.passage.path == name]  # nearest first
        if candidates:
            score = holds or (lambda _text: 0.0)
            best.append(max(candidates, key=lambda hit: (score(hit.passage.text), -hit.distance)))
    return best


def evaluate_answers(
    engine: Engine,
    domain: str,
    questions: Sequence[DomainQuestion],
    columns: Sequence[str] = COLUMNS,
    progress: Progress | None = None,
    hops: int | None = None,
) -> list[AnswerResult]:
    """Ask every question in the chosen columns, the RAG column with `hops` retrieval rounds (default
    `retrieval.hops`). Blocking and slow: up to three generations per question (four with two hops)."""
    results = []
    for done, item in enumerate(questions, start=1):
        answers: dict[str, Column] = {}
        rag = engine.answer(engine.check(item.question, domain, hops=hops))
        answers["rag"] = score(rag, item)
        if "norag" in columns:
            answers["norag"] = score(engine.answer(item.question, domain, use_rag=False), item)
        if "oracle" in columns and item.answerable:
            passages = gold_passages(engine, item.question, domain, item.sources, key_share(item.key))
            if len(passages) == len(item.sources):
                answers["oracle"] = score(engine.answer_from(item.question, passages, domain), item)
        nearest = min((hit.distance for hit in rag.hits), default=None)
        files = tuple(dict.fromkeys(hit.passage.path for hit in rag.hits))
        rounds = tuple(
            {
                "query": r.query,
                "origin": r.origin,
                "said": r.said,
                "files": list(dict.fromkeys(h.passage.path for h in r.hits)),
            }
            for r in rag.rounds
        )
        why = why_wrong(rag, item, answers["rag"])
        results.append(AnswerResult(domain, item, answers, why, nearest, files, rounds))
        if progress:
            progress(done, len(questions))
    return results


# -- summaries ------------------------------------------------------------------------------------------------
def _rate(results: Sequence[AnswerResult], column: str, answerable: bool | None = None) -> float | None:
    chosen = [
        r.columns[column]
        for r in results
        if column in r.columns and (answerable is None or r.item.answerable == answerable)
    ]
    return sum(c.right for c in chosen) / len(chosen) if chosen else None


def _distances(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "min": round(ordered[0], 4),
        "median": round(statistics.median(ordered), 4),
        "max": round(ordered[-1], 4),
    }


def summarize(results: Sequence[AnswerResult]) -> dict[str, Any]:
    """Right-answer rates per column (answerable questions), refusals of unanswerable ones, the reasons for
    wrong RAG answers, distances of the nearest passage for answerable vs unanswerable, and answer times."""
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    rag_times = [r.columns["rag"].seconds for r in results if r.nearest is not None]
    first = [t for r in results if (t := r.columns["rag"].first_token) is not None]
    kinds = ("single", "two-doc", "multihop")
    by_kind = {kind: _rate([r for r in results if r.item.kind == kind], "rag") for kind in kinds}
    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "rag.right": _rate(results, "rag", True),
        "norag.right": _rate(results, "norag", True),
        "oracle.right": _rate(results, "oracle", True),
        "rag.right.single": by_kind["single"],
        "rag.right.two-doc": by_kind["two-doc"],
        "rag.right.multihop": by_kind["multihop"],
        "sources.retrieved": (sum(r.sources_retrieved for r in answerable) / len(answerable) if answerable else None),
        "unanswerable.refused": _rate(results, "rag", False),
        "answerable.refused": (
            sum(r.columns["rag"].refused for r in answerable) / len(answerable) if answerable else None
        ),
        "why": dict(Counter(r.why for r in results if r.why)),
        "distance.answerable": _distances([r.nearest for r in answerable if r.nearest is not None]),
        "distance.unanswerable": _distances([r.nearest for r in unanswerable if r.nearest is not None]),
        "seconds.p50": round(statistics.median(rag_times), 3) if rag_times else None,
        "first_token.p50": round(statistics.median(first), 3) if first else None,
    }


def report(
    engine: Engine, per_domain: dict[str, list[AnswerResult]], seconds: float, hops: int | None = None
) -> dict[str, Any]:
    """The whole run (`ragscope eval answers --json`): models, settings, a summary per domain and overall, and
    every answer."""
    everything = [r for results in per_domain.values() for r in results]
    config = engine.config
    return {
        "models": engine.models(),
        "settings": {
            "k": config.retrieval.top_k,
            "mode": config.retrieval.mode,
            "max_distance": config.retrieval.max_distance,
            "evidence_sentences": config.evidence.sentences,
            "copy_bias": config.generation.copy_bias,
            "hops": hops if hops is not None else config.retrieval.hops,
        },
        "domains": {name: summarize(results) for name, results in per_domain.items()},
        "overall": summarize(everything),
        "seconds": round(seconds, 1),
        "results": [r.to_dict() for r in everything],
    }
