"""The pipeline view's records: the five steps of one answered question, as data a surface can show.

1 documents (what was indexed), 2 query (the question's vector and a 2-D map of where it lands), 3 retrieval
(the distance table, and what ranked the passages: the answer's retrieval mode), 4 prompt (what the model was
given), 5 generation (the answer, its grounded tokens and, when a model can give it, its attention over the
prompt). Each record turns itself into JSON. `AttentionLike` / `AttentionSource` are what the view needs of
the attention model (`attention.py`), typed here so that a fake fits too.

Not here: building a view from an `Answer` (`build.py`), writing its files (`files.py`), drawing its pictures
(`figures.py`); rendering for Discord or the terminal is the surface's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_engine.records import AnswerToken

# Step 3's title for each retrieval mode: what actually ranked the passages.
RETRIEVAL_TITLES = {
    "dense": "Retrieve with kNN",
    "bm25": "Retrieve with BM25",
    "hybrid": "Retrieve with kNN + BM25, fused",
}


class AttentionLike(Protocol):
    """What the view needs of `rag_engine.explain.attention.AttentionMap` (typed here so a fake fits too)."""

    @property
    def prompt_tokens(self) -> tuple[str, ...]: ...

    @property
    def answer_tokens(self) -> tuple[str, ...]: ...

    @property
    def weights(self) -> npt.NDArray[np.float32]: ...

    @property
    def layers(self) -> tuple[int, ...]: ...

    @property
    def heads(self) -> int: ...

    @property
    def spans(self) -> tuple[tuple[str, int, int], ...]: ...


class AttentionSource(Protocol):
    """`rag_engine.explain.attention.AttentionModel`, or a stand-in with the same `attend`."""

    def attend(
        self,
        prompt: str,
        answer: str,
        contexts: Sequence[str] = (),
        question: str = "",
        last_layers: int = 4,
    ) -> AttentionLike: ...


# -- the steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExamplePassage:
    domain: str
    path: str
    span: str
    text: str  # the first EXAMPLE_CHARS characters


@dataclass(frozen=True)
class DocumentsStep:
    """Step 1: the searched domains' documents, cut into passages and embedded."""

    domains: tuple[str, ...]
    files: int
    passages: int
    embedding_model: str
    dimension: int
    examples: tuple[ExamplePassage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "domains": list(self.domains),
            "files": self.files,
            "passages": self.passages,
            "embedding_model": self.embedding_model,
            "dimension": self.dimension,
            "examples": [vars(example) for example in self.examples],
        }


@dataclass(frozen=True)
class MapPoint:
    """One passage on the 2-D map."""

    domain: str
    passage_id: int
    path: str
    span: str
    x: float
    y: float


@dataclass(frozen=True)
class QueryStep:
    """Step 2: the question's vector, and a PCA of all searched passages' vectors with the question in it.

    The projection is centred on the passages' mean; its two axes are the top right-singular vectors of the
    centred passage matrix, each signed so that its largest-magnitude loading is positive (SVD signs are
    arbitrary; this makes the picture the same on every run). The question is projected with the same mean
    and axes. 2-D distances on the map are only a hint; the table's are the real ones.
    """

    question: str
    dimension: int
    embed_seconds: float
    vector: tuple[float, ...]
    points: tuple[MapPoint, ...]
    query_xy: tuple[float, float]
    explained_variance: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "dimension": self.dimension,
            "embed_seconds": self.embed_seconds,
            "vector": list(self.vector),
            "projection": "PCA (centred SVD) of the searched passages' vectors",
            "explained_variance": list(self.explained_variance),
            "query_xy": list(self.query_xy),
            "points": [vars(point) for point in self.points],
        }


@dataclass(frozen=True)
class DistanceRow:
    """One passage's true Euclidean distance to the question; `hit_rank` when retrieval returned it."""

    rank: int
    domain: str
    passage_id: int
    path: str
    span: str
    distance: float
    hit_rank: int | None
    in_prompt: bool

    @property
    def retrieved(self) -> bool:
        return self.hit_rank is not None

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "retrieved": self.retrieved}


