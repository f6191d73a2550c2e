"""Retrieval quality of the shipped domains: hit@k and MRR against each domain's `questions.jsonl`.

Every domain folder may hold a `questions.jsonl` (`{"question", "source", "answer"}` per line; `source` is the
file, relative to the domain folder, that answers it). For each question the domain is searched once, `depth`
passages deep (10 by default), and two numbers come out:

- hit@k: the expected file is among the files of the top k passages (what the prompt would see);
- MRR: the mean of 1 / rank of the first passage from the expected file in the depth-long list (0 if absent).

Ranks are passage ranks (1 = nearest), as `Hit.rank`. Only retrieval runs: no language model is loaded, so a
report over the four shipped domains takes a second or two. `evaluate_domain` is what both the terminal
(`ragscope eval domains`) and the bot (`/eval`) use. The questions file's format is read here too, for
`answers.py` (which scores the `key`, `kind` and two-document rows this module leaves out).

Not here: answer quality (`answers.py`; `qa.py` for SQuAD), the terminal command's options, progress bars and
table (`ragscope/eval_domains.py`), Discord rendering (`bot/cogs/eval.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, QuestionsFileError
from rag_engine.ingest.incremental import Progress

QUESTIONS_FILE = "questions.jsonl"
# How deep each question is searched for MRR: deep enough that a near miss still counts for something.
MRR_DEPTH = 10

QUESTION_KINDS = ("single", "two-doc", "unanswerable", "multihop")
# Each domain's multi-hop questions (kind "multihop": two facts from two files, the second file found through the
# first), kept apart from questions.jsonl: `ragscope eval answers --questions multihop` scores them.
MULTIHOP_FILE = "multihop.jsonl"


@dataclass(frozen=True)
class DomainQuestion:
    """One line of questions.jsonl: the question, the file(s) that answer it (none when `kind` is
    "unanswerable"), the gold answer, and `key`: the tokens a right answer must contain."""

    question: str
    source: str
    answer: str = ""
    sources: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    kind: str = "single"

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


@dataclass(frozen=True)
class QuestionResult:
    """How retrieval did on one question: the first rank of the expected file, and what the top k held."""

    question: str
    expected: str
    # Files of the top-k passages, nearest first, each once: what a miss shows as "got".
    got: tuple[str, ...]
    # 1-based passage rank of the first passage from the expected file within the depth; None if absent.
    rank: int | None

    @property
    def hit(self) -> bool:
        return self.expected in self.got

    @property
    def reciprocal_rank(self) -> float:
        return 1.0 / self.rank if self.rank else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "expected": self.expected, "got": list(self.got), "rank": self.rank}


@dataclass(frozen=True)
class DomainReport:
    """hit@k and MRR of one domain's questions (both 0.0 when it has none)."""

    domain: str
    k: int
    depth: int
    results: tuple[QuestionResult, ...]
    # The retrieval mode that ranked the passages ("dense", "bm25", "hybrid").
    mode: str = "dense"

    @property
    def questions(self) -> int:
        return len(self.results)

    @property
    def hits(self) -> int:
        return sum(result.hit for result in self.results)

    @property
    def hit_at_k(self) -> float:
        return self.hits / len(self.results) if self.results else 0.0

    @property
    def mrr(self) -> float:
        return sum(r.reciprocal_rank for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def misses(self) -> tuple[QuestionResult, ...]:
        return tuple(result for result in self.results if not result.hit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "questions": self.questions,
            "hit@k": self.hit_at_k,
            "mrr": self.mrr,
            "k": self.k,
            "depth": self.depth,
            "mode": self.mode,
            "misses": [miss.to_dict() for miss in self.misses],
        }


def overall(reports: Sequence[DomainReport]) -> dict[str, Any]:
    """Every question of every report counted once (a domain with more questions weighs more)."""
    results = [result for report in reports for result in report.results]
    count = len(results)
    return {
        "questions": count,
        "hit@k": sum(r.hit for r in results) / count if count else 0.0,
        "mrr": sum(r.reciprocal_rank for r in results) / count if count else 0.0,
    }


# -- questions ------------------------------------------------------------------------------------------------
def questions_path(engine: Engine, domain: str) -> Path:
    return engine.domain_folder(domain) / QUESTIONS_FILE


def evaluated_domains(engine: Engine) -> list[str]:
    """The domains that have a questions.jsonl, in name order."""
    return [name for name in engine.domains() if questions_path(engine, name).is_file()]


def chosen_domains(engine: Engine, domain: str | None) -> list[str]:
    """`domain` (checked), or every domain with a questions.jsonl; `QuestionsFileError` when that is none."""
    names = [engine.check_domain(domain)] if domain else evaluated_domains(engine)
    if not names:
        raise QuestionsFileError(f"no domain of {engine.folder} has a {QUESTIONS_FILE}")
    return names


def load_questions(path: Path) -> list[DomainQuestion]:
    """Parse a questions.jsonl; blank lines are skipped, anything else malformed is an error naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QuestionsFileError(f"no {QUESTIONS_FILE} in {path.parent}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsFileError(f"cannot read {path}: {exc}") from exc
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionsFileError(f"{path}:{number} is not JSON: {exc.msg}") from exc
        if not isinstance(raw, dict):
            raise QuestionsFileError(f"{path}:{number} must be an object with question and source")
        questions.append(_question(raw, f"{path}:{number}"))
    return questions


def _question(raw: dict[str, Any], where: str) -> DomainQuestion:
    question, source, answer = raw.get("question"), raw.get("source"), raw.get("answer", "")
    kind, key = raw.get("kind", "single"), raw.get("key", [])
    if kind not in QUESTION_KINDS:
        raise QuestionsFileError(f"{where}: kind must be one of {', '.join(QUESTION_KINDS)}, not {kind!r}")
    if not isinstance(question, str) or not question.strip():
        raise QuestionsFileError(f"{where} needs a non-empty string question")
    if not isinstance(key, list) or not all(isinstance(token, str) and token.strip() for token in key):
        raise QuestionsFileError(f"{where}: key must be a list of non-empty strings")
    sources: tuple[str, ...]
    if kind == "unanswerable":
        sources = ()
    elif isinstance(source, str) and source:
        sources = (source,)
    elif isinstance(source, list) and source and all(isinstance(item, str) and item for item in source):
        sources = tuple(source)
    else:
        raise QuestionsFileError(f"{where} needs a source: a file name, or a list of them")
    return DomainQuestion(
        question.strip(),
        sources[0] if sources else "",
        answer if isinstance(answer, str) else str(answer),
        sources,
        tuple(token.strip() for token in key),
        kind,
    )


# -- evaluation -----------------------------------------------------------------------------------------------
def evaluate_domain(
    engine: Engine,
    domain: str,
    k: int | None = None,
    depth: int = MRR_DEPTH,
    progress: Progress | None = None,
    mode: str | None = None,
) -> DomainReport:
    """Search the domain for each of its questions; `k` defaults to `retrieval.top_k`, `depth` is at least k,
    `mode` to `retrieval.mode`.

    Blocking (embeds every question): call it from a worker thread in async code.
    """
    domain = engine.check_domain(domain)
    top_k = engine.config.retrieval.top_k if k is None else k
    if top_k < 1:
        raise QuestionError("k must be at least 1")
    depth = max(depth, top_k)
    mode = mode or engine.config.retrieval.mode
    # Retrieval is scored on questions that one file answers; two-document and unanswerable questions are for
    # `eval answers`.
    questions = [item for item in load_questions(questions_path(engine, domain)) if item.kind == "single"]
    # With plain kNN the top k are the first k of the deeper list; with MMR (mmr_lambda < 1) the choice
    # depends on k, so the top k are asked for separately to score what a real query would see.
    prefix_consistent = engine.config.retrieval.mmr_lambda >= 1.0
    results = []
    for done, item in enumerate(questions, start=1):
        deep = engine.retrieve(item.question, domain, depth, mode)
        top = deep[:top_k] if prefix_consistent else engine.retrieve(item.question, domain, top_k, mode)
        rank = next((hit.rank for hit in deep if hit.passage.path == item.source), None)
        got = tuple(dict.fromkeys(hit.passage.path for hit in top))
        results.append(QuestionResult(item.question, item.source, got, rank))
        if progress:
            progress(done, len(questions))
    return DomainReport(domain, top_k, depth, tuple(results), mode)
