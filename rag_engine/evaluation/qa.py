"""Answer quality on SQuAD: exact match and token F1 with and without RAG, and retrieval hit@k.

`ragscope eval qa --squad FILE` writes every paragraph of a SQuAD-format file (v1.1: `data[].paragraphs[]
.context / qas[].question / answers[].text`) as one .md file into a knowledge folder (`write_knowledge`), under
one domain named after the file, indexes it like any domain, and asks the questions twice (`evaluate_squad`):
with RAG over that domain, and without RAG (the model's weights alone). Each answer is scored against the gold
answers with the official SQuAD v1.1 evaluation (`normalize_answer`, `exact_match`, `f1_score`: lowercase, drop
ASCII punctuation, drop the articles a/an/the, collapse whitespace; the best score over the gold answers), and
by `contains_answer` (a gold answer said somewhere in the reply; ours, not SQuAD's). Retrieval is scored as
hit@k: the question's own paragraph is among the k sources.

Scores are fractions in 0..1 (the official script prints them times 100). The answers are whatever the
engine produces, unchanged: a verbose sentence around the right words earns partial F1 and no exact match, and
a question whose nearest passage is beyond `retrieval.max_distance` gets no answer (empty text, which scores 0;
the share of covered questions is reported as `rag.covered`).

With `--limit N` the N questions are spread evenly over the file (every article contributes), not the first
N; every paragraph is indexed either way, so retrieval always searches the whole file.

Not here: retrieval-only metrics over the shipped domains (`domains.py`), the terminal command's options,
temporary knowledge folder, progress bars and table (`ragscope/eval_qa.py`).
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rag_engine.engine import Engine
from rag_engine.errors import QuestionError, SquadError
from rag_engine.evaluation.answers import gold_passages
from rag_engine.ingest.incremental import Progress

# -- the official SQuAD v1.1 metrics ----------------------------------------------------------------------------
# These follow evaluate-v1.1.py line for line (the numbers must be comparable with published ones), including
# its quirks: only ASCII punctuation is removed, and an answer that normalises to nothing scores F1 0.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, remove punctuation, remove the articles a/an/the, and collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(gold_answers: str | Sequence[str]) -> Sequence[str]:
    # A lone string is one gold answer, not a sequence of one-character answers.
    golds = [gold_answers] if isinstance(gold_answers, str) else gold_answers
    if not golds:
        raise ValueError("at least one gold answer is needed")
    return golds


def _exact_match_one(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1_one(prediction: str, gold: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold_answers: str | Sequence[str]) -> float:
    """1.0 if the prediction equals any gold answer after `normalize_answer`, else 0.0."""
    return max(_exact_match_one(prediction, gold) for gold in _golds(gold_answers))


def f1_score(prediction: str, gold_answers: str | Sequence[str]) -> float:
    """Token-overlap F1 (bag of normalised words) against the best-matching gold answer."""
    return max(_f1_one(prediction, gold) for gold in _golds(gold_answers))


def contains_answer(prediction: str, gold_answers: str | Sequence[str]) -> float:
    """1.0 if some gold answer, normalised, stands in the normalised prediction as whole consecutive words.

    Not an official SQuAD metric: a chat model answers in sentences, which exact match scores 0 and F1 dilutes
    ("Levi's Stadium" in "It took place at Levi's Stadium in Santa Clara" has F1 0.36); this says whether the
    right words were said at all."""
    said = f" {normalize_answer(prediction)} "
    return float(any(gold and f" {gold} " in said for gold in map(normalize_answer, _golds(gold_answers))))


# -- the SQuAD file ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SquadParagraph:
    title: str
    context: str
    # The .md file the paragraph is written to, relative to the domain folder (what `Hit.passage.path` says).
    path: str


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    paragraph: int  # index into `Squad.paragraphs`


@dataclass(frozen=True)
class Squad:
    name: str
    paragraphs: tuple[SquadParagraph, ...]
    questions: tuple[SquadQuestion, ...]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "untitled"


def domain_name(path: Path) -> str:
    """The domain a SQuAD file is indexed under: its name without .json, safe as a folder name (and not hidden)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).lstrip("._-") or "squad"


