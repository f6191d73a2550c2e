"""Dense, BM25 and hybrid retrieval on SciFact train (809 queries, 5,183 abstracts), and an honest choice of the
hybrid blend weight.

Everything runs through the same functions as `ragscope eval retrieval` (`rag_engine.evaluation.beir`): the
corpus is embedded once through the engine's embedding cache (a later run embeds nothing), the queries once,
and each mode or fusion setting is a run of `retrieval.search` over the same indexes.

The blend weight (the dense share of the fused score) is chosen on one half of the queries (even positions in
queries.jsonl) and reported on the other half (odd positions), which played no part in choosing it; the RRF
constant is chosen the same way, for comparison. The full-train rows use the shipped config.toml, whose
`retrieval.blend_weight` is the chosen weight. Writes benchmarks/results/eval_scifact_train.json.

Usage: python -m benchmarks.eval_scifact_train [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_engine.config import load_config
from rag_engine.engine import Engine
from rag_engine.evaluation.beir import BeirData, Rerank, build_space, embed_queries, load_beir, run_queries
from rag_engine.evaluation.metrics import Run, evaluate
from rag_engine.ingest.embedding import bundled_model_path
from rag_engine.search.fusion import Fusion

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact-train"
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
RRF_KS = [1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 100.0]


def hardware() -> dict[str, Any]:
    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def reference_dense(data: BeirData) -> dict[str, float]:
    """The published protocol without any of our code but the metrics: plain sentence-transformers encodes every
    document and query (unit vectors), numpy ranks all documents by cosine, exactly."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    document_ids = list(data.documents)
    documents = model.encode([data.documents[d] for d in document_ids], normalize_embeddings=True)
    queries = model.encode(list(data.queries.values()), normalize_embeddings=True)
    run: Run = {}
    for query, scores in zip(data.queries, queries @ documents.T, strict=True):
        best = np.argsort(-scores, kind="stable")[:100]
        run[query] = {document_ids[i]: float(scores[i]) for i in best}
    return evaluate(run, data.qrels)


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in metrics.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="where the embedding cache lives (default: the config's)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "eval_scifact_train.json")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the plain sentence-transformers + numpy run (~6 min)"
    )
    args = parser.parse_args()
    if not (SCIFACT / "qrels" / "train.tsv").is_file():
        print(f"SciFact train not found at {SCIFACT}", file=sys.stderr)
        return 1
    config = load_config(REPO / "config.toml").with_paths(data_dir=args.data_dir)
    engine = Engine(config)
    retrieval = config.retrieval
    data = load_beir(SCIFACT, "train")
    seconds: dict[str, float] = {}

    clock = time.perf_counter()
    space, source = build_space(data, engine, retrieval)
    seconds["corpus"] = time.perf_counter() - clock
    clock = time.perf_counter()
    vectors = embed_queries(data, engine)
    seconds["queries"] = time.perf_counter() - clock

    def run(mode: str, fusion: Fusion, positions: list[int] | None = None, rerank: Rerank | None = None) -> Run:
        rows = positions if positions is not None else list(range(len(data.queries)))
        ids = list(data.queries)
        subset = dataclasses.replace(data, queries={ids[i]: data.queries[ids[i]] for i in rows})
        return run_queries(subset, space, vectors[rows], mode, fusion, rerank=rerank)

    configured = Fusion.from_config(retrieval)
    rrf60 = dataclasses.replace(configured, method="rrf", rrf_k=60.0)
    full: dict[str, Any] = {}
    for name, mode, fusion in [
        ("dense", "dense", configured),
        ("bm25", "bm25", configured),
        ("hybrid", "hybrid", configured),
        ("hybrid_rrf60", "hybrid", rrf60),
    ]:
        clock = time.perf_counter()
        full[name] = rounded(evaluate(run(mode, fusion), data.qrels))
        seconds[f"search_{name}"] = time.perf_counter() - clock
        print(name, full[name], f"{seconds[f'search_{name}']:.1f}s", flush=True)
    # MMR (`--rerank mmr`) as the engine would apply it to a k = 10 prompt: diversity at the cost of relevance?
    mmr = Rerank(lam=0.7, candidates=retrieval.mmr_candidates)
    for name, mode in [("dense_mmr0.7", "dense"), ("hybrid_mmr0.7", "hybrid")]:
        full[name] = rounded(evaluate(run(mode, configured, rerank=mmr), data.qrels))
        print(name, full[name], flush=True)

    tune = list(range(0, len(data.queries), 2))
    held = list(range(1, len(data.queries), 2))
    by_weight = {
        w: evaluate(run("hybrid", dataclasses.replace(configured, method="blend", weight=w), tune), data.qrels)[
            "ndcg@10"
        ]
        for w in WEIGHTS
    }
    best_weight = max(WEIGHTS, key=lambda w: (round(by_weight[w], 4), -abs(w - 0.5)))
    by_k = {
        k: evaluate(run("hybrid", dataclasses.replace(rrf60, rrf_k=k), tune), data.qrels)["ndcg@10"] for k in RRF_KS
    }
    best_k = max(RRF_KS, key=lambda k: (round(by_k[k], 4), k))
    held_out = {
        "dense": rounded(evaluate(run("dense", configured, held), data.qrels)),
        "bm25": rounded(evaluate(run("bm25", configured, held), data.qrels)),
        "hybrid_blend_tuned": rounded(
            evaluate(
                run("hybrid", dataclasses.replace(configured, method="blend", weight=best_weight), held), data.qrels
            )
        ),
        "hybrid_rrf_tuned": rounded(
            evaluate(run("hybrid", dataclasses.replace(rrf60, rrf_k=best_k), held), data.qrels)
        ),
        "hybrid_rrf60": rounded(evaluate(run("hybrid", rrf60, held), data.qrels)),
    }
    print("held out", held_out, flush=True)

    reference: dict[str, Any] | None = None
    if not args.no_reference:
        clock = time.perf_counter()
        plain = rounded(reference_dense(data))
        seconds["reference"] = time.perf_counter() - clock
        reference = {
            "metrics": plain,
            "how": "plain SentenceTransformer.encode (normalised) + numpy exact cosine ranking, same metrics code",
            "dense_minus_reference": {name: round(full["dense"][name] - value, 4) for name, value in plain.items()},
        }
        print("reference (plain sentence-transformers + numpy)", plain, flush=True)

    result = {
        "dataset": "BEIR SciFact, train split (../shared/data/scifact-train)",
        "queries": len(data.queries),
        "documents": len(data.documents),
        "model": config.embedding.model,
        "protocol": "one passage per document (title + ' ' + text); exact search 100 deep; trec_eval-style metrics",
        "bm25": {
            "k1": retrieval.bm25_k1,
            "b": retrieval.bm25_b,
            "analyzer": "lowercase, Lucene English stop words, Snowball English stemmer",
        },
        "fusion_configured": dataclasses.asdict(configured),
        "full_train": full,
        "dense_reference": reference,
        "tuning": {
            "tune_queries": len(tune),
            "held_out_queries": len(held),
            "split": "even positions in queries.jsonl tune, odd positions are held out",
            "blend_ndcg_on_tune_half": {str(w): round(v, 4) for w, v in by_weight.items()},
            "chosen_blend_weight": best_weight,
            "rrf_ndcg_on_tune_half": {str(k): round(v, 4) for k, v in by_k.items()},
            "chosen_rrf_k": best_k,
        },
        "held_out_half": held_out,
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
        "embedded": source.embedded,
        "reused": source.reused,
        "hardware": hardware(),
        "commands": [
            f"ragscope eval retrieval --beir ../shared/data/scifact-train --split train --mode {mode}"
            for mode in ("dense", "bm25", "hybrid")
        ]
        + [
            "ragscope eval retrieval --beir ../shared/data/scifact-train --split train --mode dense --rerank mmr",
            "python -m benchmarks.eval_scifact_train",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
