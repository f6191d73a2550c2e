"""The pipeline view: the five steps of one answered question, as data a surface can show.

1 documents (what was indexed), 2 query (the question's vector and a 2-D map of where it lands), 3 retrieval
(the distance table), 4 prompt (what the model was given), 5 generation (the answer, its grounded tokens and,
when a model can give it, its attention over the prompt). Everything comes from the `Answer` trace and the
domain snapshots it searched: retrieval and generation are never run again here (only the attention model
reads the prompt and answer once more). Pictures are `figures.py`; rendering for Discord is the bot's job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_engine.errors import RagError
from rag_engine.records import Answer, AnswerToken, Hit, Passage

if TYPE_CHECKING:
    from rag_engine.engine import Engine

log = logging.getLogger(__name__)

# Up to this many searched passages the table lists them all; beyond, the k nearest plus the next few.
TABLE_ALL_UP_TO = 40
TABLE_EXTRA_ROWS = 10
EXAMPLE_PASSAGES = 3
EXAMPLE_CHARS = 160
# Discord's ```ansi blocks understand the basic SGR codes: green for words also found in the context.
ANSI_GREEN = "\u001b[32m"
ANSI_RESET = "\u001b[0m"
PIPELINE_FILES = frozenset(
    {
        "pipeline.json",
        "embedding_map.png",
        "distances.md",
        "prompt.txt",
        "answer.ansi",
        "attention.png",
        "attention.txt",
    }
)


class PipelineOutputError(RagError):
    """The pipeline's files could not be written (no such folder, no permission, disk full)."""


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
    """Step 3: distances from the question to the passages, nearest first (`complete`: every passage)."""

    rows: tuple[DistanceRow, ...]
    searched: int
    top_k: int
    max_distance: float
    complete: bool
    note: str = ""

    @property
    def hits(self) -> tuple[DistanceRow, ...]:
        return tuple(sorted((row for row in self.rows if row.retrieved), key=lambda row: row.hit_rank or 0))

    def to_dict(self) -> dict[str, Any]:
        return {
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
    return {
        "prompt_tokens": list(attention.prompt_tokens),
        "answer_tokens": list(attention.answer_tokens),
        "weights": np.round(np.asarray(attention.weights, dtype=np.float64), 6).tolist(),
        "layers": list(attention.layers),
        "heads": attention.heads,
        "spans": [{"label": label, "start": start, "end": end} for label, start, end in attention.spans],
    }


# -- building ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Searched:
    """The searched domains' passages in a fixed order (domain, path, position) and their stored vectors."""

    keys: list[tuple[str, Passage]]
    vectors: npt.NDArray[np.float64]
    files: int
    dimension: int


def build_pipeline(
    engine: Engine,
    answer: Answer,
    attention: AttentionSource | None,
    *,
    attention_note: str = "",
) -> PipelineView:
    """The view of `answer`, drawn from its trace and the current snapshots of the domains it searched.

    `attention=None` leaves step 5 without attention; `attention_note` then says why (a default otherwise).
    An attention model that cannot give attention (a `RagError`) leaves a note instead of failing the view.
    If the index changed since the answer, retrieved passages that are gone are named in step 3's note.
    """
    documents = query = retrieval = None
    if answer.used_rag:
        if not answer.query_vector:
            raise ValueError("this answer used retrieval but carries no query vector")
        searched = _searched(engine, answer.searched)
        documents = _documents(answer, searched)
        query = _query(answer, searched)
        retrieval = _retrieval(answer, searched)
    return PipelineView(
        question=answer.question,
        domain=answer.domain,
        used_rag=answer.used_rag,
        covered=answer.covered,
        models=dict(answer.models),
        timings=dict(answer.timings),
        documents=documents,
        query=query,
        retrieval=retrieval,
        prompt=_prompt(engine, answer),
        generation=_generation(answer, attention, attention_note),
    )


def _searched(engine: Engine, domains: Sequence[str]) -> _Searched:
    keys: list[tuple[str, Passage]] = []
    blocks: list[npt.NDArray[np.float32]] = []
    files = 0
    dimension = 0
    for name in domains:
        snapshot = engine.snapshot(name)
        space = snapshot.space
        ordered = sorted(space.passages.values(), key=lambda p: (p.path, p.page_start or 0, p.line_start, p.id))
        keys.extend((name, passage) for passage in ordered)
        blocks.append(space.index.vectors([p.id for p in ordered]))
        files += len(snapshot.stats.files)
        dimension = dimension or space.index.dimension
    vectors = np.vstack(blocks).astype(np.float64) if blocks else np.zeros((0, dimension))
    return _Searched(keys, vectors, files, dimension)


def _documents(answer: Answer, searched: _Searched) -> DocumentsStep:
    # One example from each of the first files, so the examples show different documents.
    examples: list[tuple[str, Passage]] = []
    seen: set[tuple[str, str]] = set()
    for domain, passage in searched.keys:
        if (domain, passage.path) not in seen:
            seen.add((domain, passage.path))
            examples.append((domain, passage))
        if len(examples) == EXAMPLE_PASSAGES:
            break
    for domain, passage in searched.keys:  # fewer files than examples: fill from the first
        if len(examples) == EXAMPLE_PASSAGES:
            break
        if (domain, passage) not in examples:
            examples.append((domain, passage))
    return DocumentsStep(
        domains=tuple(answer.searched),
        files=searched.files,
        passages=len(searched.keys),
        embedding_model=answer.models.get("embedding", ""),
        dimension=searched.dimension or len(answer.query_vector),
        examples=tuple(
            ExamplePassage(domain, p.path, p.span, " ".join(p.text.split())[:EXAMPLE_CHARS]) for domain, p in examples
        ),
    )


def pca_2d(
    vectors: npt.NDArray[np.float64], query: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], tuple[float, float]]:
    """(passage coordinates [n, 2], query coordinates [2], explained variance ratio of the two axes).

    Axes are signed so that each one's largest-magnitude loading is positive. Fewer than two passages (or
    directions of variance) leave the missing axis at zero.
    """
    n, dimension = vectors.shape
    if n == 0:
        return np.zeros((0, 2)), np.zeros(2), (0.0, 0.0)
    mean = vectors.mean(axis=0)
    centred = vectors - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = np.zeros((2, dimension))
    ratios = [0.0, 0.0]
    total = float(np.sum(singular**2))
    for axis in range(min(2, len(singular))):
        if singular[axis] <= 1e-12 * max(1.0, float(singular[0])):
            continue  # no variance along this axis: a sign-less direction would only add noise
        component = vt[axis]
        if component[np.argmax(np.abs(component))] < 0:
            component = -component
        components[axis] = component
        ratios[axis] = float(singular[axis] ** 2 / total) if total else 0.0
    return centred @ components.T, (query - mean) @ components.T, (ratios[0], ratios[1])


