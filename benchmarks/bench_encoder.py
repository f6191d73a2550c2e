"""The encoder backends (`[embedding] backend`): torch float32, ONNX Runtime float32 and ONNX Runtime int8, on
the same passages and the same retrieval task, measured in one run.

1. Throughput: the first `--docs` SciFact train abstracts, loaded and chunked exactly as the engine does
   (`loading.load_document`, `chunking.chunk` with the shipped settings), embedded by each backend both through
   the engine's `SentenceTransformerEmbedder.embed` (the build) and through the bare `SentenceTransformer.encode`
   of the same loaded model (the raw encoder), with the same batch size and normalisation. The passages are
   cut into `--rounds` slices and each slice is timed for every backend in turn, so that load from other
   processes falls on all backends alike. Reported: passages/s, tokens/s (tokens as the model sees them, cut at
   its maximum sequence length) and each backend's ratio to torch, measured in this run (target for int8 ≥ 1.8).
2. The int8 kernel sets this CPU can run (arm64, avx2, avx512, avx512_vnni), timed on the first slice: what
   `onnx_export.int8_config` chooses should be the fastest.
3. Quality: SciFact train dense nDCG@10 (809 queries, 5,183 abstracts, one passage per document) for every
   backend, on the engine's own path (`rag_engine.evaluation.beir`: embedding cache keyed by backend, FAISS,
   `retrieval.search`), each corpus embedded in full by its backend. The default backend should be the
   fastest whose nDCG@10 is within 0.005 of torch's.

Writes benchmarks/results/bench_encoder.json. Run it alone: `flock /tmp/ragscope-bench.lock python -m
benchmarks.bench_encoder` (about half an hour on 2 cores, most of it the three SciFact corpora).
Usage: python -m benchmarks.bench_encoder [--docs 2000] [--rounds 4] [--data-dir DIR] [--no-quality]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.eval_scifact_train import SCIFACT, hardware
from rag_engine.config import Config, EmbeddingConfig, load_config
from rag_engine.engine import Engine
from rag_engine.evaluation.beir import build_space, embed_queries, load_beir, run_queries
from rag_engine.evaluation.metrics import evaluate
from rag_engine.ingest.chunking import chunk
from rag_engine.ingest.embedding import SentenceTransformerEmbedder, export_root, model_path, vector_backend
from rag_engine.ingest.loading import load_document
from rag_engine.ingest.onnx_export import INT8_CONFIGS, cpu_flags, ensure_export, int8_config, onnx_file
from rag_engine.search.fusion import Fusion

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "onnx", "onnx-int8")
INT8_TARGET = 1.8
NDCG_TOLERANCE = 0.005
LIBRARIES = ("sentence-transformers", "transformers", "torch", "optimum", "optimum-onnx", "onnx", "onnxruntime")


def scifact_passages(config: Config, docs: int, folder: Path) -> list[str]:
    """The first `docs` abstracts as the engine would index them: one Markdown file each, loaded and chunked."""
    texts: list[str] = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= docs:
                break
            row = json.loads(line)
            path = folder / f"{row['_id']}.md"
            path.write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
            document = load_document(path, path.name, config.loading)
            texts.extend(passage.text for passage in chunk(document, config.chunking))
    return texts


def model_tokens(embedder: SentenceTransformerEmbedder, texts: list[str]) -> int:
    """Tokens the model reads: its tokenizer's count with special tokens, cut at its maximum sequence length."""
    model = embedder.model
    encoded = model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    return sum(min(len(ids), model.max_seq_length) for ids in encoded)


def raw_encode(embedder: SentenceTransformerEmbedder, texts: list[str]) -> None:
    embedder.model.encode(
        texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )


def timed(action: Any) -> float:
    clock = time.perf_counter()
    action()
    return time.perf_counter() - clock


