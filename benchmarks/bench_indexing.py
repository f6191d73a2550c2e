"""Indexing throughput of the engine against raw `SentenceTransformer.encode`, measured in the same run.

The engine's `index` does everything (walk the folder, load, chunk, embed, FAISS add, save atomically); the
baseline only encodes the very same passage texts with the same model, batch size and normalisation. The
reported ratio is engine passages/second ÷ raw passages/second (target ≥ 0.9: the pipeline around the model
costs under 10%). Runs alternate engine/raw to share thermal and cache conditions; the best of each is kept.

Corpus: the first `--docs` SciFact abstracts from ../shared/data (one Markdown file each), or `--knowledge DIR`.
Usage: python -m benchmarks.bench_indexing [--docs 600] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_engine.config import load_config
from rag_engine.engine import Engine
from rag_engine.ingest.embedding import SentenceTransformerEmbedder

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact-train" / "corpus.jsonl"


def write_scifact(folder: Path, docs: int) -> Path:
    domain = folder / "scifact"
    domain.mkdir(parents=True)
    with SCIFACT.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= docs:
                break
            row = json.loads(line)
            (domain / f"{row['_id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600, help="SciFact abstracts to index")
    parser.add_argument("--knowledge", type=Path, help="index this knowledge folder instead")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragscope-bench-") as scratch:
        root = Path(scratch)
        knowledge = args.knowledge or write_scifact(root / "knowledge", args.docs)
        config = load_config(REPO / "config.toml").with_paths(knowledge_dir=knowledge, data_dir=root / "data")
        embedder = SentenceTransformerEmbedder(config.embedding)
        model = embedder._model  # the very same loaded model for the baseline
        engine = Engine(config, embedder=lambda: embedder)
        domains = engine.domains()

        # Warm-up build: loads everything once and tells us the exact passages the engine embeds.
        engine_passages = 0
        texts: list[str] = []
        for domain in domains:
            engine.index(domain, full=True)
            built = engine.snapshot(domain)
            texts.extend(p.text for p in built.space.passages.values())
            engine_passages += built.stats.passages

        engine_seconds, raw_seconds = [], []
        for _ in range(args.repeats):
            clock = time.perf_counter()
            for domain in domains:
                engine.index(domain, full=True)  # re-read and re-embed everything: the cache is not used
            engine_seconds.append(time.perf_counter() - clock)

            clock = time.perf_counter()
            model.encode(
                texts,
                batch_size=config.embedding.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            raw_seconds.append(time.perf_counter() - clock)

    engine_rate = engine_passages / min(engine_seconds)
    raw_rate = len(texts) / min(raw_seconds)
    result = {
        "passages": engine_passages,
        "files": args.docs if not args.knowledge else None,
        "engine_seconds": round(min(engine_seconds), 3),
        "raw_encode_seconds": round(min(raw_seconds), 3),
        "engine_passages_per_second": round(engine_rate, 1),
        "raw_passages_per_second": round(raw_rate, 1),
        "ratio": round(engine_rate / raw_rate, 3),
        "target": 0.9,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['passages']} passages: engine {result['engine_seconds']} s "
            f"({result['engine_passages_per_second']}/s), raw encode {result['raw_encode_seconds']} s "
            f"({result['raw_passages_per_second']}/s)"
        )
        print(f"throughput ratio engine/raw = {result['ratio']} (target ≥ {result['target']})")
    return 0 if result["ratio"] >= result["target"] else 1


if __name__ == "__main__":
    sys.exit(main())
