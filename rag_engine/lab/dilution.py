"""Lab experiment "k", context dilution: the same question answered at k = 1, 2, 4, 8 through the real pipeline.

For each k the report keeps the answer, the prompt's length and passages, whether the answer still says what
the best passage says, and how the answer's attention splits between the best passage and the others (from
the attention model the pipeline view uses). A k above `MAX_K`, or whose passages would not all fit the
context window, is skipped and the report says why.

"Contains what the top passage says" is measured, not judged: the answer is not a refusal, at least
`TOP_OVERLAP` of the answer's own terms (analysed as BM25 does: stemmed, stop words dropped, the question's
terms left out) occur in the rank-1 passage, and every number and name the support check found in the answer
occurs in that passage too. By default the passages go into the prompt whole (`lab.dilution_whole_passages`):
the evidence selection would cap the context at `evidence.max_context_tokens`, hiding the very effect shown.
Not here: rendering for a surface (the CLI and the bot show `lines()`, `explanation`, `png()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag_engine.config import MAX_K, LabConfig
from rag_engine.engine import Engine
from rag_engine.errors import AttentionUnavailable
from rag_engine.explain.canvas import FONT_PT, cut, new_figure, png
from rag_engine.explain.view import AttentionLike
from rag_engine.generate.prompt import build_prompt
from rag_engine.lab.figures import SERIES_COLOURS, text_panel, titled
from rag_engine.records import Answer, Hit, Query
from rag_engine.search.lexical import Analyzer
from rag_engine.search.retrieval import within_threshold

# The share of the answer's own terms that must occur in the rank-1 passage for it to "say what it says".
TOP_OVERLAP = 0.5
# Answers are cut to this many characters in `lines()`.
ANSWER_CHARS = 160


@dataclass(frozen=True)
class TopPassageCheck:
    """How much of the answer the rank-1 passage holds: its own terms (not the question's) and its claims."""

    contains: bool
    # Share of the answer's own terms found in the rank-1 passage (0.0 when the answer has none).
    overlap: float
    terms: int
    # Numbers and names of the answer (the support check's claims), and how many of them the passage holds.
    claims: int
    claims_in_top: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "contains": self.contains,
            "overlap": round(self.overlap, 4),
            "terms": self.terms,
            "claims": self.claims,
            "claims_in_top": self.claims_in_top,
        }


@dataclass(frozen=True)
class AttentionShares:
    """Mean over the answer's tokens of the attention on the best passage's tokens and on the other passages'
    tokens; the rest (1 − best − other) went to the question and the template."""

    best: float
    other: float
    answer_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"best": round(self.best, 6), "other": round(self.other, 6), "answer_tokens": self.answer_tokens}


@dataclass(frozen=True)
class DilutionRun:
    """The question answered at one k."""

    k: int
    answer: str
    grounding: str
    covered: bool
    prompt_tokens: int
    # The prompt's passages in prompt order: "path span", the best one marked by `best_block` (None: not in it).
    passages: tuple[str, ...]
    best_block: int | None
    top: TopPassageCheck
    attention: AttentionShares | None
    # Why there are no attention shares (empty when there are).
    attention_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "answer": self.answer,
            "grounding": self.grounding,
            "covered": self.covered,
            "prompt_tokens": self.prompt_tokens,
            "passages": list(self.passages),
            "best_block": self.best_block,
            "top_passage": self.top.to_dict(),
            "attention": self.attention.to_dict() if self.attention else None,
            "attention_note": self.attention_note,
        }