def _query(answer: Answer, searched: _Searched) -> QueryStep:
    query = np.asarray(answer.query_vector, dtype=np.float64)
    coords, query_xy, ratios = pca_2d(searched.vectors, query)
    points = tuple(
        MapPoint(domain, p.id, p.path, p.span, float(x), float(y))
        for (domain, p), (x, y) in zip(searched.keys, coords, strict=True)
    )
    return QueryStep(
        question=answer.question,
        dimension=len(answer.query_vector),
        embed_seconds=answer.timings.get("embed_query", 0.0),
        vector=tuple(answer.query_vector),
        points=points,
        query_xy=(float(query_xy[0]), float(query_xy[1])),
        explained_variance=ratios,
    )


def _retrieval(answer: Answer, searched: _Searched) -> RetrievalStep:
    query = np.asarray(answer.query_vector, dtype=np.float64)
    # The true distances, recomputed from the stored vectors (not copied from the hits): the table is a
    # check on retrieval as much as a picture of it.
    distances = np.linalg.norm(searched.vectors - query, axis=1) if len(searched.keys) else np.zeros(0)
    hits: dict[tuple[str, int], Hit] = {(hit.domain, hit.passage.id): hit for hit in answer.hits}
    order = sorted(
        range(len(searched.keys)),
        key=lambda i: (distances[i], searched.keys[i][0], searched.keys[i][1].path, searched.keys[i][1].id),
    )
    complete = len(order) <= TABLE_ALL_UP_TO
    keep = len(order) if complete else answer.top_k + TABLE_EXTRA_ROWS
    rows = []
    for rank, i in enumerate(order, start=1):
        domain, passage = searched.keys[i]
        hit = hits.get((domain, passage.id))
        if rank > keep and hit is None:  # retrieved passages are always listed (MMR may pick farther ones)
            continue
        rows.append(
            DistanceRow(
                rank=rank,
                domain=domain,
                passage_id=passage.id,
                path=passage.path,
                span=passage.span,
                distance=float(distances[i]),
                hit_rank=hit.rank if hit else None,
                in_prompt=hit.in_prompt if hit else False,
            )
        )
    listed = {(row.domain, row.passage_id) for row in rows}
    gone = [f"{hit.domain}/{hit.passage.path} {hit.passage.span}" for key, hit in hits.items() if key not in listed]
    note = f"the index changed since this answer; no longer indexed: {', '.join(gone)}" if gone else ""
    return RetrievalStep(
        rows=tuple(rows),
        searched=len(order),
        top_k=answer.top_k,
        max_distance=answer.max_distance,
        complete=complete,
        note=note,
    )


def _prompt(engine: Engine, answer: Answer) -> PromptStep | None:
    if not answer.prompt:
        return None
    used = sorted((hit for hit in answer.hits if hit.in_prompt), key=lambda hit: hit.rank)
    return PromptStep(
        text=answer.prompt,
        tokens=answer.prompt_tokens,
        context_window=answer.context_tokens,
        max_answer_tokens=engine.config.generation.max_answer_tokens,
        passages=tuple(f"[{hit.rank}] {_where(hit)} {hit.passage.span}" for hit in used),
    )


