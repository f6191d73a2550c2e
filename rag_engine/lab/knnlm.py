"""The kNN-LM contrast (`lab knnlm QUESTION`): token retrieval mixed into the next-token distribution, side by
side with RAG (passages in the prompt) and with no retrieval, on the same question.

`run_knnlm` builds or reads the domain's token datastore (`knnlm_store.py`), generates greedily with
p = λ·p_kNN + (1−λ)·p_LM from the no-retrieval prompt (`knnlm_generate.py`; kNN-LM retrieves tokens, so the
prompt holds the question only), and asks the engine for the plain RAG answer and the no-retrieval answer. The
kNN-LM side runs on the generator's GGUF read by transformers (the pipeline view's attention model); the two
other answers come from the engine's own generator, as every answer does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_engine.errors import AttentionUnavailable, QuestionError
from rag_engine.explain.attention import AttentionModel
from rag_engine.explain.canvas import FONT_PT, cut, new_figure, png
from rag_engine.generate.generation import gguf_path
from rag_engine.generate.prompt import build_norag_prompt
from rag_engine.lab.figures import SERIES_COLOURS, text_panel, titled
from rag_engine.lab.knnlm_generate import KnnStep, generate
from rag_engine.lab.knnlm_store import Datastore, StoreOrigin, load_or_build
from rag_engine.records import Answer

if TYPE_CHECKING:
    from rag_engine.config import LabConfig
    from rag_engine.engine import Engine
    from rag_engine.records import Query

# Per-token rows in `lines()` (the JSON has every step).
LINE_STEPS = 12
ANSWER_CHARS = 300
DISTANCE = "squared L2"


@dataclass(frozen=True)
class StoreSummary:
    """What the run's datastore held and where it came from."""

    size: int
    cap: int
    domain_tokens: int
    passages_kept: int
    domain_passages: int
    files: int
    built: bool
    seconds: float
    path: str

    @property
    def capped(self) -> bool:
        return self.domain_tokens > self.size

    @classmethod
    def of(cls, store: Datastore, origin: StoreOrigin) -> StoreSummary:
        return cls(store.size, store.cap, store.domain_tokens, store.passages_kept, store.domain_passages,
                   len(store.files), origin.built, origin.seconds, str(origin.path))  # fmt: skip

    def line(self) -> str:
        how = f"built in {self.seconds:.1f} s" if self.built else "read from the cache"
        held = f"Datastore: {self.size:,} tokens from {self.passages_kept} passages in {self.files} files ({how})"
        if self.capped:
            return (f"{held}; the domain has {self.domain_tokens:,} tokens in {self.domain_passages} passages, "
                    f"cut at the cap of {self.cap:,}")  # fmt: skip
        return f"{held}; the whole domain (cap {self.cap:,})"


