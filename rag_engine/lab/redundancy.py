"""Lab experiment "mmr", redundant passages: top-k by plain kNN against MMR at each of `lab.mmr_lambdas`, on
the domain with near-duplicates added in memory.

The duplicate demo: the question's best `lab.duplicate_sources` passages each get `lab.duplicate_copies`
near-copies with small, deterministic edits (`near_copy`), embedded with the engine's embedder and added to
an in-memory copy of the domain's space (`spaces.py`); nothing is written to disk. Each method then picks k
passages from that space with the project's own `search` (the question's retrieval mode), and the report
counts the near-duplicate pairs among them (vectors closer than `lab.near_duplicate_distance`), the distinct
files, and the answer the model gives from them (`Engine.answer_from`). A copy keeps its original's file:
it is the same text, so it adds no file. Not here: building the space (`spaces.py`), rendering for a surface.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag_engine.config import LabConfig
from rag_engine.engine import Engine
from rag_engine.explain.canvas import cut, new_figure, png
from rag_engine.lab.figures import grouped_bars, text_panel, titled
from rag_engine.lab.spaces import files_of, with_passages
from rag_engine.records import Hit, Passage, Query
from rag_engine.search.fusion import Fusion
from rag_engine.search.retrieval import SearchSpace, search

ANSWER_CHARS = 160
# The small edits a near-copy gets, in turn (copy n gets edit n mod 3, plus a numbered note from the 4th on).
PREFIXES = ("In short: ", "Note: ", "Summary: ")


@dataclass(frozen=True)
class MethodResult:
    """The k passages one method picked and what came of them."""

    method: str
    mmr_lambda: float
    # (file, span, distance, is a near-copy) of each passage, in prompt order.
    passages: tuple[tuple[str, str, float, bool], ...]
    near_duplicate_pairs: int
    distinct_files: int
    answer: str
    grounding: str

    @property
    def copies(self) -> int:
        return sum(copy for *_, copy in self.passages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "mmr_lambda": self.mmr_lambda,
            "passages": [
                {"path": path, "span": span, "distance": round(distance, 6), "copy": copy}
                for path, span, distance, copy in self.passages
            ],
            "near_duplicate_pairs": self.near_duplicate_pairs,
            "distinct_files": self.distinct_files,
            "copies": self.copies,
            "answer": self.answer,
            "grounding": self.grounding,
        }


@dataclass(frozen=True)
class RedundancyReport:
    question: str
    domain: str
    k: int
    results: tuple[MethodResult, ...]
    # The passages copied ("file span") and how many near-copies each got.
    copied: tuple[str, ...]
    copies_each: int
    near_duplicate_distance: float
    experiment: str = "mmr"

    @property
    def explanation(self) -> str:
        return (
            f"Near-copies of the question's best passages were added to {self.domain} (in memory only), then "
            f"the top {self.k} passages were picked by plain nearest-neighbour search and by MMR, which also "
            "penalises a passage for being like one already picked. Fewer near-duplicate pairs and more "
            "distinct files mean the prompt's room went to new information."
        )

    def lines(self) -> list[str]:
        lines = [
            f"Redundancy in {self.domain}: {self.copies_each} near-copies of each of "
            f"{len(self.copied)} best passages added (in memory), top {self.k}; near-duplicates: "
            f"distance < {self.near_duplicate_distance:g}"
        ]
        for result in self.results:
            lines.append(
                f"{result.method}: {result.near_duplicate_pairs} near-duplicate pairs, "
                f"{result.distinct_files} distinct files, {result.copies} near-copies among them"
            )
            lines.append(f"  files: {', '.join(dict.fromkeys(path for path, *_ in result.passages))}")
            lines.append(f"  {cut(result.answer or '(no answer)', ANSWER_CHARS)}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "k": self.k,
            "copied": list(self.copied),
            "copies_each": self.copies_each,
            "near_duplicate_distance": self.near_duplicate_distance,
            "results": [result.to_dict() for result in self.results],
        }

    def png(self) -> bytes:
        figure, _ = new_figure()
        titled(
            figure,
            f"Redundant passages: plain kNN against MMR (top {self.k})",
            f"{cut(self.question, 100)}\n{self.copies_each} near-copies of each of the {len(self.copied)} "
            "best passages were added in memory",
        )
        chart = figure.add_axes((0.08, 0.5, 0.88, 0.33))
        grouped_bars(
            chart,
            [result.method for result in self.results],
            {
                "near-duplicate pairs": [r.near_duplicate_pairs for r in self.results],
                "distinct files": [r.distinct_files for r in self.results],
            },
        )
        rows = [
            row
            for r in self.results
            for row in (
                f"{r.method}: {r.answer or '(no answer)'}",
                f"↳ files: {', '.join(dict.fromkeys(path for path, *_ in r.passages))}",
            )
        ]
        text_panel(figure, (0.02, 0.02, 0.96, 0.36), "Answers (and the files they read)", rows)
        return png(figure)


def near_copy(text: str, number: int) -> str:
    """Near-copy `number` (0, 1, …) of `text`: the last sentence dropped, two middle words swapped, or a short
    prefix added, in turn; from the fourth copy on a numbered note is added as well (so no two copies match)."""
    edit = number % len(PREFIXES)
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    if edit == 0 and len(sentences) > 1:
        copied = " ".join(sentences[:-1])
    elif edit == 1 and len(text.split()) > 3:
        words = text.split()
        middle = len(words) // 2
        words[middle - 1], words[middle] = words[middle], words[middle - 1]
        copied = " ".join(words)
    else:
        copied = PREFIXES[number % len(PREFIXES)] + text
    return copied if number < len(PREFIXES) else f"({number + 1}) {copied}"


def duplicate_demo(engine: Engine, query: Query, space: SearchSpace, lab: LabConfig) -> tuple[SearchSpace, list[Hit]]:
    """The domain's space with near-copies of the question's best passages added (in memory), and the hits
    that were copied."""
    sources = engine.retrieve(replace(query, k=max(1, lab.duplicate_sources)))
    # Ids are stable 63-bit hashes, so "the largest plus one" could overflow: take the smallest unused ones.
    free = (i for i in itertools.count(1) if i not in space.passages)
    added: dict[int, Passage] = {}
    for hit in sources:
        for number in range(lab.duplicate_copies):
            copy_id = next(free)
            added[copy_id] = replace(hit.passage, id=copy_id, text=near_copy(hit.passage.text, number))
    vectors = engine.embedder().embed([p.text for p in added.values()]) if added else None
    if vectors is None:
        return space, sources
    return with_passages(space, added, vectors, engine.config), sources


def run_redundancy(engine: Engine, query: Query, lab: LabConfig) -> RedundancyReport:
    """Plain kNN and MMR at each `lab.mmr_lambdas` on the duplicate demo of `query`'s domain."""
    domain = query.domain or query.domains[0]
    original = engine.snapshot(domain).space
    space, sources = duplicate_demo(engine, query, original, lab)
    copies = set(space.passages) - set(original.passages)
    vector = engine.embedder().embed([query.question])[0]
    retrieval = engine.config.retrieval
    methods = [("kNN", 1.0), *((f"MMR λ={lam:g}", lam) for lam in lab.mmr_lambdas)]
    results = []
    for name, lam in methods:
        hits = search(
            vector,
            [space],
            query.k,
            lam,
            retrieval.mmr_candidates,
            text=query.question,
            mode=query.mode,
            fusion=Fusion.from_config(retrieval),
        )
        answer = engine.answer_from(query.question, hits, domain)
        ids = [hit.passage.id for hit in hits]
        results.append(
            MethodResult(
                method=name,
                mmr_lambda=lam,
                passages=tuple((h.passage.path, h.passage.span, h.distance, h.passage.id in copies) for h in hits),
                near_duplicate_pairs=near_duplicate_pairs(space, ids, lab.near_duplicate_distance),
                distinct_files=len(files_of(hits)),
                answer=answer.text,
                grounding=answer.grounding,
            )
        )
    copied = tuple(f"{hit.passage.path} {hit.passage.span}" for hit in sources)
    return RedundancyReport(
        query.question, domain, query.k, tuple(results), copied, lab.duplicate_copies, lab.near_duplicate_distance
    )


def near_duplicate_pairs(space: SearchSpace, ids: list[int], threshold: float) -> int:
    """How many pairs of the given passages have vectors closer than `threshold` (Euclidean)."""
    vectors = space.index.vectors(ids).astype(np.float64)
    return sum(
        float(np.linalg.norm(vectors[a] - vectors[b])) < threshold
        for a, b in itertools.combinations(range(len(ids)), 2)
    )
