"""Loading + chunking speed on a big generated text file, against a raw `str.split("\\n\\n")` in the same run.

The engine side is `load_document` (stat, read, decode, split into paragraphs with line numbers) and `chunk` (pack
into passages of `chunk_size_chars` with overlap, one id each) with the settings of config.toml. The baseline reads
the same file, decodes it and splits it on blank lines: the least any loader must do. The ratio is engine seconds ÷
baseline seconds. A second, smaller file (a quarter of the size) checks that the work is linear: its seconds per
megabyte should match the big file's (a quadratic loader had 4 MB of short paragraphs take 154 s, and would show a
per-MB ratio near 4). Best of `--repeats` runs, alternating engine and baseline.

The text: short Markdown paragraphs (one to three lines of plain sentences), a heading every 50, the shape that made
the old line counting quadratic. Nothing is embedded.
Usage: python -m benchmarks.bench_loading [--megabytes 20] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from rag_engine.config import load_config
from rag_engine.ingest.chunking import chunk
from rag_engine.ingest.loading import load_document

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "bench_loading.json"

VOCABULARY = (
    "the zorblat lives in the valley of Quenth and eats blue moss while quillfish swim in cold lakes basalt "
    "columns formed from cooling lava sixty million years ago under Varnholm"
)
WORDS = VOCABULARY.split()


def write_text(path: Path, target_bytes: int, seed: int = 13) -> int:
    """Short paragraphs of plain sentences, at most `target_bytes` in all; returns the number of paragraphs."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = paragraphs = 0
    while True:
        if paragraphs % 50 == 0:
            paragraph = f"# Section {paragraphs // 50 + 1}"
        else:
            lines = [
                " ".join(rng.choices(WORDS, k=rng.randint(4, 12))).capitalize() + "." for _ in range(rng.randint(1, 3))
            ]
            paragraph = "\n".join(lines)
        if size + len(paragraph) + 2 > target_bytes:  # the words are ASCII: characters are bytes
            break
        parts.append(paragraph + "\n\n")
        size += len(paragraph) + 2
        paragraphs += 1
    path.write_text("".join(parts), encoding="utf-8")
    return paragraphs


def measure(path: Path, repeats: int) -> dict[str, float | int]:
    config = load_config(REPO / "config.toml")
    engine_seconds, baseline_seconds = [], []
    passages = blocks = pieces = 0
    for _ in range(repeats):
        clock = time.perf_counter()
        document = load_document(path, path.name, config.loading)
        passages = len(chunk(document, config.chunking))
        engine_seconds.append(time.perf_counter() - clock)
        blocks = len(document.blocks)
        del document

        clock = time.perf_counter()
        pieces = len(path.read_bytes().decode("utf-8").split("\n\n"))
        baseline_seconds.append(time.perf_counter() - clock)
    megabytes = path.stat().st_size / 1e6
    engine, baseline = min(engine_seconds), min(baseline_seconds)
    return {
        "megabytes": round(megabytes, 2),
        "blocks": blocks,
        "passages": passages,
        "baseline_pieces": pieces,
        "engine_seconds": round(engine, 3),
        "baseline_seconds": round(baseline, 4),
        "ratio": round(engine / baseline, 1),
        "engine_seconds_per_megabyte": round(engine / megabytes, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0, help="size of the big generated file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.relative_to(REPO)}")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragscope-bench-loading-") as scratch:
        big, small = Path(scratch) / "big.md", Path(scratch) / "small.md"
        paragraphs = write_text(big, int(args.megabytes * 1e6))
        write_text(small, int(args.megabytes * 1e6 / 4))
        big_result, small_result = measure(big, args.repeats), measure(small, args.repeats)
    config = load_config(REPO / "config.toml")
    # Per-MB cost of the big file over the small one's: 1.0 is linear, 4.0 would be quadratic.
    growth = float(big_result["engine_seconds_per_megabyte"]) / float(small_result["engine_seconds_per_megabyte"])
    result = {
        "file_megabytes": big_result["megabytes"],
        "paragraphs": paragraphs,
        "chunk_size_chars": config.chunking.chunk_size_chars,
        "chunk_overlap_chars": config.chunking.chunk_overlap_chars,
        "python": sys.version.split()[0],
        "big": big_result,
        "quarter": small_result,
        "per_megabyte_growth": round(growth, 2),
        "linear": growth < 1.5,
    }
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        for label, row in (("big", big_result), ("quarter", small_result)):
            print(
                f"{label}: {row['megabytes']} MB, {row['blocks']} paragraphs → {row['passages']} passages: "
                f"load + chunk {row['engine_seconds']} s, raw split {row['baseline_seconds']} s "
                f"(ratio {row['ratio']}×, {row['engine_seconds_per_megabyte']} s/MB)"
            )
        print(f"per-MB cost, big ÷ quarter = {result['per_megabyte_growth']} (1.0 linear, 4.0 quadratic)")
    return 0 if result["linear"] else 1


if __name__ == "__main__":
    sys.exit(main())