@dataclass(frozen=True)
class KnnLmReport:
    question: str
    domain: str
    steps: tuple[KnnStep, ...]
    knnlm_answer: str
    rag: Answer
    norag: Answer
    store: StoreSummary
    lam: float
    neighbours: int
    temperature: float
    generate_seconds: float
    model: str

    @property
    def experiment(self) -> str:
        return "knnlm"

    @property
    def seconds_per_token(self) -> float:
        return self.generate_seconds / max(len(self.steps), 1)

    @property
    def explanation(self) -> str:
        return (
            "kNN-LM puts no passages in the prompt: at every generated token it finds the "
            f"{self.neighbours} places in the {self.domain} documents where the model's state was most like "
            f"its state now, and mixes the tokens that came next there into its own guess (λ = {self.lam:g}). "
            "The bars show, for each generated token, how likely the model alone (p_LM) and the datastore (p_kNN) "
            "made it, and the strip below which files the neighbours came from; RAG (passages in the prompt) and "
            "no retrieval answer the same question for comparison."
        )

    def lines(self) -> list[str]:
        rag_files = sorted({hit.passage.path for hit in self.rag.hits if hit.in_prompt})
        rag = self.rag.text if self.rag.covered else "(no passage close enough: RAG did not answer)"
        rows = [
            f"kNN-LM (λ={self.lam:g}, {self.neighbours} neighbours, T={self.temperature:g}): "
            f"{cut(self.knnlm_answer, ANSWER_CHARS)}",
            f"RAG ({', '.join(rag_files) or 'no passages'}): {cut(rag, ANSWER_CHARS)}",
            f"No retrieval: {cut(self.norag.text, ANSWER_CHARS)}",
            self.store.line(),
            f"{len(self.steps)} tokens, {self.seconds_per_token * 1000:.0f} ms each; "
            f"{sum(step.changed for step in self.steps)} chosen differently than the model alone would have",
            f"token | p_LM | p_kNN | p | nearest neighbour (file@position, {DISTANCE} distance → next token)",
        ]
        for step in self.steps[:LINE_STEPS]:
            near = step.neighbours[0]
            rows.append(
                f"{step.text!r} | {step.p_lm:.2f} | {step.p_knn:.2f} | {step.p:.2f} | "
                f"{near.file}@{near.position} ({near.distance:,.0f}) → {near.value!r}"
            )
        if len(self.steps) > LINE_STEPS:
            rows.append(f"… {len(self.steps) - LINE_STEPS} more tokens in the JSON")
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "question": self.question,
            "domain": self.domain,
            "explanation": self.explanation,
            "model": self.model,
            "lambda": self.lam,
            "neighbours": self.neighbours,
            "temperature": self.temperature,
            "distance": DISTANCE,
            "knnlm": {
                "answer": self.knnlm_answer,
                "generate_seconds": round(self.generate_seconds, 3),
                "seconds_per_token": round(self.seconds_per_token, 4),
                "steps": [step.to_dict() for step in self.steps],
            },
            "rag": {
                "answer": self.rag.text,
                "covered": self.rag.covered,
                "files": [hit.passage.path for hit in self.rag.hits if hit.in_prompt],
            },
            "no_retrieval": {"answer": self.norag.text},
            "datastore": {
                "tokens": self.store.size,
                "cap": self.store.cap,
                "capped": self.store.capped,
                "domain_tokens": self.store.domain_tokens,
                "passages": self.store.passages_kept,
                "domain_passages": self.store.domain_passages,
                "files": self.store.files,
                "built": self.store.built,
                "seconds": round(self.store.seconds, 3),
            },
        }

    def png(self) -> bytes:
        return _draw(self)


def run_knnlm(engine: Engine, query: Query, lab: LabConfig) -> KnnLmReport:
    """The kNN-LM answer to `query` in its domain, with the RAG and no-retrieval answers beside it."""
    domain = query.domain
    if domain is None:
        raise QuestionError("kNN-LM needs one domain: its datastore is built from that domain's documents")
    if not 0.0 <= lab.knnlm_lambda <= 1.0 or lab.knnlm_neighbours < 1 or lab.knnlm_temperature <= 0:
        raise QuestionError("kNN-LM needs 0 <= lambda <= 1, at least one neighbour and a temperature above 0")
    if lab.knnlm_max_tokens < 1 or lab.knnlm_answer_tokens < 1:
        raise QuestionError("kNN-LM needs a datastore cap and an answer length of at least one token")
    passages = list(engine.snapshot(domain).space.passages.values())
    if not passages:
        raise QuestionError(f"the {domain} domain has no passages to build a kNN-LM datastore from")
    source = engine.attention_model()
    if not isinstance(source, AttentionModel):
        raise AttentionUnavailable("kNN-LM needs the generator read by transformers, and this engine has none")
    rag = engine.answer(query)
    norag = engine.answer(query, use_rag=False)
    config = engine.config
    budget = config.generation.max_context_tokens - config.generation.max_answer_tokens
    prompt = build_norag_prompt(query.question, engine.generator(), config.prompt, budget)
    with source.borrowed() as (tokenizer, model):
        store, origin = load_or_build(tokenizer, model, domain, passages, lab.knnlm_max_tokens,
                                      gguf_path(config.generation), Path(config.paths.data_dir))  # fmt: skip
        clock = time.perf_counter()
        steps = generate(tokenizer, model, store, prompt.text, lab.knnlm_lambda, lab.knnlm_neighbours,
                         lab.knnlm_temperature, lab.knnlm_answer_tokens)  # fmt: skip
        seconds = time.perf_counter() - clock
        answer = str(tokenizer.decode([step.token_id for step in steps])).strip()
    return KnnLmReport(
        question=query.question,
        domain=domain,
        steps=steps,
        knnlm_answer=answer,
        rag=rag,
        norag=norag,
        store=StoreSummary.of(store, origin),
        lam=lab.knnlm_lambda,
        neighbours=lab.knnlm_neighbours,
        temperature=lab.knnlm_temperature,
        generate_seconds=seconds,
        model=rag.models.get("generator", ""),
    )


