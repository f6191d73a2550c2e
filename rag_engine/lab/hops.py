"""Lab experiment "hops", multi-hop retrieval: the same question answered with one retrieval round and with two.

With two hops the engine asks the model what is still missing after the first round, searches again with that
follow-up query (or the fallback when the model's reply adds nothing) and answers from both rounds
(`Engine.answer`, `generate/follow_up.py`). Both answers here are real runs of that pipeline on the user's
question. When the question is one of the domain's own (its `multihop.jsonl` or `questions.jsonl`), its source
files and key are known: the report then says, for each run, whether every source file was retrieved and
whether the answer holds the key. Not here: rendering for a surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag_engine.config import LabConfig
from rag_engine.engine import Engine
from rag_engine.errors import QuestionsFileError
from rag_engine.evaluation.answers import contains_key, refused
from rag_engine.evaluation.domains import MULTIHOP_FILE, QUESTIONS_FILE, DomainQuestion, load_questions
from rag_engine.explain.canvas import FONT_PT, cut, new_figure, png
from rag_engine.lab.figures import SERIES_COLOURS, text_panel, titled
from rag_engine.records import Answer, Query

ANSWER_CHARS = 160
# Where a retrieved file that is one of the question's sources is drawn, and where any other file is.
SOURCE_COLOUR, OTHER_COLOUR = SERIES_COLOURS[2], "#9c9c9c"


@dataclass(frozen=True)
class HopRound:
    """One retrieval round: the text searched with, where it came from, and its passages (file, span,
    distance to that text, in the prompt) best first."""

    query: str
    origin: str
    passages: tuple[tuple[str, str, float, bool], ...]
    said: str = ""

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for path, _, _, _ in self.passages))

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "origin": self.origin,
            "said": self.said,
            "passages": [
                {"path": p, "span": s, "distance": round(d, 6), "in_prompt": used} for p, s, d, used in self.passages
            ],
        }


@dataclass(frozen=True)
class HopRun:
    """One answer of the comparison: its rounds and what the model said."""

    hops: int
    rounds: tuple[HopRound, ...]
    answer: str
    grounding: str
    # Whether the answer holds the known key (None when the question is not one of the domain's own).
    right: bool | None

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for found in self.rounds for path in found.files))

    def to_dict(self) -> dict[str, Any]:
        return {
            "hops": self.hops,
            "rounds": [found.to_dict() for found in self.rounds],
            "answer": self.answer,
            "grounding": self.grounding,
            "right": self.right,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class HopsReport:
    question: str
    domain: str
    k: int
    one: HopRun
    two: HopRun
    # The question's source files and key when it is one of the domain's own questions, else empty.
    sources: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    experiment: str = "hops"

    def sources_found(self, run: HopRun) -> bool | None:
        """Every source file among the run's retrieved files (None when the sources are not known)."""
        return set(self.sources) <= set(run.files) if self.sources else None

    @property
    def explanation(self) -> str:
        return (
            "The same question was answered twice: once from one search, once from two. For the second search "
            "the model was asked what is still missing after the first (or, when its reply added nothing, the "
            "question was searched again with the names and numbers the first search found), so a fact that "
            "bridges to another document can bring that document in."
        )

    def lines(self) -> list[str]:
        lines = [f"Multi-hop in {self.domain}: top {self.k} passages per search, one search against two"]
        if self.sources:
            lines.append("sources of this question: " + ", ".join(self.sources))
        for run in (self.one, self.two):
            every = self.sources_found(run)
            status = "" if every is None else (" · every source retrieved" if every else " · a source missing")
            right = "" if run.right is None else (" · right" if run.right else " · wrong")
            lines.append(f"{run.hops} hop{'s' if run.hops > 1 else ''}{status}{right}")
            for number, found_round in enumerate(run.rounds, start=1):
                lines.append(f"  search {number} ({found_round.origin}): {cut(found_round.query, 120)}")
                lines.extend(
                    f"    {path} {span} d={distance:.3f}{' (in prompt)' if used else ''}"
                    for path, span, distance, used in found_round.passages
                )
            lines.append(f"  answer: {cut(run.answer or '(no answer)', ANSWER_CHARS)}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "k": self.k,
            "sources": list(self.sources),
            "key": list(self.key),
            "one_hop": self.one.to_dict() | {"sources_retrieved": self.sources_found(self.one)},
            "two_hops": self.two.to_dict() | {"sources_retrieved": self.sources_found(self.two)},
        }

    def png(self) -> bytes:
        """A grid: one row per retrieved file, one column per search (1 hop; 2 hops, search 1 and 2); a dot
        where the search found the file (bigger = better ranked), green for the question's sources."""
        figure, _ = new_figure()
        known = "green: the question's source files" if self.sources else "the question's sources are not known"
        titled(
            figure,
            "Multi-hop: one search against two",
            f"{cut(self.question, 110)}\nfiles retrieved by each search ({known})",
        )
        columns = [("1 hop", self.one.rounds[0])] + [
            (f"2 hops · search {number}", found) for number, found in enumerate(self.two.rounds, start=1)
        ]
        files = list(dict.fromkeys([*self.sources, *self.one.files, *self.two.files]))
        grid = figure.add_axes((0.34, 0.42, 0.62, 0.42))
        for x, (_, found) in enumerate(columns):
            for rank, path in enumerate(found.files, start=1):
                colour = SOURCE_COLOUR if path in self.sources else OTHER_COLOUR
                grid.scatter([x], [files.index(path)], s=260 / rank, color=colour, zorder=3)
                grid.annotate(f"#{rank}", (x, files.index(path)), xytext=(9, -3), textcoords="offset points",
                              fontsize=FONT_PT)  # fmt: skip
        grid.set_xticks(range(len(columns)))
        grid.set_xticklabels([name for name, _ in columns], fontsize=FONT_PT)
        grid.set_yticks(range(len(files)))
        grid.set_yticklabels([cut(path, 44) for path in files], fontsize=FONT_PT)
        for label, path in zip(grid.get_yticklabels(), files, strict=True):
            if path in self.sources:
                label.set_color(SOURCE_COLOUR)
                label.set_fontweight("bold")
        grid.set_xlim(-0.5, len(columns) - 0.5)
        grid.set_ylim(len(files) - 0.5, -0.5)
        grid.grid(True, color="#eeeeee", zorder=0)
        rows = [f"search 2 ({self.two.rounds[-1].origin}): {self.two.rounds[-1].query}" if len(self.two.rounds) > 1
                else "search 2: none (the first search found nothing close enough)"]  # fmt: skip
        for run in (self.one, self.two):
            every = self.sources_found(run)
            mark = "" if every is None else (" [every source]" if every else " [a source missing]")
            rows.append(f"{run.hops} hop{'s' if run.hops > 1 else ''}{mark} → {run.answer or '(no answer)'}")
        text_panel(figure, (0.02, 0.02, 0.96, 0.3), "The follow-up search and the answers", rows)
        return png(figure)


