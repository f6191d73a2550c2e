"""Retrieval quality on a BEIR-format folder, measured through the engine's own embedding and search path.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`) and
`qrels/<split>.tsv` (query-id, corpus-id, score, after a header line). As the published protocol (BEIR, MTEB)
does, each document is one passage, `title + " " + text` stripped, never chunked. The documents go through the
engine's embedding cache and `Embedder` (`VectorSource`, so a second run embeds nothing), into a `FaissIndex`
and a `Bm25Index` like any domain's, and every query with judgements is answered by `retrieval.search` (the
function `Engine.retrieve` calls) 100 deep; MMR re-ranking (`--rerank mmr`) is off unless asked for or set in
`retrieval.mmr_lambda`. `metrics.py` scores the run as trec_eval would.

Not here: the terminal command's options, progress bars and printing (`ragscope/eval_commands.py`) and answer
quality (`qa.py`).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.config import RetrievalConfig
from rag_engine.engine import Engine
from rag_engine.errors import BeirDataError
from rag_engine.evaluation.metrics import Run, evaluate
from rag_engine.ingest.incremental import Progress, VectorSource
from rag_engine.records import Passage
from rag_engine.search.fusion import Fusion
from rag_engine.search.index import FaissIndex
from rag_engine.search.lexical import Bm25Index
from rag_engine.search.retrieval import SearchSpace, search

# Recall@100 needs the 100 best of every query.
DEPTH = 100
# nDCG@10 and MRR@10 read the first 10: with MMR on, these are the ones MMR picks.
HEAD = 10
# Queries embedded per call: a progress bar that moves, batches as large as the embedder's own.
QUERY_GROUP = 64


@dataclass(frozen=True)
class BeirData:
    """One split of a BEIR dataset: passage text per document id, and the queries that have judgements."""

    name: str
    split: str
    documents: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BeirDataError(f"{path.name} line {number} is not JSON: {exc.msg}") from exc
                if not isinstance(row, dict) or "_id" not in row:
                    raise BeirDataError(f"{path.name} line {number} has no _id")
                yield row
    except FileNotFoundError as exc:
        raise BeirDataError(f"{path} not found (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BeirDataError(f"cannot read {path}: {exc}") from exc


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise BeirDataError(f"no qrels for split {path.stem!r} (found: {', '.join(splits) or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows, None)  # the header
        for number, row in enumerate(rows, start=2):
            if not row:
                continue
            try:
                query, document, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as exc:
                raise BeirDataError(f"{path.name} line {number} is not query-id, corpus-id, score") from exc
            qrels.setdefault(query, {})[document] = score
    return qrels


def passage_text(title: str, text: str) -> str:
    """A BEIR document as one passage, as BEIR and MTEB embed it."""
    return f"{title} {text}".strip()


def load_beir(folder: Path, split: str = "test", limit_queries: int | None = None) -> BeirData:
    """Read one split; only queries with judgements are kept (in file order), the first `limit_queries` of them."""
    if not folder.is_dir():
        raise BeirDataError(f"{folder} is not a folder (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/)")
    qrels = _qrels(folder / "qrels" / f"{split}.tsv")
    documents = {
        str(row["_id"]): passage_text(str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _json_lines(folder / "corpus.jsonl")
    }
    queries: dict[str, str] = {}
    for row in _json_lines(folder / "queries.jsonl"):
        if limit_queries is not None and len(queries) >= limit_queries:
            break
        if str(row["_id"]) in qrels:
            queries[str(row["_id"])] = str(row.get("text") or "")
    if not documents or not queries:
        raise BeirDataError(f"{folder}: no documents, or no query of split {split!r} has judgements")
    kept = {query: qrels[query] for query in queries}
    return BeirData(folder.resolve().name, split, documents, queries, kept)


def build_space(
    data: BeirData, engine: Engine, retrieval: RetrievalConfig, progress: Progress | None = None
) -> tuple[SearchSpace, VectorSource]:
    """The corpus as one search space (passage path = document id), embedded through the engine's embedding
    cache; the `VectorSource` says how many documents were embedded and how many came from the cache."""
    document_ids = list(data.documents)
    texts = [data.documents[d] for d in document_ids]
    source = VectorSource(engine.embedder, engine.embedding_cache(), use_cache=True)
    vectors = source.vectors(texts, None, progress)
    index = FaissIndex(vectors.shape[1])
    index.add(range(len(texts)), vectors)
    passages = {
        i: Passage(id=i, path=d, text=t, line_start=1, line_end=1)
        for i, (d, t) in enumerate(zip(document_ids, texts, strict=True))
    }
    lexical = Bm25Index.build(dict(enumerate(texts)), retrieval.bm25_k1, retrieval.bm25_b)
    return SearchSpace(data.name, index, passages, lexical), source


def embed_queries(data: BeirData, engine: Engine, progress: Progress | None = None) -> npt.NDArray[np.float32]:
    """One row per query of `data.queries`, through the engine's embedder (queries are not cached)."""
    texts = list(data.queries.values())
    embedder = engine.embedder()
    rows = []
    for start in range(0, len(texts), QUERY_GROUP):
        rows.append(embedder.embed(texts[start : start + QUERY_GROUP]))
        if progress:
            progress(min(start + QUERY_GROUP, len(texts)), len(texts))
    return np.vstack(rows).astype(np.float32)


