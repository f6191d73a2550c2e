"""Big domains on an approximate index: the engine's IVF index (and an HNSW candidate) against exact FAISS search
on the same vectors, measured in the same run.

For each size (100,000 and 1,000,000 passages by default) the baseline is the engine's exact `FaissIndex`
(IndexFlatL2 under an id map): its build time, memory and median single-query search time, and its top 10 and
top 100 for 1,000 queries, which define recall. Against it:

- `IvfIndex` (rag_engine/search/approximate.py, what the engine uses): build (training the lists + adding), memory,
  the median "search step" (`search(query, 10)` and `vectors(ids)` of the hits, what `retrieval.nearest` asks of
  an index), recall@10 and recall@100 at the engine's probes, then a sweep of probes; and the cost of updates
  (removing and adding 1,000 passages, `copy()`), and of crossing the threshold (`fitted` on 50,000 exact).
- HNSW (FAISS IndexHNSWFlat, M=32, efConstruction=40), the alternative that was not chosen: build, memory, a
  sweep of efSearch. FAISS's HNSW cannot remove, so deletions would be tombstones and compacting them a rebuild
  of the whole graph (its build time).

The vectors are synthetic but shaped like real sentence embeddings: random unit vectors are the worst case for
any approximate index (no structure at all), which real embeddings are not. Each passage is the normalised sum
of a shared direction (embeddings are anisotropic), its topic's and subtopic's directions, its document's
direction (a document has 1–several passages, geometric, mean 2.5) and its own noise, with weights 0.35, 0.42,
0.34, 0.62, 0.48; every random direction has a decaying spectrum (variance of coordinate i ∝ i^-0.8), and
subtopic sizes are log-normal. Subtopics ≈ 3·√n, five per topic. The weights were fitted so that 4,000 synthetic
passages match all-MiniLM-L6-v2 embeddings of 4,000 800-character passages of SciFact abstracts (`REAL_STATS`,
measured once; `calibration` in the results holds both). Queries are passages of 1,000 new documents from the
same mixture (none of their siblings is indexed, so a query's neighbours are other documents of its subtopic).

Usage: python -m benchmarks.bench_ann [--sizes 100000,1000000] [--queries 1000] [--skip-hnsw] [--json]
Run it under `flock /tmp/ragscope-bench.lock`: both sizes take about 25 minutes on 2 cores (HNSW's 1M build is 6).
Exits 1 when a target is missed: recall@10 ≥ 0.99 at every size, and at 1M a median search step ≤ 5 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.config import IndexConfig
from rag_engine.search.approximate import IvfIndex, fitted, probes_for
from rag_engine.search.index import FaissIndex

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "bench_ann.json"
DIMENSION = 384
Matrix = npt.NDArray[np.float32]

# Component weights: shared direction, topic, subtopic, document, passage noise (see the module docstring).
WEIGHTS = (0.35, 0.42, 0.34, 0.62, 0.48)
SPECTRUM_DECAY = 0.8
PASSAGES_PER_DOCUMENT = 2.5
SUBTOPICS_PER_TOPIC = 5
# all-MiniLM-L6-v2 on 4,000 SciFact passages (800 characters every 650): cosine of random pairs (mean, sd), of
# each passage's 1st, 10th and 100th nearest neighbour (mean), the norm of the mean vector, and how many
# principal components hold 50% and 90% of the variance.
REAL_STATS = {
    "pair_cosine_mean": 0.120,
    "pair_cosine_sd": 0.122,
    "nn1_cosine": 0.749,
    "nn10_cosine": 0.484,
    "nn100_cosine": 0.349,
    "mean_vector_norm": 0.346,
    "components_50pct": 36,
    "components_90pct": 172,
}
TARGET_RECALL = 0.99
TARGET_P50_MS_AT_1M = 5.0
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
LATENCY_QUERIES = 200
UPDATE_PASSAGES = 1_000


def _directions(rng: np.random.Generator, count: int) -> Matrix:
    """Random unit directions with a decaying spectrum (real embeddings use a few hundred dimensions unevenly)."""
    rows = rng.standard_normal((count, DIMENSION), dtype=np.float32)
    rows *= (np.arange(1, DIMENSION + 1, dtype=np.float32) ** (-SPECTRUM_DECAY / 2))[None, :]
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


class Mixture:
    """The synthetic corpus: topics and subtopics fixed by the seed; documents and passages drawn in chunks."""

    def __init__(self, passages: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.subtopics = max(10, int(3 * np.sqrt(passages)))
        topics = max(2, self.subtopics // SUBTOPICS_PER_TOPIC)
        self.shared = _directions(rng, 1)[0]
        topic_of = rng.integers(0, topics, self.subtopics)
        a, b, c = WEIGHTS[:3]
        # The part every passage of a subtopic has in common.
        self.base = a * self.shared + b * _directions(rng, topics)[topic_of] + c * _directions(rng, self.subtopics)
        weights = rng.lognormal(0.0, 1.0, self.subtopics)
        self.weights = weights / weights.sum()

    def documents(self, rng: np.random.Generator, passages: int, per_document: float) -> Matrix:
        out = np.empty((passages, DIMENSION), np.float32)
        filled = 0
        while filled < passages:
            docs = 20_000
            subtopic = rng.choice(self.subtopics, docs, p=self.weights)
            lengths = rng.geometric(1 / per_document, docs) if per_document > 1 else np.ones(docs, np.int64)
            doc_of = np.repeat(np.arange(docs), lengths)[: passages - filled]
            rows = self.base[subtopic[doc_of]] + WEIGHTS[3] * _directions(rng, docs)[doc_of]
            rows += WEIGHTS[4] * _directions(rng, len(doc_of))
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            out[filled : filled + len(rows)] = rows
            filled += len(rows)
        return out


def corpus(passages: int, queries: int, seed: int = 1) -> tuple[Matrix, Matrix]:
    mixture = Mixture(passages, seed)
    rng = np.random.default_rng(seed + 1)
    return mixture.documents(rng, passages, PASSAGES_PER_DOCUMENT), mixture.documents(rng, queries, 1.0)


def shape_stats(vectors: Matrix) -> dict[str, float]:
    """The statistics of `REAL_STATS`, of these vectors."""
    similarity = vectors @ vectors.T
    upper = similarity[np.triu_indices(len(vectors), 1)]
    np.fill_diagonal(similarity, -2.0)
    ranked = -np.sort(-similarity, axis=1)
    mean = vectors.mean(axis=0)
    variance = np.linalg.svd(vectors - mean, compute_uv=False) ** 2
    cumulative = np.cumsum(variance / variance.sum())
    return {
        "pair_cosine_mean": round(float(upper.mean()), 3),
        "pair_cosine_sd": round(float(upper.std()), 3),
        "nn1_cosine": round(float(ranked[:, 0].mean()), 3),
        "nn10_cosine": round(float(ranked[:, 9].mean()), 3),
        "nn100_cosine": round(float(ranked[:, 99].mean()), 3),
        "mean_vector_norm": round(float(np.linalg.norm(mean)), 3),
        "components_50pct": int(np.searchsorted(cumulative, 0.5) + 1),
        "components_90pct": int(np.searchsorted(cumulative, 0.9) + 1),
    }


def index_mb(faiss_index: Any) -> int:
    """An index's memory: its serialised size, which is what it holds (vectors, ids, lists or graph), in MiB.
    (The process's resident size is no measure here: freed arrays of the generator are reused.)"""
    import faiss

    return round(faiss.serialize_index(faiss_index).nbytes / 2**20)


def built(make: Callable[[], Any]) -> tuple[Any, float]:
    """(index, seconds)."""
    gc.collect()
    started = time.perf_counter()
    index = make()
    return index, time.perf_counter() - started


def p50_ms(step: Callable[[Matrix], object], queries: Matrix) -> float:
    times = []
    for row in queries[:LATENCY_QUERIES]:
        started = time.perf_counter()
        step(row[None, :])
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def recall(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    hits = [len(set(a[:k].tolist()) & set(b[:k].tolist())) for a, b in zip(found, truth, strict=True)]
    return round(sum(hits) / (k * len(truth)), 4)


def search_step(index: Any, k: int = 10) -> Callable[[Matrix], object]:
    """What `retrieval.nearest` asks of an index: the k nearest, then their stored vectors."""

    def step(query: Matrix) -> object:
        _, ids = index.search(query, k)
        return index.vectors([int(i) for i in ids[0] if i >= 0])

    return step


def run_size(passages: int, query_count: int, hnsw: bool) -> dict[str, Any]:
    started = time.perf_counter()
    vectors, queries = corpus(passages, query_count)
    # Scattered 63-bit-like ids, as passage ids are.
    ids = np.random.default_rng(7).permutation(np.arange(passages, dtype=np.int64)) * 1_000_003 + 11
    result: dict[str, Any] = {"passages": passages, "queries": query_count}
    result["generate_seconds"] = round(time.perf_counter() - started, 1)

    def make_exact() -> FaissIndex:
        index = FaissIndex(DIMENSION)
        index.add(ids, vectors)
        return index

    exact, seconds = built(make_exact)
    _, truth = exact.search(queries, 100)
    result["exact"] = {
        "build_seconds": round(seconds, 2),
        "memory_mb": index_mb(exact._index),
        "p50_ms": p50_ms(search_step(exact), queries),
    }
    del exact
    print(f"{passages}: exact {result['exact']}", file=sys.stderr)

    ivf, seconds = built(lambda: IvfIndex.build(ids, vectors))
    _, found = ivf.search(queries, 100)
    engine_probes = ivf.probes
    entry: dict[str, Any] = {
        "lists": ivf.lists,
        "probes": engine_probes,
        "build_seconds": round(seconds, 2),
        "memory_mb": index_mb(ivf._index),
        "p50_ms": p50_ms(search_step(ivf), queries),
        "recall_at_10": recall(found, truth, 10),
        "recall_at_100": recall(found, truth, 100),
    }
    entry["speedup_over_exact"] = round(result["exact"]["p50_ms"] / entry["p50_ms"], 1)
    sweep = []
    for probes in sorted({8, 16, 32, 64, 128, 256} | {engine_probes}):
        if probes <= ivf.lists:
            ivf.probes = probes
            _, found = ivf.search(queries, 10)
            point = {"probes": probes, "recall_at_10": recall(found, truth, 10)}
            sweep.append({**point, "p50_ms": p50_ms(search_step(ivf), queries)})
    ivf.probes = engine_probes
    entry["sweep"] = sweep
    entry["updates"] = update_costs(ivf, ids, vectors)
    result["ivf"] = entry
    del ivf
    print(f"{passages}: ivf {entry}", file=sys.stderr)

    if hnsw:
        result["hnsw"] = hnsw_candidate(vectors, ids, queries, truth)
        print(f"{passages}: hnsw {result['hnsw']}", file=sys.stderr)
    return result


def update_costs(ivf: IvfIndex, ids: npt.NDArray[np.int64], vectors: Matrix) -> dict[str, float]:
    """Seconds for what an incremental update does to an approximate index."""
    started = time.perf_counter()
    working = ivf.copy()
    copy_seconds = time.perf_counter() - started
    gone = ids[:UPDATE_PASSAGES]
    started = time.perf_counter()
    removed = working.remove(gone)
    remove_seconds = time.perf_counter() - started
    started = time.perf_counter()
    working.add(gone, vectors[:UPDATE_PASSAGES])
    add_seconds = time.perf_counter() - started
    assert removed == UPDATE_PASSAGES and len(working) == len(ivf)
    return {
        "copy_seconds": round(copy_seconds, 3),
        f"remove_{UPDATE_PASSAGES}_seconds": round(remove_seconds, 4),
        f"add_{UPDATE_PASSAGES}_seconds": round(add_seconds, 4),
    }


def hnsw_candidate(
    vectors: Matrix, ids: npt.NDArray[np.int64], queries: Matrix, truth: npt.NDArray[np.int64]
) -> dict[str, Any]:
    import faiss

    def make() -> Any:
        index = faiss.IndexHNSWFlat(DIMENSION, HNSW_M)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(vectors)
        return index

    index, seconds = built(make)
    entry: dict[str, Any] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "build_seconds": round(seconds, 2)}
    entry["memory_mb"] = index_mb(index)
    sweep = []
    for ef in (32, 64, 128, 256, 512):
        params = faiss.SearchParametersHNSW(efSearch=ef)
        _, rows = index.search(queries, 10, params=params)

        def step(query: Matrix, params: Any = params) -> object:
            _, found = index.search(query, 10, params=params)
            return [index.reconstruct(int(i)) for i in found[0]]

        sweep.append({"ef_search": ef, "recall_at_10": recall(ids[rows], truth, 10), "p50_ms": p50_ms(step, queries)})
    entry["sweep"] = sweep
    return entry


def threshold_crossing(passages: int) -> dict[str, Any]:
    """What the update that crosses the default threshold pays once: an exact index moved to IVF."""
    vectors, _ = corpus(passages, 1, seed=3)
    exact = FaissIndex(DIMENSION)
    exact.add(np.arange(passages, dtype=np.int64) * 7 + 1, vectors)
    started = time.perf_counter()
    moved = fitted(exact, passages)
    seconds = time.perf_counter() - started
    return {"passages": passages, "kind": getattr(moved, "kind", "?"), "seconds": round(seconds, 2)}


def machine() -> dict[str, Any]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    import faiss

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "python": platform.python_version(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-hnsw", action="store_true")
    parser.add_argument("--json", action="store_true", help=f"write {RESULTS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    sample, _ = corpus(4000, 1)
    report: dict[str, Any] = {
        "machine": machine(),
        "calibration": {"real_minilm_scifact_4000": REAL_STATS, "synthetic_4000": shape_stats(sample)},
        "engine_rule": {"lists": "round(4·√n), ≤ n/39", "probes_for_4000_lists": probes_for(4000)},
        "threshold": threshold_crossing(IndexConfig().approximate_above_passages),
        "sizes": [run_size(n, args.queries, not args.skip_hnsw) for n in sizes],
    }
    largest = report["sizes"][-1]["ivf"]
    met = all(s["ivf"]["recall_at_10"] >= TARGET_RECALL for s in report["sizes"])
    if report["sizes"][-1]["passages"] >= 1_000_000:
        met = met and largest["p50_ms"] <= TARGET_P50_MS_AT_1M
    report["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    report["targets"] = {"recall_at_10": TARGET_RECALL, "p50_ms_at_1m": TARGET_P50_MS_AT_1M, "met": met}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        RESULTS.write_text(text + "\n", encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