def _draw(report: KnnLmReport) -> bytes:
    """Top: p_LM and p_kNN of each chosen token (the mixed p as a dot). Middle: each step's neighbours by file.
    Bottom: the three answers."""
    figure, _ = new_figure()
    titled(figure, f"kNN-LM vs RAG — {report.domain}",
           cut(f"{report.question}  (λ = {report.lam:g}, {report.neighbours} neighbours, "
               f"datastore {report.store.size:,} tokens)", 110))  # fmt: skip
    steps = report.steps
    labels = [cut(repr(step.text)[1:-1], 8) or "·" for step in steps]
    positions = list(range(len(steps)))
    bars = figure.add_axes((0.08, 0.56, 0.9, 0.3))
    bars.bar([x - 0.2 for x in positions], [s.p_lm for s in steps], 0.4, label="p_LM", color=SERIES_COLOURS[0])
    bars.bar([x + 0.2 for x in positions], [s.p_knn for s in steps], 0.4, label="p_kNN", color=SERIES_COLOURS[1])
    bars.plot(positions, [s.p for s in steps], "o", color="black", markersize=3, label="mixed p")
    bars.set_ylim(0, 1.05)
    bars.set_ylabel("probability of the chosen token", fontsize=FONT_PT)
    bars.set_xticks(positions)
    bars.set_xticklabels([])
    bars.tick_params(axis="y", labelsize=FONT_PT)
    bars.legend(fontsize=FONT_PT, frameon=False, ncols=3, loc="lower right", bbox_to_anchor=(1.0, 0.98))
    bars.spines[["top", "right"]].set_visible(False)
    files = sorted({file for step in steps for file, _ in step.file_counts},
                   key=lambda f: -sum(dict(s.file_counts).get(f, 0) for s in steps))  # fmt: skip
    shown = files[: len(SERIES_COLOURS) - 1]
    shares = figure.add_axes((0.08, 0.36, 0.9, 0.16))
    bottoms = [0.0] * len(steps)
    for number, file in enumerate([*shown, "other files"] if len(files) > len(shown) else shown):
        values = []
        for step in steps:
            counts = dict(step.file_counts)
            total = sum(counts.values()) or 1
            mine = counts.get(file, 0) if file in shown else sum(v for f, v in counts.items() if f not in shown)
            values.append(mine / total)
        colour = SERIES_COLOURS[number] if file in shown else "#bbbbbb"
        shares.bar(positions, values, 0.8, bottom=bottoms, color=colour, label=cut(file, 34))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    shares.set_ylim(0, 1)
    shares.set_ylabel("neighbours", fontsize=FONT_PT)
    shares.set_xticks(positions)
    shares.set_xticklabels(labels, fontsize=FONT_PT - 1 if len(steps) > 16 else FONT_PT, rotation=60)
    shares.tick_params(axis="y", labelsize=FONT_PT)
    shares.legend(fontsize=FONT_PT - 1, frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    rag = report.rag.text if report.rag.covered else "(not covered: no passage close enough)"
    text_panel(figure, (0.02, 0.01, 0.96, 0.14), "Answers",
               [f"kNN-LM: {report.knnlm_answer}", f"RAG: {rag}", f"No retrieval: {report.norag.text}"])  # fmt: skip
    return png(figure)
