"""Check a domain's questions.jsonl against retrieval: is the expected file among the top 3 sources?

Usage: python scripts/check_questions.py DOMAIN [--data-dir DIR]. Prints each miss and the hit rate.
A development aid for writing knowledge; the evaluation proper is `ragscope eval`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_engine.config import load_config
from rag_engine.engine import Engine

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("domain")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    config = load_config(REPO / "config.toml")
    if args.data_dir:
        config = config.with_paths(data_dir=Path(args.data_dir))
    engine = Engine(config)
    lines = (config.paths.knowledge_dir / args.domain / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    hits = 0
    for row in rows:
        found = engine.retrieve(row["question"], args.domain, k=args.k)
        names = [Path(hit.passage.path).name for hit in found]
        if row["source"] in names:
            hits += 1
        else:
            print(f"MISS {row['question']!r} expected {row['source']} got {names}")
        ranked = ", ".join(f"{name}={hit.distance:.2f}" for name, hit in zip(names, found, strict=True))
        print(f"  {row['question'][:60]!r}: {ranked}")
    print(f"{args.domain}: {hits}/{len(rows)} = {hits / max(len(rows), 1):.0%} expected file in top {args.k}")
    return 0 if rows and hits / len(rows) >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