def known_question(engine: Engine, domain: str, question: str) -> DomainQuestion | None:
    """The domain's own question with this text (its multihop.jsonl first, then questions.jsonl), if any."""
    wanted = " ".join(question.split()).casefold()
    for name in (MULTIHOP_FILE, QUESTIONS_FILE):
        path = engine.domain_folder(domain) / name
        if not path.is_file():
            continue
        try:
            rows = load_questions(path)
        except QuestionsFileError:
            continue  # a broken questions file only means the sources are not known
        match = next((row for row in rows if " ".join(row.question.split()).casefold() == wanted), None)
        if match is not None:
            return match
    return None


def _run(answer: Answer, question: str, key: Sequence[str]) -> HopRun:
    def passages(hits: Sequence[Any]) -> tuple[tuple[str, str, float, bool], ...]:
        return tuple((hit.passage.path, hit.passage.span, hit.distance, hit.in_prompt) for hit in hits)

    if answer.rounds:
        rounds = tuple(HopRound(r.query, r.origin, passages(r.hits), r.said) for r in answer.rounds)
    else:
        rounds = (HopRound(question, "question", passages(answer.hits)),)
    right = (not refused(answer) and contains_key(answer.text, key)) if key else None
    return HopRun(answer.hops, rounds, answer.text, answer.grounding, right)


def run_hops(engine: Engine, query: Query, lab: LabConfig) -> HopsReport:
    """Answer `query` with one retrieval round and with two (the lab's domain: `query.domain`)."""
    domain = query.domain or query.domains[0]
    known = known_question(engine, domain, query.question)
    key = known.key if known is not None and known.answerable else ()
    one = engine.answer(replace(query, hops=1))
    two = engine.answer(replace(query, hops=2))
    return HopsReport(
        question=query.question,
        domain=domain,
        k=query.k,
        one=_run(one, query.question, key),
        two=_run(two, query.question, key),
        sources=known.sources if known is not None else (),
        key=key,
    )
