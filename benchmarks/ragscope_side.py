"""The ragscope side of `compare_llamaindex`: one step per fresh process, its result as JSON in `--out`.

- `build`: a fresh data folder indexed through `Engine.index(domain)`, as `ragscope index` does (walk, read,
  chunk, embed every passage, FAISS + BM25, atomic save, embedding cache written). The model's load is timed
  apart from the build; the exact passage texts the model embedded go to `--texts` (JSON lines) for counting.
- `edit`: a fresh process over the built data folder after one file was rewritten: `Engine.index(domain)`
  loads the stored index, finds the changed file, embeds its new passages, removes the old ones by id and saves.
  The same passages are then embedded again, warm, to give "the file's embedding time" on its own.
- `query`: retrieval only (no language model), in one warm process: every question at k = `LATENCY_K` for the
  latency, then `QUALITY_DEPTH` deep for the quality run, per retrieval mode. The engine's watcher runs, as in
  the bot, so a query searches the current snapshot instead of first checking the folder; the same questions
  without a watcher (each query stats the folder first, as one-shot commands do) are timed too.

Not here: the cold `ragscope ask` (the real command, started by `compare_llamaindex.py`), any scoring.
Usage: python -m benchmarks.ragscope_side build|edit|query --knowledge DIR --data DIR --out FILE [...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.compare_common import DOMAIN, LATENCY_K, QUALITY_DEPTH, REPO
from rag_engine.config import Config, load_config
from rag_engine.engine import Engine
from rag_engine.records import IndexUpdate


def engine_for(args: argparse.Namespace) -> Engine:
    config: Config = load_config(REPO / "config.toml").with_paths(knowledge_dir=args.knowledge, data_dir=args.data)
    return Engine(config)


def describe(engine: Engine) -> dict[str, Any]:
    """What ragscope embedded with and how it cut the documents (for the fairness note of the report)."""
    config = engine.config
    return {
        "embedder": type(engine.embedder()).__name__,
        "embedding": dataclasses.asdict(config.embedding),
        "chunking": dataclasses.asdict(config.chunking),
        "retrieval_mode": config.retrieval.mode,
        "vector_index": type(engine.snapshot(DOMAIN).space.index).__name__,
    }


def timed_index(engine: Engine) -> tuple[float, IndexUpdate]:
    clock = time.perf_counter()
    update = engine.index(DOMAIN)
    return time.perf_counter() - clock, update


def build(args: argparse.Namespace) -> dict[str, Any]:
    engine = engine_for(args)
    clock = time.perf_counter()
    engine.embedder()
    model_seconds = time.perf_counter() - clock
    seconds, update = timed_index(engine)
    passages = list(engine.snapshot(DOMAIN).space.passages.values())
    with args.texts.open("w", encoding="utf-8") as out:
        for passage in passages:
            out.write(json.dumps(passage.text) + "\n")
    return {
        "model_load_seconds": round(model_seconds, 3),
        "build_seconds": round(seconds, 3),
        "update": update.to_dict(),
        "files": len(engine.snapshot(DOMAIN).stats.files),
        "passages": len(passages),
        **describe(engine),
    }


def edit(args: argparse.Namespace) -> dict[str, Any]:
    engine = engine_for(args)
    clock = time.perf_counter()
    engine.embedder()
    model_seconds = time.perf_counter() - clock
    seconds, update = timed_index(engine)
    if not update.applied or not update.changed:
        raise SystemExit(f"the edit of {args.file} was not applied: {update.to_dict()}")
    # The file's passages as they are now, embedded again on their own (warm: the model ran once already).
    name = Path(args.file).name
    texts = [p.text for p in engine.snapshot(DOMAIN).space.passages.values() if Path(p.path).name == name]
    embed_seconds = []
    for _ in range(3):
        clock = time.perf_counter()
        engine.embedder().embed(texts)
        embed_seconds.append(time.perf_counter() - clock)
    return {
        "file": args.file,
        "model_load_seconds": round(model_seconds, 3),
        "update_seconds": round(seconds, 3),
        "engine_seconds": round(update.seconds, 3),
        "file_embed_seconds": round(min(embed_seconds), 4),
        "file_passages": len(texts),
        "update": update.to_dict(),
    }


def query_loop(engine: Engine, queries: dict[str, str], mode: str) -> dict[str, Any]:
    latencies = []
    for text in queries.values():
        clock = time.perf_counter()
        engine.retrieve(text, DOMAIN, k=LATENCY_K, mode=mode)
        latencies.append(time.perf_counter() - clock)
    ranked = {
        query: [hit.passage.path for hit in engine.retrieve(text, DOMAIN, k=QUALITY_DEPTH, mode=mode)]
        for query, text in queries.items()
    }
    return {"latencies_s": latencies, "ranked_paths": ranked}


def query(args: argparse.Namespace) -> dict[str, Any]:
    queries: dict[str, str] = json.loads(args.queries.read_text(encoding="utf-8"))
    engine = engine_for(args)
    engine.index(DOMAIN)  # load the stored index (nothing changed since the build and the edits)
    default_mode = engine.config.retrieval.mode
    modes = list(dict.fromkeys(["dense", default_mode]))
    results: dict[str, Any] = {}
    with engine.watch(lambda _update: None):
        for mode in modes:  # warm-up: the first query pays for lazy set-up (model, BM25 tables)
            engine.retrieve(next(iter(queries.values())), DOMAIN, k=LATENCY_K, mode=mode)
        for mode in modes:
            results[mode] = query_loop(engine, queries, mode)
    # Without the watcher every query first checks the folder for changes (stat of every file).
    latencies = []
    for text in queries.values():
        clock = time.perf_counter()
        engine.retrieve(text, DOMAIN, k=LATENCY_K, mode=default_mode)
        latencies.append(time.perf_counter() - clock)
    return {"modes": results, "default_mode": default_mode, "unwatched_latencies_s": latencies, **describe(engine)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["build", "edit", "query"])
    parser.add_argument("--knowledge", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--texts", type=Path, help="build: where the embedded passage texts go (JSON lines)")
    parser.add_argument("--file", help="edit: the rewritten file, relative to the domain folder")
    parser.add_argument("--queries", type=Path, help="query: a JSON object of query id -> text")
    args = parser.parse_args()
    step = {"build": build, "edit": edit, "query": query}[args.step]
    result = step(args)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
