"""Multi-hop retrieval on the shipped knowledge: each domain's `multihop.jsonl` (two facts from two files, the
second file found through the first) answered with one retrieval round and with two, on the shipped defaults.

Two figures per hops setting, per domain and overall: the right-answer rate (the answer holds every key token
and was not refused or flagged unsupported: `rag_engine.evaluation.answers.score`) and the "both sources
retrieved" rate (every source file among the retrieved passages, of either round). The same runs as
`ragscope eval answers --questions multihop --hops N --columns rag --json`, one model load for both.

Usage: python -m benchmarks.bench_multihop [--k K] [--json] [--no-save] [--from H1.json H2.json]
(`--from` summarises two saved `ragscope eval answers --questions multihop --hops N --json` reports instead of
running.) Writes benchmarks/results/multihop.json (multihop_k{K}.json for another k than the shipped one). Run
it under `flock /tmp/ragscope-bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rag_engine.config import load_config
from rag_engine.engine import Engine
from rag_engine.evaluation.answers import evaluate_answers, report
from rag_engine.evaluation.domains import MULTIHOP_FILE, load_questions

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "multihop.json"
COMMAND = "python -m benchmarks.bench_multihop"
# The same two runs through the console script (then `--from h1.json h2.json` writes this summary).
CLI = "ragscope eval answers --questions multihop --hops {hops} --columns rag --json > h{hops}.json"


def run(hops: int, engine: Engine) -> dict[str, Any]:
    """The `ragscope eval answers --questions multihop --hops N --columns rag --json` report."""
    started = time.perf_counter()
    per_domain = {}
    for name in engine.domains():
        path = engine.domain_folder(name) / MULTIHOP_FILE
        if path.is_file():
            engine.index(name)
            per_domain[name] = evaluate_answers(engine, name, load_questions(path), ("rag",), hops=hops)
    return report(engine, per_domain, time.perf_counter() - started, hops)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def summarise(reports: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Right answers and both-sources-retrieved per hops setting, per domain and overall, and each question's
    outcome side by side."""
    one, two = reports[1], reports[2]
    table = {}
    for name in [*one["domains"], "overall"]:
        row = {}
        for hops, body in reports.items():
            stats = body["overall"] if name == "overall" else body["domains"][name]
            row[str(hops)] = {
                "questions": stats["questions"],
                "right": stats["rag.right"],
                "both_sources_retrieved": stats["sources.retrieved"],
            }
        table[name] = row
    questions = []
    for first, second in zip(one["results"], two["results"], strict=True):
        questions.append(
            {
                "domain": first["domain"],
                "question": first["question"],
                "sources": first["sources"],
                "key": first["key"],
                "1": {
                    "right": first["rag"]["right"],
                    "retrieved": first["retrieved"],
                    "answer": first["rag"]["answer"],
                },
                "2": {
                    "right": second["rag"]["right"],
                    "retrieved": second["retrieved"],
                    "answer": second["rag"]["answer"],
                    "rounds": second["rounds"],
                },
            }
        )
    return {
        "command": COMMAND,
        "or": [CLI.format(hops=1), CLI.format(hops=2), f"{COMMAND} --from h1.json h2.json"],
        "models": one["models"],
        "settings": {key: value for key, value in one["settings"].items() if key != "hops"},
        "table": table,
        "seconds": {"1": one["seconds"], "2": two["seconds"]},
        "questions": questions,
    }


def render(summary: dict[str, Any]) -> str:
    lines = [
        "| domain | questions | right, 1 hop | right, 2 hops | both sources retrieved, 1 hop | both sources, 2 hops |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in summary["table"].items():
        one, two = row["1"], row["2"]
        lines.append(
            f"| {name} | {one['questions']} | {_pct(one['right'])} | {_pct(two['right'])} | "
            f"{_pct(one['both_sources_retrieved'])} | {_pct(two['both_sources_retrieved'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.relative_to(REPO)}")
    parser.add_argument("--from", dest="saved", nargs=2, type=Path, metavar=("H1", "H2"))
    parser.add_argument("--k", type=int, help="passages per round (default: the shipped retrieval.top_k)")
    args = parser.parse_args()
    config = load_config(REPO / "config.toml")
    shipped_k = config.retrieval.top_k
    if args.k is not None:
        config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, top_k=args.k))
    if args.saved:
        pairs = zip((1, 2), args.saved, strict=True)
        reports = {hops: json.loads(path.read_text(encoding="utf-8")) for hops, path in pairs}
    else:
        with tempfile.TemporaryDirectory() as scratch:
            engine = Engine(config.with_paths(data_dir=Path(scratch)))
            reports = {hops: run(hops, engine) for hops in (1, 2)}
    summary = summarise(reports)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else render(summary))
    if not args.no_save:
        k = summary["settings"]["k"]
        target = RESULTS if k == shipped_k else RESULTS.with_name(f"multihop_k{k}.json")
        target.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