def _where(hit: Hit) -> str:
    return f"{hit.domain}/{hit.passage.path}" if hit.domain else hit.passage.path


def ansi_text(tokens: Sequence[AnswerToken], fallback: str = "") -> str:
    """The answer with its in-context tokens green; consecutive green tokens share one colour run.

    Leading and trailing whitespace is dropped, as in `Answer.text`.
    """
    if not tokens:
        return fallback
    runs: list[tuple[str, bool]] = []
    for token in tokens:
        if runs and runs[-1][1] == token.in_context:
            runs[-1] = (runs[-1][0] + token.text, token.in_context)
        else:
            runs.append((token.text, token.in_context))
    runs[0] = (runs[0][0].lstrip(), runs[0][1])
    runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
    parts = []
    for text, green in runs:
        if green and text.strip():
            # Keep the space before a word outside the colour, so the colour starts at the word.
            body = text.lstrip()
            parts.append(text[: len(text) - len(body)] + ANSI_GREEN + body + ANSI_RESET)
        else:
            parts.append(text)
    return "".join(parts)


def _generation(answer: Answer, attention: AttentionSource | None, note: str) -> GenerationStep:
    generated = bool(answer.prompt and answer.tokens)
    found: AttentionLike | None = None
    if not generated:
        note = "nothing was generated, so there is no attention to show"
    elif attention is None:
        note = note or "attention was not computed"
    else:
        contexts = list(answer.contexts) or [
            hit.passage.text for hit in sorted(answer.hits, key=lambda hit: hit.rank) if hit.in_prompt
        ]
        try:
            found = attention.attend(
                answer.prompt, "".join(t.text for t in answer.tokens), contexts=contexts, question=answer.question
            )
            note = ""
        except RagError as exc:  # the view is still worth showing without attention
            log.info("no attention: %s", exc)
            note = f"attention unavailable: {exc}"
    return GenerationStep(
        text=answer.text,
        tokens=answer.tokens,
        ansi=ansi_text(answer.tokens, answer.text),
        generated=generated,
        seconds=answer.timings.get("generate", 0.0),
        attention=found,
        attention_note=note,
    )


# -- writing -----------------------------------------------------------------------------------------


def distances_markdown(retrieval: RetrievalStep) -> str:
    """The distance table as Markdown (GitHub and Discord both render the header line as bold text)."""
    shown = "every passage" if retrieval.complete else f"the {len(retrieval.rows)} nearest"
    lines = [
        f"# Distances from the question ({shown} of {retrieval.searched})",
        "",
        f"Euclidean distance between the question's vector and each passage's; lower is closer. "
        f"k = {retrieval.top_k}, threshold {retrieval.max_distance:.2f}.",
        "",
        "| rank | distance | file | span | retrieved | in prompt |",
        "|---:|---:|---|---|---|---|",
    ]
    for row in retrieval.rows:
        retrieved = f"hit {row.hit_rank}" if row.hit_rank is not None else ""
        if row.hit_rank is not None and row.distance > retrieval.max_distance:
            retrieved += " (too far)"
        where = f"{row.domain}/{row.path}".replace("|", "\\|")
        used = "yes" if row.in_prompt else ""
        lines.append(f"| {row.rank} | {row.distance:.4f} | {where} | {row.span} | {retrieved} | {used} |")
    if retrieval.note:
        lines += ["", retrieval.note]
    return "\n".join(lines) + "\n"


def write_pipeline(view: PipelineView, out: Path) -> list[Path]:
    """Write the view's files into `out` (created if needed); returns the paths written, in order.

    pipeline.json always; embedding_map.png and distances.md with retrieval; prompt.txt when a prompt was
    built; answer.ansi always; attention.png, or attention.txt saying why there is none.
    """
    from rag_engine.explain import figures

    files: list[tuple[str, bytes]] = [
        ("pipeline.json", json.dumps(view.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"))
    ]
    if view.query is not None and view.retrieval is not None:
        files.append(("embedding_map.png", figures.embedding_map_png(view)))
        files.append(("distances.md", distances_markdown(view.retrieval).encode("utf-8")))
    if view.prompt is not None:
        files.append(("prompt.txt", view.prompt.text.encode("utf-8")))
    files.append(("answer.ansi", (view.generation.ansi + "\n").encode("utf-8")))
    if view.generation.attention is not None:
        files.append(("attention.png", figures.attention_png(view.generation.attention)))
    else:
        files.append(("attention.txt", (view.generation.attention_note + "\n").encode("utf-8")))
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            path = out / name
            path.write_bytes(data)
            written.append(path)
        # A file of an earlier run into the same folder that this view has no data for would mislead.
        for name in sorted(PIPELINE_FILES - {name for name, _ in files}):
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise PipelineOutputError(f"could not write the pipeline files to {out}: {exc.strerror or exc}") from exc
    return written