def load_squad(path: Path) -> Squad:
    """Read a SQuAD-format file; questions without any answer (SQuAD 2.0's unanswerable ones) are left out."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SquadError(f"SQuAD file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SquadError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SquadError(f"{path} is not JSON: {exc}") from exc
    articles = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(articles, list):
        raise SquadError(f"{path} is not in SQuAD format: no top-level data list")
    paragraphs: list[SquadParagraph] = []
    questions: list[SquadQuestion] = []
    try:
        for a, article in enumerate(articles):
            title = str(article.get("title", f"article-{a}"))
            for p, paragraph in enumerate(article["paragraphs"]):
                context = paragraph["context"]
                if not isinstance(context, str) or not context.strip():
                    raise SquadError(f"{path}: data[{a}].paragraphs[{p}] has no context text")
                number = len(paragraphs)
                paragraphs.append(SquadParagraph(title, context, f"{a:03d}-{_slug(title)}-p{p:03d}.md"))
                for qa in paragraph["qas"]:
                    answers = tuple(str(answer["text"]) for answer in qa.get("answers", ()))
                    if answers and str(qa["question"]).strip():
                        questions.append(SquadQuestion(str(qa.get("id", "")), str(qa["question"]), answers, number))
    except (KeyError, TypeError, AttributeError) as exc:
        raise SquadError(f"{path} is not in SQuAD format (data[].paragraphs[].context/qas[]): {exc!r}") from exc
    if not questions:
        raise SquadError(f"{path} has no answerable questions")
    return Squad(path.name, tuple(paragraphs), tuple(questions))


def write_knowledge(squad: Squad, folder: Path) -> None:
    """Write each paragraph as a .md file into `folder` (a domain folder), leaving files whose text is already
    right untouched so that a stored index of an earlier run stays valid. Refuses a folder holding other
    documents: they would compete with the paragraphs in retrieval and skew hit@k."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {paragraph.path: paragraph.context.strip() + "\n" for paragraph in squad.paragraphs}
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in wanted and not p.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise SquadError(f"{folder} holds files that are not paragraphs of {squad.name} ({shown}); use an empty folder")
    for name, text in wanted.items():
        target = folder / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def spread(total: int, limit: int | None) -> list[int]:
    """`limit` indices out of range(total), evenly spaced from 0 (all of them without a limit)."""
    if limit is None or limit >= total:
        return list(range(total))
    return [i * total // limit for i in range(limit)]


# -- evaluation -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QaResult:
    """One question: both answers, their scores, and whether retrieval found the question's paragraph."""

    question: SquadQuestion
    rag_answer: str
    norag_answer: str
    rag_em: float
    rag_f1: float
    norag_em: float
    norag_f1: float
    rag_contains: float
    norag_contains: float
    hit: bool
    covered: bool
    # The gold paragraph's passage holding the answer as the only context (None when not asked).
    oracle_answer: str | None = None
    oracle_f1: float = 0.0
    oracle_contains: float = 0.0
    rag_seconds: float = 0.0
    # The support check's verdict on the RAG answer ("grounded", "unsupported", …): SQuAD has no unanswerable
    # question, so an answer that holds the gold answer and is flagged measures the check's false alarms.
    rag_grounding: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.question.id,
            "question": self.question.question,
            "gold": list(self.question.answers),
            "rag": self.rag_answer,
            "norag": self.norag_answer,
            "rag.em": self.rag_em,
            "rag.f1": self.rag_f1,
            "norag.em": self.norag_em,
            "norag.f1": self.norag_f1,
            "rag.contains": self.rag_contains,
            "norag.contains": self.norag_contains,
            "hit": self.hit,
            "covered": self.covered,
            "oracle": self.oracle_answer,
            "oracle.f1": self.oracle_f1,
            "oracle.contains": self.oracle_contains,
            "rag.seconds": round(self.rag_seconds, 3),
            "rag.grounding": self.rag_grounding,
        }


