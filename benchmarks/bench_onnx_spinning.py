"""ONNX Runtime's spinning worker threads, on and off: the engine's two ONNX sessions in one process.

The shipped default holds two ONNX Runtime sessions: the int8 encoder of the index and the question, and the
float32 encoder of the evidence sentences (`[evidence] full_precision`). By default ONNX Runtime's worker threads
busy-wait for a while after each run; on 2 cores the idle session's spinning threads then take the cores the
busy one needs. The engine turns spinning off (`ingest/embedding.py`, `ORT_SESSION_CONFIG`). Measured here, each arm
in a fresh child process (so no other arm's threads run beside it): one session alone, and both sessions used in
turn as the engine uses them, with spinning on (ONNX Runtime's default) and off (the engine's setting). Reported:
median milliseconds for one passage, two passages (a one-file edit), a batch of 32 (indexing) and a question.

Writes benchmarks/results/bench_onnx_spinning.json. Run it alone (`flock /tmp/ragscope-bench.lock …`), a minute.
Usage: python -m benchmarks.bench_onnx_spinning [--repeats 15] [--no-save]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_onnx_spinning.json"
PASSAGE = (
    "Background: the study examined the effect of a drug on blood pressure in 120 adults over 12 weeks, "
    "with outcomes measured monthly. "
) * 6
QUESTION = "What does the drug do to blood pressure?"
SIZES = (1, 2, 32)


def child(spinning: bool, backends: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """In this process: load the engine's encoder for each backend (the spinning setting forced as asked) and
    time each size on each, the sessions used in turn."""
    from rag_engine.config import load_config
    from rag_engine.ingest import embedding as module

    if spinning:  # ONNX Runtime's default, set explicitly
        module.ORT_SESSION_CONFIG = (("session.intra_op.allow_spinning", "1"),)
    config = load_config(REPO / "config.toml").embedding
    embedders = [module.SentenceTransformerEmbedder(dataclasses.replace(config, backend=b)) for b in backends]
    text = PASSAGE[:780]
    for embedder in embedders:
        embedder.embed([text] * 8)
    times: dict[str, dict[str, list[float]]] = {b: {} for b in backends}
    for _ in range(repeats):
        for backend, embedder in zip(backends, embedders, strict=True):
            for size in SIZES:
                clock = time.perf_counter()
                embedder.embed([text] * size)
                times[backend].setdefault(str(size), []).append(time.perf_counter() - clock)
            clock = time.perf_counter()
            embedder.embed([QUESTION])
            times[backend].setdefault("question", []).append(time.perf_counter() - clock)
    return {b: {k: round(statistics.median(v) * 1000, 1) for k, v in arms.items()} for b, arms in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spinning, *backends = args.child
        print(json.dumps(child(spinning == "on", backends, args.repeats)))
        return 0
    arms = {}
    for spinning in ("on", "off"):
        for backends in (["onnx-int8"], ["onnx-int8", "onnx"]):
            name = f"spinning {spinning}, {' + '.join(backends)}"
            command = [sys.executable, "-m", "benchmarks.bench_onnx_spinning", "--repeats", str(args.repeats)]
            done = subprocess.run(
                [*command, "--child", spinning, *backends], cwd=REPO, capture_output=True, text=True, check=True
            )
            arms[name] = json.loads(done.stdout.strip().splitlines()[-1])
            print(name, arms[name], file=sys.stderr)
    result = {"machine": {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
              "unit": "median ms per call", "arms": arms}  # fmt: skip
    print(json.dumps(result, indent=2))
    if not args.no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