def throughput(
    embedders: dict[str, SentenceTransformerEmbedder], texts: list[str], tokens: int, rounds: int
) -> dict[str, Any]:
    seconds = {name: {"build": 0.0, "raw": 0.0} for name in embedders}
    size = -(-len(texts) // rounds)
    for start in range(0, len(texts), size):
        part = texts[start : start + size]
        for name, embedder in embedders.items():
            seconds[name]["build"] += timed(lambda e=embedder, p=part: e.embed(p))
            seconds[name]["raw"] += timed(lambda e=embedder, p=part: raw_encode(e, p))
        print(f"  slice {start // size + 1}/{rounds} done", flush=True)
    result: dict[str, Any] = {}
    for name, spent in seconds.items():
        result[name] = {
            "build_seconds": round(spent["build"], 2),
            "raw_seconds": round(spent["raw"], 2),
            "build_passages_per_second": round(len(texts) / spent["build"], 1),
            "raw_passages_per_second": round(len(texts) / spent["raw"], 1),
            "build_tokens_per_second": round(tokens / spent["build"], 0),
            "raw_tokens_per_second": round(tokens / spent["raw"], 0),
            "build_over_raw": round(spent["raw"] / spent["build"], 3),
            "build_ratio_to_torch": round(seconds["torch"]["build"] / spent["build"], 3),
            "raw_ratio_to_torch": round(seconds["torch"]["raw"] / spent["raw"], 3),
        }
    return result


def int8_kernels(config: EmbeddingConfig, texts: list[str]) -> dict[str, float]:
    """Passages/s of every int8 kernel set on `texts` (each exported once, like the backend does)."""
    import onnxruntime
    from sentence_transformers import SentenceTransformer

    rates: dict[str, float] = {}
    for kernels in INT8_CONFIGS:
        variant = f"onnx-int8-{kernels}"
        folder = ensure_export(export_root(config), config.model, model_path(config), variant)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        kwargs = {"file_name": onnx_file(variant), "provider": "CPUExecutionProvider", "session_options": options}
        model = SentenceTransformer(str(folder), backend="onnx", device="cpu", model_kwargs=kwargs)
        model.encode(texts[:32], batch_size=config.batch_size)  # warm-up: ONNX Runtime plans on the first run
        spent = timed(lambda m=model: m.encode(texts, batch_size=config.batch_size, normalize_embeddings=True))
        rates[kernels] = round(len(texts) / spent, 1)
        print(f"  int8 {kernels}: {rates[kernels]} passages/s", flush=True)
    return rates


def dense_quality(config: Config, backend: str) -> dict[str, Any]:
    """SciFact train dense metrics with `backend`, through the engine's evaluation path."""
    chosen = dataclasses.replace(config, embedding=dataclasses.replace(config.embedding, backend=backend))
    engine = Engine(chosen)
    data = load_beir(SCIFACT, "train")
    clock = time.perf_counter()
    space, source = build_space(data, engine, chosen.retrieval)
    corpus_seconds = time.perf_counter() - clock
    vectors = embed_queries(data, engine)
    run = run_queries(data, space, vectors, "dense", Fusion.from_config(chosen.retrieval))
    metrics = {name: round(value, 4) for name, value in evaluate(run, data.qrels).items()}
    return {
        "metrics": metrics,
        "corpus_seconds": round(corpus_seconds, 1),
        "documents_embedded": source.embedded,
        "documents_from_cache": source.reused,
        "queries": len(data.queries),
        "documents": len(data.documents),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="SciFact abstracts for the throughput passages")
    parser.add_argument("--rounds", type=int, default=4, help="slices the passages are timed in")
    parser.add_argument("--data-dir", type=Path, help="keep the embedding caches here (default: a temp folder)")
    parser.add_argument("--no-quality", action="store_true", help="skip the SciFact nDCG runs (~25 min)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_encoder.json")
    args = parser.parse_args()
    if not (SCIFACT / "qrels" / "train.tsv").is_file():
        print(f"SciFact train not found at {SCIFACT}", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="ragscope-bench-encoder-") as scratch:
        root = Path(scratch)
        base = load_config(REPO / "config.toml").with_paths(data_dir=args.data_dir or root / "data")
        (root / "docs").mkdir()
        texts = scifact_passages(base, args.docs, root / "docs")
        embedders: dict[str, SentenceTransformerEmbedder] = {}
        load_seconds: dict[str, float] = {}
        for backend in BACKENDS:
            clock = time.perf_counter()
            embedders[backend] = SentenceTransformerEmbedder(dataclasses.replace(base.embedding, backend=backend))
            load_seconds[backend] = round(time.perf_counter() - clock, 2)
            embedders[backend].embed(texts[:32])  # warm-up, outside the timings
        tokens = model_tokens(embedders["torch"], texts)
        print(f"{len(texts)} passages, {tokens} tokens, from {args.docs} abstracts", flush=True)
        speed = throughput(embedders, texts, tokens, args.rounds)
        for backend, row in speed.items():
            print(f"{backend}: {row}", flush=True)
        kernels = int8_kernels(base.embedding, texts[: max(1, len(texts) // args.rounds)])
        del embedders

        quality: dict[str, Any] = {}
        if not args.no_quality:
            for backend in BACKENDS:
                quality[backend] = dense_quality(base, backend)
                print(f"{backend}: {quality[backend]}", flush=True)

    chosen_kernels = int8_config()
    torch_ndcg = quality["torch"]["metrics"]["ndcg@10"] if quality else None
    floor = torch_ndcg - NDCG_TOLERANCE if torch_ndcg is not None else None
    within = [b for b in BACKENDS if floor is not None and quality[b]["metrics"]["ndcg@10"] >= floor]
    fastest = max(within, key=lambda b: speed[b]["build_passages_per_second"]) if within else None
    int8_ratio = speed["onnx-int8"]["build_ratio_to_torch"]
    result = {
        "passages": len(texts),
        "abstracts": args.docs,
        "tokens": tokens,
        "chunking": dataclasses.asdict(base.chunking),
        "batch_size": base.embedding.batch_size,
        "rounds": args.rounds,
        "load_seconds": load_seconds,
        "throughput": speed,
        "int8_kernels_passages_per_second": kernels,
        "int8_kernels_chosen": chosen_kernels,
        "int8_kernels_fastest": max(kernels, key=lambda k: kernels[k]),
        "scifact_train_dense": quality or None,
        "vectors": {b: vector_backend(dataclasses.replace(base.embedding, backend=b)) for b in BACKENDS},
        "targets": {"int8_build_ratio_to_torch": INT8_TARGET, "ndcg_tolerance": NDCG_TOLERANCE},
        "int8_meets_speed_target": int8_ratio >= INT8_TARGET,
        "backends_within_ndcg_tolerance": within,
        "fastest_within_tolerance": fastest,
        "hardware": {
            **hardware(),
            "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
            "onnxruntime_threads": os.cpu_count(),
        },
        "libraries": {name: _version(name) for name in LIBRARIES},
        "command": "flock /tmp/ragscope-bench.lock python -m benchmarks.bench_encoder",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"int8/torch build throughput {int8_ratio}× (target ≥ {INT8_TARGET}); fastest within tolerance: {fastest}")
    print(f"wrote {args.out}")
    return 0 if int8_ratio >= INT8_TARGET else 1


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