@dataclass(frozen=True)
class DilutionReport:
    question: str
    domain: str
    runs: tuple[DilutionRun, ...]
    # (k, why) for every k not run.
    skipped: tuple[tuple[int, str], ...]
    # The rank-1 passage ("path span") the runs are measured against.
    best_passage: str
    whole_passages: bool
    context_tokens: int
    experiment: str = "k"

    @property
    def explanation(self) -> str:
        return (
            "The same question was answered with the best 1, 2, 4… passages in the prompt. The chart shows how "
            "much of the answer's attention went to the best passage and how much to the others: as k grows, "
            "the best passage gets a smaller share, and the answer may stop saying what it says."
        )

    def lines(self) -> list[str]:
        how = "whole passages" if self.whole_passages else "evidence sentences"
        lines = [
            f"Dilution in {self.domain} ({how}, {self.context_tokens}-token window)",
            f"best passage: {self.best_passage or '(none)'}",
        ]
        for run in self.runs:
            shares = (
                f"attention best {run.attention.best:.0%}, others {run.attention.other:.0%}"
                if run.attention
                else f"attention: {run.attention_note}"
            )
            says = "says what the top passage says" if run.top.contains else "does not say what the top passage says"
            lines.append(
                f"k={run.k}: {run.prompt_tokens} prompt tokens, {len(run.passages)} passages; {shares}; {says}"
            )
            lines.append(f"  {cut(run.answer, ANSWER_CHARS)}")
        lines.extend(f"k={k} skipped: {why}" for k, why in self.skipped)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "best_passage": self.best_passage,
            "whole_passages": self.whole_passages,
            "context_tokens": self.context_tokens,
            "top_overlap": TOP_OVERLAP,
            "runs": [run.to_dict() for run in self.runs],
            "skipped": [{"k": k, "reason": why} for k, why in self.skipped],
        }

    def png(self) -> bytes:
        figure, _ = new_figure()
        titled(
            figure,
            "Context dilution: attention on the best passage as k grows",
            f"{cut(self.question, 100)}\nMean share of each answer token's attention over the prompt",
        )
        chart = figure.add_axes((0.09, 0.5, 0.86, 0.33))
        measured = [run for run in self.runs if run.attention is not None]
        positions = list(range(len(measured)))
        series = (
            ("best passage", [r.attention.best for r in measured if r.attention]),
            ("other passages", [r.attention.other for r in measured if r.attention]),
        )
        for number, (name, values) in enumerate(series):
            chart.plot(positions, values, marker="o", label=name, color=SERIES_COLOURS[number])
            for x, value in zip(positions, values, strict=True):
                # The higher of the two values at this k is labelled above its point, the lower below, so the
                # labels never sit on each other when the lines cross or touch.
                other = series[1 - number][1][x]
                above = value > other or (value == other and number == 0)
                chart.annotate(
                    f"{value:.0%}",
                    (x, value),
                    textcoords="offset points",
                    xytext=(0, 5 if above else -5),
                    ha="center",
                    va="bottom" if above else "top",
                    fontsize=FONT_PT,
                    color=SERIES_COLOURS[number],
                )
        chart.set_xticks(positions)
        chart.set_xticklabels([f"k={run.k}\n{run.prompt_tokens} tok" for run in measured], fontsize=FONT_PT)
        chart.set_ylim(-0.12, 1)  # room for a label under a 0% point, above the k labels
        chart.set_ylabel("share of attention", fontsize=FONT_PT)
        chart.legend(fontsize=FONT_PT, frameon=False)
        chart.spines[["top", "right"]].set_visible(False)
        if not measured:
            chart.text(0.5, 0.5, "attention unavailable", ha="center", transform=chart.transAxes)
        rows = [
            f"k={run.k} [{'top passage ✓' if run.top.contains else 'top passage ✗'}] {run.answer or '(no answer)'}"
            for run in self.runs
        ]
        rows += [f"k={k} skipped: {why}" for k, why in self.skipped]
        text_panel(figure, (0.02, 0.02, 0.96, 0.36), "Answers", rows)
        return png(figure)


def run_dilution(engine: Engine, query: Query, lab: LabConfig) -> DilutionReport:
    """Answer `query` at each of `lab.dilution_ks` (in increasing order) in its domain and measure each answer."""
    domain = query.domain or (query.domains[0] if query.domains else "")
    runner = engine
    whole = lab.dilution_whole_passages and engine.config.evidence.sentences
    if whole:  # the same models, whole passages in the prompt
        runner = engine.with_config(replace(engine.config, evidence=replace(engine.config.evidence, sentences=False)))
    generation = engine.config.generation
    budget = generation.max_context_tokens - generation.max_answer_tokens
    analyzer = Analyzer()
    runs: list[DilutionRun] = []
    skipped: list[tuple[int, str]] = []
    best_passage = ""
    for k in sorted(set(lab.dilution_ks)):
        if not 1 <= k <= MAX_K:
            skipped.append((k, f"k must be between 1 and {MAX_K}"))
            continue
        at_k = replace(query, k=k)
        if whole or not engine.config.evidence.sentences:
            evidence = within_threshold(runner.retrieve(at_k), engine.config.retrieval.max_distance)
            built = build_prompt(query.question, evidence, runner.generator(), engine.config.prompt, budget)
            if len(built.blocks) < len(evidence):
                skipped.append(
                    (
                        k,
                        f"only {len(built.blocks)} of its {len(evidence)} passages fit the "
                        f"{generation.max_context_tokens}-token context window",
                    )
                )
                continue
        answer = runner.answer(at_k)
        best = answer.hits[0] if answer.hits else None
        best_passage = best_passage or (_where(best) if best else "")
        runs.append(_measured(engine, answer, best, k, analyzer))
    return DilutionReport(
        query.question,
        domain,
        tuple(runs),
        tuple(skipped),
        best_passage,
        bool(whole or not engine.config.evidence.sentences),
        generation.max_context_tokens,
    )