@dataclass(frozen=True)
class RetrievalStep:
    """Step 3: distances from the question to the passages, nearest first (`complete`: every passage).

    The table is always by Euclidean distance (the threshold is one), but only in `mode` "dense" did the
    distance rank the passages: `title` and `ranking` say what did (BM25 word scores, or both lists fused).
    """

    rows: tuple[DistanceRow, ...]
    searched: int
    top_k: int
    max_distance: float
    complete: bool
    note: str = ""
    mode: str = "dense"
    ranking: str = ""  # one sentence: what ranked the passages, with the settings that did

    @property
    def hits(self) -> tuple[DistanceRow, ...]:
        return tuple(sorted((row for row in self.rows if row.retrieved), key=lambda row: row.hit_rank or 0))

    @property
    def title(self) -> str:
        return RETRIEVAL_TITLES.get(self.mode, f"Retrieve ({self.mode})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "title": self.title,
            "ranking": self.ranking,
            "searched": self.searched,
            "top_k": self.top_k,
            "max_distance": self.max_distance,
            "complete": self.complete,
            "note": self.note,
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class PromptStep:
    """Step 4: the exact prompt text and how much of the context window it fills."""

    text: str
    tokens: int
    context_window: int
    max_answer_tokens: int | None
    passages: tuple[str, ...]  # "[1] history/eiffel-tower.md L3-9", in prompt order

    @property
    def fullness(self) -> float:
        """Percent of the context window taken by the prompt."""
        return 100.0 * self.tokens / self.context_window if self.context_window else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": self.tokens,
            "context_window": self.context_window,
            "fullness_percent": round(self.fullness, 1),
            "max_answer_tokens": self.max_answer_tokens,
            "passages": list(self.passages),
        }


@dataclass(frozen=True)
class GenerationStep:
    """Step 5: the answer, which of its tokens also occur in the context, and the attention (or why not)."""

    text: str
    tokens: tuple[AnswerToken, ...]
    ansi: str
    generated: bool
    seconds: float
    attention: AttentionLike | None
    attention_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        attention = self.attention
        return {
            "text": self.text,
            "generated": self.generated,
            "seconds": self.seconds,
            "tokens": [{"text": t.text, "in_context": t.in_context} for t in self.tokens],
            "in_context_tokens": sum(t.in_context for t in self.tokens),
            "ansi": self.ansi,
            "attention": None if attention is None else attention_dict(attention),
            "attention_note": self.attention_note,
        }


@dataclass(frozen=True)
class PipelineView:
    """The five steps of one answer; steps 1–3 are None without retrieval, `prompt` None when nothing was
    generated (no passage was close enough)."""

    question: str
    domain: str | None
    used_rag: bool
    covered: bool
    models: dict[str, str]
    timings: dict[str, float]
    documents: DocumentsStep | None
    query: QueryStep | None
    retrieval: RetrievalStep | None
    prompt: PromptStep | None
    generation: GenerationStep

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "domain": self.domain,
            "used_rag": self.used_rag,
            "covered": self.covered,
            "models": dict(self.models),
            "timings": dict(self.timings),
            "documents": self.documents.to_dict() if self.documents else None,
            "query": self.query.to_dict() if self.query else None,
            "retrieval": self.retrieval.to_dict() if self.retrieval else None,
            "prompt": self.prompt.to_dict() if self.prompt else None,
            "generation": self.generation.to_dict(),
        }


def attention_dict(attention: AttentionLike) -> dict[str, Any]:
    """An attention map as JSON, the weights rounded to 6 decimals."""
    return {
        "prompt_tokens": list(attention.prompt_tokens),
        "answer_tokens": list(attention.answer_tokens),
        "weights": np.round(np.asarray(attention.weights, dtype=np.float64), 6).tolist(),
        "layers": list(attention.layers),
        "heads": attention.heads,
        "spans": [{"label": label, "start": start, "end": end} for label, start, end in attention.spans],
    }