@dataclass(frozen=True)
class Rerank:
    """MMR re-ranking as the engine does it: from the `candidates` best of the mode, pick `HEAD` passages
    greedily by lam·relevance − (1 − lam)·similarity to those already picked. `lam` = 1 turns it off."""

    lam: float = 1.0
    candidates: int = 20

    @property
    def on(self) -> bool:
        return self.lam < 1.0

    @classmethod
    def from_config(cls, config: RetrievalConfig) -> Rerank:
        return cls(config.mmr_lambda, config.mmr_candidates)


def run_queries(
    data: BeirData,
    space: SearchSpace,
    query_vectors: npt.NDArray[np.float32],
    mode: str,
    fusion: Fusion,
    progress: Progress | None = None,
    rerank: Rerank | None = None,
) -> Run:
    """Each query's 100 best documents with the score the mode ranked them by.

    With MMR on, the first `HEAD` are exactly what the engine would give a prompt with k = 10 (`search` with
    MMR: MMR chooses which, the mode orders them) and the rest follow in the mode's order; the run then scores
    each document by its position, since trec_eval ranks by score."""
    run: dict[str, dict[str, float]] = {}
    for done, (query, text) in enumerate(data.queries.items(), start=1):
        vector = query_vectors[done - 1]
        hits = search(vector, [space], DEPTH, text=text, mode=mode, fusion=fusion)
        if rerank is not None and rerank.on:
            head = search(vector, [space], HEAD, rerank.lam, rerank.candidates, text=text, mode=mode, fusion=fusion)
            chosen = {hit.passage.path for hit in head}
            ranked = [*head, *(hit for hit in hits if hit.passage.path not in chosen)][:DEPTH]
            run[query] = {hit.passage.path: float(DEPTH - position) for position, hit in enumerate(ranked)}
        else:
            run[query] = {hit.passage.path: hit.score for hit in hits}
        if progress:
            progress(done, len(data.queries))
    return run


@dataclass(frozen=True)
class RetrievalReport:
    metrics: dict[str, float]
    queries: int
    documents: int
    mode: str
    split: str
    fusion: Fusion | None
    rerank: Rerank | None
    embedded: int
    reused: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `ragscope eval retrieval --json`."""
        fusion = self.fusion
        return {
            **{name: round(value, 5) for name, value in self.metrics.items()},
            "queries": self.queries,
            "documents": self.documents,
            "mode": self.mode,
            "split": self.split,
            "fusion": None
            if fusion is None
            else {
                "method": fusion.method,
                "weight": fusion.weight,
                "rrf_k": fusion.rrf_k,
                "candidates": fusion.candidates,
            },
            "rerank": None
            if self.rerank is None
            else {"method": "mmr", "lambda": self.rerank.lam, "candidates": self.rerank.candidates},
            "embedded": self.embedded,
            "reused": self.reused,
            "seconds": round(self.seconds, 2),
        }


def evaluate_beir(
    data: BeirData,
    engine: Engine,
    mode: str,
    retrieval: RetrievalConfig | None = None,
    progress: Callable[[str, str], Progress | None] | None = None,
) -> RetrievalReport:
    """Embed (or take from the cache) the corpus, search every query in `mode` and score the run.
    `retrieval` (default: the engine's) gives the BM25, fusion and MMR settings; `progress(label, unit)` may give
    a callback per phase."""
    started = time.perf_counter()
    retrieval = retrieval or engine.config.retrieval
    fusion = Fusion.from_config(retrieval)
    rerank = Rerank.from_config(retrieval)
    space, source = build_space(data, engine, retrieval, progress("embedding corpus", "doc") if progress else None)
    vectors = embed_queries(data, engine, progress("embedding queries", "query") if progress else None)
    searching = progress(f"searching ({mode}{', mmr' if rerank.on else ''})", "query") if progress else None
    run = run_queries(data, space, vectors, mode, fusion, searching, rerank)
    return RetrievalReport(
        metrics=evaluate(run, data.qrels),
        queries=len(data.queries),
        documents=len(data.documents),
        mode=mode,
        split=data.split,
        fusion=fusion if mode == "hybrid" else None,
        rerank=rerank if rerank.on else None,
        embedded=source.embedded,
        reused=source.reused,
        seconds=time.perf_counter() - started,
    )