@dataclass(frozen=True)
class QaReport:
    squad: str
    domain: str
    k: int
    available: int  # answerable questions in the file
    paragraphs: int
    results: tuple[QaResult, ...]
    seconds: float
    models: dict[str, str]
    oracle: bool = False

    def _mean(self, value: Callable[[QaResult], float]) -> float:
        return sum(value(r) for r in self.results) / len(self.results) if self.results else 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers, under flat keys ("rag.em", "hit@k", …), fractions in 0..1."""
        return {
            "squad": self.squad,
            "domain": self.domain,
            "questions": len(self.results),
            "available_questions": self.available,
            "paragraphs": self.paragraphs,
            "k": self.k,
            "rag.em": self._mean(lambda r: r.rag_em),
            "rag.f1": self._mean(lambda r: r.rag_f1),
            "norag.em": self._mean(lambda r: r.norag_em),
            "norag.f1": self._mean(lambda r: r.norag_f1),
            "rag.contains": self._mean(lambda r: r.rag_contains),
            "norag.contains": self._mean(lambda r: r.norag_contains),
            "oracle.f1": self._mean(lambda r: r.oracle_f1) if self.oracle else None,
            "oracle.contains": self._mean(lambda r: r.oracle_contains) if self.oracle else None,
            "hit@k": self._mean(lambda r: float(r.hit)),
            "rag.flagged": self._mean(lambda r: float(r.rag_grounding == "unsupported")),
            "rag.flagged_right": self._mean(lambda r: float(r.rag_grounding == "unsupported" and r.rag_contains > 0)),
            "rag.covered": self._mean(lambda r: float(r.covered)),
            "rag.seconds.p50": round(statistics.median(r.rag_seconds for r in self.results), 3)
            if self.results
            else None,
            "seconds": round(self.seconds, 2),
            "seconds_per_question": round(self.seconds / len(self.results), 3) if self.results else 0.0,
            "models": self.models,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "results": [result.to_dict() for result in self.results]}


def evaluate_squad(
    engine: Engine,
    squad: Squad,
    domain: str,
    k: int | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    oracle: bool = True,
) -> QaReport:
    """Ask the questions (`spread` over the file up to `limit`) with RAG over `domain` and without RAG.

    `engine` must have `squad`'s paragraphs in `domain` (see `write_knowledge`). Blocking and slow: two
    generations per question.
    """
    top_k = engine.config.retrieval.top_k if k is None else k
    if top_k < 1:
        raise QuestionError("k must be at least 1")
    started = time.perf_counter()
    chosen = [squad.questions[i] for i in spread(len(squad.questions), limit)]
    results = []
    for done, item in enumerate(chosen, start=1):
        rag = engine.answer(item.question, domain, k=top_k)
        norag = engine.answer(item.question, domain, use_rag=False)
        gold_path = squad.paragraphs[item.paragraph].path
        oracle_text: str | None = None
        if oracle:
            passages = gold_passages(
                engine, item.question, domain, [gold_path], partial(contains_answer, gold_answers=item.answers)
            )
            oracle_text = engine.answer_from(item.question, passages, domain).text if passages else ""
        results.append(
            QaResult(
                question=item,
                rag_answer=rag.text,
                norag_answer=norag.text,
                rag_em=exact_match(rag.text, item.answers),
                rag_f1=f1_score(rag.text, item.answers),
                norag_em=exact_match(norag.text, item.answers),
                norag_f1=f1_score(norag.text, item.answers),
                rag_contains=contains_answer(rag.text, item.answers),
                norag_contains=contains_answer(norag.text, item.answers),
                hit=any(hit.passage.path == gold_path for hit in rag.hits),
                covered=rag.covered,
                oracle_answer=oracle_text,
                oracle_f1=f1_score(oracle_text, item.answers) if oracle_text is not None else 0.0,
                oracle_contains=contains_answer(oracle_text, item.answers) if oracle_text is not None else 0.0,
                rag_seconds=rag.timings.get("total", 0.0),
                rag_grounding=rag.grounding,
            )
        )
        if progress:
            progress(done, len(chosen))
    models = engine.models()
    return QaReport(
        squad=squad.name,
        domain=domain,
        k=top_k,
        available=len(squad.questions),
        paragraphs=len(squad.paragraphs),
        results=tuple(results),
        seconds=time.perf_counter() - started,
        models=models,
        oracle=oracle,
    )
