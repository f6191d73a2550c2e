"""Building the pipeline view of one finished `Answer`: its trace and the current snapshots of the domains it
searched, turned into the five step records of `view.py`.

Retrieval and generation are never run again here: the distances are recomputed from the stored vectors (the
table is a check on retrieval as much as a picture of it), the 2-D map is a PCA of those vectors, and only the
attention model reads the prompt and answer once more. That model is asked for (and so created) only when the
answer generated something. `Engine.explain(answer)` is the way in; it hands over its config, its snapshots
and its attention model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rag_engine.config import Config, RetrievalConfig
from rag_engine.errors import RagError
from rag_engine.explain.view import (
    AttentionLike,
    AttentionSource,
    DistanceRow,
    DocumentsStep,
    ExamplePassage,
    GenerationStep,
    MapPoint,
    PipelineView,
    PromptStep,
    QueryStep,
    RetrievalStep,
)
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.records import Answer, AnswerToken, Hit, Passage

log = logging.getLogger(__name__)

# Up to this many searched passages the table lists them all; beyond, the k nearest plus the next few.
TABLE_ALL_UP_TO = 40
TABLE_EXTRA_ROWS = 10
EXAMPLE_PASSAGES = 3
EXAMPLE_CHARS = 160
# Discord's ```ansi blocks understand the basic SGR codes: green for words also found in the context.
ANSI_GREEN = "\u001b[32m"
ANSI_RESET = "\u001b[0m"
# Step 5's note when attention was not asked for (`Engine.explain(answer, attention=False)`).
NOT_ASKED_NOTE = "attention was not computed (--no-attention)"

Snapshots = Callable[[str], DomainIndex]
AttentionFactory = Callable[[], AttentionSource]


@dataclass(frozen=True)
class _Searched:
    """The searched domains' passages in a fixed order (domain, path, position) and their stored vectors."""

    keys: list[tuple[str, Passage]]
    vectors: npt.NDArray[np.float64]
    files: int
    dimension: int


def build_view(
    answer: Answer,
    config: Config,
    snapshot: Snapshots,
    attention: AttentionFactory | None,
    *,
    attention_note: str = NOT_ASKED_NOTE,
) -> PipelineView:
    """The view of `answer`, drawn from its trace and the current snapshots (`snapshot(domain)`) of the
    domains it searched.

    `attention` makes (or returns the already made) attention model; it is called only when the answer
    generated something. `None` leaves step 5 without attention and `attention_note` says why. A model that
    cannot be made or cannot give attention (a `RagError`) leaves a note instead of failing the view. If the
    index changed since the answer, retrieved passages that are gone are named in step 3's note.
    """
    documents = query = retrieval = None
    if answer.used_rag:
        if not answer.query_vector:
            raise ValueError("this answer used retrieval but carries no query vector")
        searched = _searched(snapshot, answer.searched)
        documents = _documents(answer, searched)
        query = _query(answer, searched)
        retrieval = _retrieval(answer, searched, config.retrieval)
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
        prompt=_prompt(answer, config.generation.max_answer_tokens),
        generation=_generation(answer, attention, attention_note),
    )


def _searched(snapshot_of: Snapshots, domains: Sequence[str]) -> _Searched:
    keys: list[tuple[str, Passage]] = []
    blocks: list[npt.NDArray[np.float32]] = []
    files = 0
    dimension = 0
    for name in domains:
        snapshot = snapshot_of(name)
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


def _retrieval(answer: Answer, searched: _Searched, settings: RetrievalConfig) -> RetrievalStep:
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
        mode=answer.mode,
        ranking=ranking(answer.mode, settings, answer.top_k, len(order)),
    )


def ranking(mode: str, settings: RetrievalConfig, top_k: int, searched: int) -> str:
    """One sentence on what ranked the `top_k` passages out of `searched` in `mode`, with the settings that
    did: the Euclidean distance only in dense mode; BM25 word scores; or both lists and how they were fused."""
    if mode == "bm25":
        what = (
            f"The {top_k} best of {searched} passages by BM25 word scores (the question's words in each passage); "
            "their Euclidean distances are shown too, but did not rank them"
        )
    elif mode == "hybrid":
        if settings.fusion == "rrf":
            fused = f"reciprocal rank fusion, 1 / ({settings.rrf_k:g} + rank) from each list"
        else:
            weight = settings.blend_weight
            fused = f"a blend of their min-max-normalised scores ({weight:.2f} kNN, {1 - weight:.2f} BM25)"
        what = (
            f"The {top_k} best of {searched} passages: the kNN list (Euclidean distance) and the BM25 list "
            f"(word scores) fused by {fused}"
        )
    else:
        what = f"The {top_k} nearest of {searched} passages by Euclidean distance (k nearest neighbours)"
    if settings.mmr_lambda < 1.0:
        what += f", then re-picked for diversity by maximal marginal relevance (λ = {settings.mmr_lambda:.2f})"
    return what + "."


def _prompt(answer: Answer, max_answer_tokens: int) -> PromptStep | None:
    if not answer.prompt:
        return None
    used = sorted((hit for hit in answer.hits if hit.in_prompt), key=lambda hit: hit.rank)
    return PromptStep(
        text=answer.prompt,
        tokens=answer.prompt_tokens,
        context_window=answer.context_tokens,
        max_answer_tokens=max_answer_tokens,
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


def _generation(answer: Answer, attention: AttentionFactory | None, note: str) -> GenerationStep:
    generated = bool(answer.prompt and answer.tokens)
    found: AttentionLike | None = None
    if not generated:
        note = "nothing was generated, so there is no attention to show"
    elif attention is not None:
        contexts = list(answer.contexts) or [
            hit.passage.text for hit in sorted(answer.hits, key=lambda hit: hit.rank) if hit.in_prompt
        ]
        try:
            found = attention().attend(
                answer.prompt, "".join(t.text for t in answer.tokens), contexts=contexts, question=answer.question
            )
            note = ""
        # The view is still worth showing without attention. ImportError: a package the model needs is missing.
        except (RagError, ImportError) as exc:
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
