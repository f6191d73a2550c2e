"""A small stand-in lab experiment for fast tests of the lab's surfaces (`ragscope lab`, `/lab`).

`run_fake` has the signature of every experiment (`run_X(engine, query, lab)`) and returns a `FakeLabReport`
that satisfies `rag_engine.lab.report.LabReport`. It really runs the engine it gets (over the fake models of
tests/fakes.py): it answers the question at each of `lab.dilution_ks` and records the answers and the best
file, so what the surfaces show comes from the run. Its picture is a real PNG drawn on the pipeline view's
canvas; `padding` zero bytes appended after the image's end (viewers ignore them) let a test make a picture
too big to upload. A test points `EXPERIMENTS` at it with `use_fake_experiments`.

Not here: the real experiments (rag_engine/lab/) and their tests (tests/rag_engine/lab/).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from rag_engine.config import LabConfig
from rag_engine.engine import Engine
from rag_engine.explain.canvas import new_figure, png
from rag_engine.lab import EXPERIMENTS
from rag_engine.records import Query

EXPLANATION = "This fake experiment answered your question once per k. The picture shows how long each answer was."


@dataclass(frozen=True)
class FakeLabReport:
    experiment: str
    question: str
    domain: str
    answers: tuple[tuple[int, str], ...]
    best_file: str
    padding: int = 0
    extra_lines: int = 0
    explanation: str = EXPLANATION

    def lines(self) -> list[str]:
        rows = [f"best passage: {self.best_file}"]
        rows += [f"k={k:<2} {text}" for k, text in self.answers]
        rows += [f"filler line {index} " + "x" * 80 for index in range(self.extra_lines)]
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "best_file": self.best_file,
            "answers": [{"k": k, "text": text} for k, text in self.answers],
        }

    def png(self) -> bytes:
        figure, _ = new_figure()
        axes = figure.add_subplot()
        axes.bar([str(k) for k, _ in self.answers], [len(text) for _, text in self.answers])
        axes.set_xlabel("k")
        axes.set_ylabel("answer length (characters)")
        return png(figure) + b"\0" * self.padding


def run_fake(engine: Engine, query: Query, lab: LabConfig, *, padding: int = 0, extra_lines: int = 0) -> FakeLabReport:
    assert query.domain is not None, "the lab runs in one domain"
    answers = tuple((k, engine.answer(dataclasses.replace(query, k=k)).text) for k in lab.dilution_ks)
    hits = engine.retrieve(query)
    return FakeLabReport(
        experiment="?",  # set by the named entry points below
        question=query.question,
        domain=query.domain,
        answers=answers,
        best_file=hits[0].passage.path if hits else "(none)",
        padding=padding,
        extra_lines=extra_lines,
    )


def _named(name: str, engine: Engine, query: Query, lab: LabConfig, **options: int) -> FakeLabReport:
    return dataclasses.replace(run_fake(engine, query, lab, **options), experiment=name)


# One entry point per experiment name, so a report says which subcommand ran it.
def run_k(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    return _named("k", engine, query, lab)


def run_mmr(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    return _named("mmr", engine, query, lab)


def run_retriever(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    return _named("retriever", engine, query, lab)


def run_hops(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    return _named("hops", engine, query, lab)


def run_knnlm(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    return _named("knnlm", engine, query, lab)


def run_big(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    """A report whose picture is 3 MB and whose lines are far more than a message holds."""
    return _named("k", engine, query, lab, padding=3_000_000, extra_lines=60)


def run_broken(engine: Engine, query: Query, lab: LabConfig) -> FakeLabReport:
    raise RuntimeError("the fake experiment broke")


def use_fake_experiments(monkeypatch: pytest.MonkeyPatch, **functions: str) -> None:
    """Point every name of `EXPERIMENTS` at this module's `run_<name>`, or at the function named in
    `functions` (e.g. `k="run_big"`)."""
    for name, (_, _, summary) in list(EXPERIMENTS.items()):
        monkeypatch.setitem(EXPERIMENTS, name, (__name__, functions.get(name, f"run_{name}"), summary))