def _measured(engine: Engine, answer: Answer, best: Hit | None, k: int, analyzer: Analyzer) -> DilutionRun:
    blocks = prompt_passages(answer)
    best_blocks = [i for i, passage_id in enumerate(blocks) if best is not None and passage_id == best.passage.id]
    by_id = {hit.passage.id: hit for hit in answer.hits}
    passages = tuple(_where(by_id[i]) if i in by_id else "?" for i in blocks)
    shares: AttentionShares | None = None
    note = ""
    if not answer.covered or not answer.prompt:
        note = "nothing was generated (no passage was close enough)"
    elif not answer.text:
        note = "the answer is empty"
    else:
        try:
            attention = engine.attention_model().attend(answer.prompt, answer.text, answer.contexts, answer.question)
            shares = attention_shares(attention, best_blocks, len(blocks))
        except AttentionUnavailable as exc:
            note = f"unavailable: {exc}"
    return DilutionRun(
        k=k,
        answer=answer.text,
        grounding=answer.grounding,
        covered=answer.covered,
        prompt_tokens=answer.prompt_tokens,
        passages=passages,
        best_block=best_blocks[0] if best_blocks else None,
        top=top_passage_check(answer, best, analyzer),
        attention=shares,
        attention_note=note,
    )


def prompt_passages(answer: Answer) -> list[int | None]:
    """The passage id behind each context block of the prompt, in prompt order (`Answer.contexts`): the hit
    whose text the block is, or (for an excerpt) the passage of the first sentence it holds; None if neither."""
    by_text = {hit.passage.text: hit.passage.id for hit in answer.hits}
    found: list[int | None] = []
    for block in answer.contexts:
        passage_id = by_text.get(block)
        if passage_id is None:
            passage_id = next((s.passage_id for s in answer.context_sentences if s.text and s.text in block), None)
        found.append(passage_id)
    return found


def attention_shares(attention: AttentionLike, best_blocks: Sequence[int], blocks: int) -> AttentionShares:
    """Mean over answer tokens of the attention on the best blocks' tokens and on the other blocks' tokens.
    Each prompt column counts once (a column in both goes to the best), so best + other <= 1."""
    weights = np.asarray(attention.weights, dtype=np.float64)
    rows, columns = weights.shape
    best_mask, other_mask = np.zeros(columns, bool), np.zeros(columns, bool)
    for label, start, end in attention.spans:
        if not (label.startswith("[") and label.endswith("]")):
            continue
        block = int(label[1:-1]) - 1
        if 0 <= block < blocks:
            (best_mask if block in best_blocks else other_mask)[start:end] = True
    other_mask &= ~best_mask
    if rows == 0:
        return AttentionShares(0.0, 0.0, 0)
    best = float(np.clip(weights[:, best_mask].sum(axis=1).mean(), 0.0, 1.0))
    other = float(np.clip(weights[:, other_mask].sum(axis=1).mean(), 0.0, 1.0 - best))
    return AttentionShares(best, other, rows)


def top_passage_check(answer: Answer, best: Hit | None, analyzer: Analyzer) -> TopPassageCheck:
    """Whether the answer says what the rank-1 passage says (see the module's docstring for the rule)."""
    if best is None or not answer.text:
        return TopPassageCheck(False, 0.0, 0, 0, 0)
    top_text = best.passage.text
    own = set(analyzer.terms(answer.text)) - set(analyzer.terms(answer.question))
    in_top = own & set(analyzer.terms(top_text))
    overlap = len(in_top) / len(own) if own else 0.0
    claims = [claim for claim in answer.support if claim.kind in ("number", "name")]
    held = sum(claim.span.casefold() in top_text.casefold() for claim in claims)
    refused = answer.grounding == "refused" or not answer.covered
    contains = not refused and bool(own) and overlap >= TOP_OVERLAP and held == len(claims)
    return TopPassageCheck(contains, overlap, len(own), len(claims), held)


def _where(hit: Hit) -> str:
    return f"{hit.passage.path} {hit.passage.span}"
