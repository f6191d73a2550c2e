"""Query cost at 100,000 passages with hybrid retrieval, against embedding the question alone, in the same run.

Issue 16's target: the retrieval of one question (embed it, dense kNN, BM25, fusion: `Engine.retrieve` without the
LLM) should cost at most 1.2× embedding the question alone, at 100k passages with `mode = "hybrid"`.

What is measured, for each of the SciFact train queries (the first `--queries`):
- **embed**: the engine's embedder (`[embedding] backend`, int8 by default) on the question alone;
- **retrieve**: the same embedding, then `search.retrieval.search` in the configured mode over one domain of
  `--passages` passages (the index the engine would choose at that size: IVF above `approximate_above_passages`),
  BM25 on the real analyser and the configured fusion: what `Engine.retrieve` runs after the index is loaded.
Ratio = median retrieve ÷ median embed. Both alternate per query, so a busy machine slows both.

The corpus: BM25 needs real text, and embedding 100k passages would take half an hour, so the passages' texts are
real and their vectors synthetic. Texts: the SciFact abstracts split into sentences; passage i takes about 800
characters of consecutive sentences from one abstract and one or two from another (so there are more distinct
passages than abstracts, with SciFact's vocabulary and term frequencies). Vectors: `bench_ann.corpus`, shaped like
MiniLM embeddings of SciFact passages (its docstring). The queries' vectors are real (the embedder's).

Usage: python -m benchmarks.bench_query [--passages 100000] [--queries 200] [--mode hybrid] [--json]
Run it under `flock /tmp/ragscope-bench.lock`. Writes benchmarks/results/bench_query.json. Exits 1 if the ratio
is above the target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_ann import corpus
from benchmarks.bench_cold_start import machine
from rag_engine.config import load_config
from rag_engine.ingest.embedding import SentenceTransformerEmbedder, embedding_title
from rag_engine.records import Passage
from rag_engine.search.approximate import fitted
from rag_engine.search.fusion import Fusion
from rag_engine.search.index import FaissIndex
from rag_engine.search.lexical import Bm25Index
from rag_engine.search.retrieval import SearchSpace, search

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "bench_query.json"
SCIFACT = Path(os.environ.get("RAGSCOPE_SCIFACT", REPO.parent / "shared" / "data" / "scifact-train"))
TARGET_RATIO = 1.2
PASSAGE_CHARS = 800
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def passage_texts(count: int, seed: int = 3) -> list[str]:
    """`count` passages of real SciFact sentences (see the module docstring)."""
    abstracts = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            sentences = [s for s in SENTENCE.split(row["text"]) if s.strip()]
            if sentences:
                abstracts.append(sentences)
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(count):
        own = abstracts[int(rng.integers(len(abstracts)))]
        start = int(rng.integers(len(own)))
        chosen: list[str] = []
        for sentence in own[start:] + own[:start]:
            if sum(len(s) for s in chosen) >= PASSAGE_CHARS * 0.75:
                break
            chosen.append(sentence)
        other = abstracts[int(rng.integers(len(abstracts)))]
        chosen.extend(other[: int(rng.integers(1, 3))])
        texts.append(" ".join(chosen)[: PASSAGE_CHARS + 200])
    return texts


def queries(count: int) -> list[str]:
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for _, line in zip(range(count), lines, strict=False)]


def build_space(texts: list[str], approximate_above: int, k1: float, b: float) -> tuple[SearchSpace, dict[str, Any]]:
    vectors, _ = corpus(len(texts), 1)
    ids = np.arange(len(texts), dtype=np.int64) * 7 + 1
    started = time.perf_counter()
    exact = FaissIndex(vectors.shape[1])
    exact.add(ids, vectors)
    index = fitted(exact, approximate_above)
    dense_seconds = time.perf_counter() - started
    passages = {int(i): Passage(int(i), f"p{int(i) // 70}.md", text, 1, 1) for i, text in zip(ids, texts, strict=True)}
    started = time.perf_counter()
    lexical = Bm25Index.build({i: p.text for i, p in passages.items()}, k1, b)
    lexical_seconds = time.perf_counter() - started
    built = {"index": type(index).__name__, "dense_build_seconds": round(dense_seconds, 1),
             "bm25_build_seconds": round(lexical_seconds, 1)}  # fmt: skip
    return SearchSpace("bench", index, passages, lexical), built


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--mode", default="hybrid", choices=("dense", "bm25", "hybrid"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = load_config(REPO / "config.toml")
    retrieval = config.retrieval
    load_before = os.getloadavg()
    print(f"building {args.passages:,} passages ...", file=sys.stderr)
    space, built = build_space(passage_texts(args.passages), config.index.approximate_above_passages,
                               retrieval.bm25_k1, retrieval.bm25_b)  # fmt: skip
    embedder = SentenceTransformerEmbedder(config.embedding)
    fusion = Fusion.from_config(retrieval)
    questions = queries(args.queries)
    embedder.embed(questions[:4])  # warm: the first calls pay one-off allocations
    embed_seconds, retrieve_seconds, search_seconds = [], [], []
    for question in questions:
        started = time.perf_counter()
        embedder.embed([question])
        embed_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        vector = embedder.embed([question])[0]
        middle = time.perf_counter()
        search(vector, [space], retrieval.top_k, retrieval.mmr_lambda, retrieval.mmr_candidates,
               text=question, mode=args.mode, fusion=fusion)  # fmt: skip
        retrieve_seconds.append(time.perf_counter() - started)
        search_seconds.append(time.perf_counter() - middle)
    embed, retrieve = statistics.median(embed_seconds), statistics.median(retrieve_seconds)
    ratio = retrieve / embed

    def ms(values: list[float], q: float) -> float:
        return round(float(np.quantile(values, q)) * 1000, 2)

    result = {
        "machine": machine() | {"load_average_before_build": [round(x, 2) for x in load_before]},
        "embedding": embedding_title(config.embedding),
        "passages": args.passages,
        "queries": len(questions),
        "mode": args.mode,
        "fusion": retrieval.fusion,
        "top_k": retrieval.top_k,
        "mmr_lambda": retrieval.mmr_lambda,
        **built,
        "embed_ms": {"p50": ms(embed_seconds, 0.5), "p95": ms(embed_seconds, 0.95)},
        "retrieve_ms": {"p50": ms(retrieve_seconds, 0.5), "p95": ms(retrieve_seconds, 0.95)},
        "search_only_ms": {"p50": ms(search_seconds, 0.5), "p95": ms(search_seconds, 0.95)},
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }
    if not args.no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.passages:,} passages, {args.mode}: retrieve p50 {result['retrieve_ms']['p50']} ms, embed alone "
              f"{result['embed_ms']['p50']} ms, ratio {ratio:.2f} (target ≤ {TARGET_RATIO}); search step "
              f"{result['search_only_ms']['p50']} ms")  # fmt: skip
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
