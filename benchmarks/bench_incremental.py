"""One-file update of a large index against a full rebuild of the same corpus, measured in the same run.

A full rebuild (`Engine.index(domain, full=True)`: walk the folder, read, chunk and embed every passage, build
the FAISS index and the BM25 statistics, write the domain's base file atomically) is the baseline. Against it we
time `Engine.index(domain)` after one file of the corpus was rewritten: the stat scan of every file, reading and
chunking the changed file, embedding its new passages, copying the FAISS index and removing/adding by id, the
BM25 statistics of the touched terms, and the crash-safe write of one small update file (`ingest/journal.py`).
Each edit is split into its parts (the folder walk, the embedding, the write, the rest), measured by wrapping
those calls. The ratio is median update ÷ full rebuild (target: at most 0.05%). A rename (the vectors come from
the embedding cache) and a delete (only drops passages) are timed separately, and so is a restart (a fresh
`Engine` loading the stored index: the base and its update files, nothing analysed again).

A fresh-process edit is timed too: a new python process (`--fresh-edit`, a subprocess) that imports the engine,
loads the stored index, applies one rewritten file (loading the embedding model to embed it) and writes the
update, as `ragscope index` after an edit would. Target: from the process's start until the update is stored,
less the model's loading and embedding, at most 1 s (its exit, unloading torch, is reported beside it). A corpus
under 10,000 passages or a missed target exits with status 1.

Only the timing is here. That the same changes are right (old text gone, new text hit 1, the counts add up,
a restart sees the same index, the index equals a clean rebuild) is checked by
tests/rag_engine/ingest/test_incremental_rebuild.py, on a few dozen files.

Why this matters: LlamaIndex's default `FaissVectorStore` has no working delete (its `delete` raises
`NotImplementedError`), so the passages of a changed or removed file cannot be taken out of that FAISS store;
the old text stays searchable until everything is rebuilt. (Its separate `FaissMapVectorStore` can delete by
node id, but the default store cannot.) Here a one-file change is applied by id to a copy of the FAISS
index, which is then swapped in.

Corpus: all 5,183 SciFact abstracts from ../shared/data (one Markdown file each; ~13k passages at the default
800-character chunks), or the first `--docs`. The results name the machine, its load average when the run
started (the machine may be shared), and the embedding settings of the run.
Usage: python -m benchmarks.bench_incremental [--docs N] [--repeats 5] [--fresh-repeats 3] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_indexing import write_scifact
from benchmarks.update_parts import Parts, TimedEmbedder, rounded, timed_embedder
from rag_engine.config import load_config
from rag_engine.engine import Engine
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from rag_engine.records import IndexUpdate

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "scifact"
MIN_PASSAGES = 10_000
TARGET_PERCENT = 0.05
FRESH_TARGET_SECONDS = 1.0
RESULTS = REPO / "benchmarks" / "results" / "bench_incremental.json"

# Made-up facts: words no model has seen, so a question about one can only be answered by the edited file.
WORDS = ["glimmerwort", "brantlefish", "quoxilane", "zephyrmoss", "morvanite", "trillobane", "skarnweed"]
SUBSTANCES = ["frozen moonsilk", "grey basalt dust", "cold amber resin", "dried kelp ash", "raw copper salt"]
PRODUCTS = ["blue vapour", "sweet syrup", "a violet gel", "fine white sand", "a bitter green oil"]
PLACES = ["northern cliffs of Varnholm", "salt flats of Ostremar", "caves below Kettlewick", "isle of Dunmarra"]


@dataclass(frozen=True)
class Fact:
    """New content for one file: a question whose answer is `key`, a sentence found nowhere else."""

    content: str
    key: str
    question: str


def make_fact(number: int) -> Fact:
    word = WORDS[number % len(WORDS)] + ("" if number < len(WORDS) else f"{number // len(WORDS)}")
    code = f"XQ-{71 + number}"
    substance = SUBSTANCES[number % len(SUBSTANCES)]
    product = PRODUCTS[number % len(PRODUCTS)]
    place = PLACES[number % len(PLACES)]
    key = f"The {word} enzyme {code} turns {substance} into {product} in under {7 + number} seconds."
    content = (
        f"# The {word} enzyme {code}\n\n"
        f"{key} The {word} plant grows only on the {place}, where it was first described in {1890 + number}. "
        f"Unlike every other plant enzyme, {code} stays active in boiling water for {3 + number} hours, and it "
        f"loses all activity in the light of a full moon. Its crystals are hexagonal and smell faintly of cloves. "
        f"No other organism is known to make {code}.\n\n"
        f"Field notes on {code}: samples of {word} kept in the dark lose half of their enzyme within "
        f"{11 + number} days. Extracts are stored in lead flasks and shipped at minus {40 + number} degrees. "
        f"Growers harvest {word} by hand at dawn, because machines bruise the leaves and the enzyme leaks out. "
        f"No medical use of {code} has ever been reported, and the {word} plant itself is not edible.\n"
    )
    return Fact(content, key, f"What does the {word} enzyme {code} turn {substance} into?")


def pick_targets(engine: Engine, count: int) -> list[str]:
    """`count` different files spread evenly over the corpus."""
    files = sorted(engine.snapshot(DOMAIN).records)
    if len(files) < count:
        raise SystemExit(f"the corpus has fewer than {count} files")
    stride = len(files) // (count + 1)
    return [files[stride // 2 + stride * n] for n in range(count)]


def timed(engine: Engine, parts: Parts, kind: str, rel: str) -> dict[str, Any]:
    """Apply what changed in the folder and time it: the wall clock around the call, the engine's own, and the
    parts."""
    with parts.measuring() as seconds:
        clock = time.perf_counter()
        update: IndexUpdate = engine.index(DOMAIN)
        wall = time.perf_counter() - clock
    if not update.applied:
        raise SystemExit(f"the {kind} of {rel} was not applied: {update.to_dict()}")
    rest = wall - sum(seconds.values())
    return {
        "file": rel,
        "wall_seconds": round(wall, 4),
        "engine_seconds": round(update.seconds, 4),
        "parts": {**rounded(seconds), "rest_seconds": round(rest, 4)},
        "embedded": update.embedded,
        "reused": update.reused,
        "dropped": update.dropped,
        "passages": update.passages,
    }


def restart_seconds(engine: Engine) -> float:
    """A fresh Engine over the same data folder (same loaded model): load the stored index, stat every file."""
    embedder = engine.embedder()
    fresh = Engine(engine.config, embedder=lambda: embedder)
    clock = time.perf_counter()
    fresh.index(DOMAIN)
    return time.perf_counter() - clock


def fresh_edit_child(settings: Path, knowledge: Path, data: Path) -> dict[str, Any]:
    """In the new process: apply what changed, as `ragscope index` would, and say where the time went."""
    started = time.perf_counter()
    config = load_config(settings).with_paths(knowledge_dir=knowledge, data_dir=data)
    parts = Parts()
    engine = Engine(config, embedder=timed_embedder(config.embedding, parts))
    with parts.measuring() as seconds:
        clock = time.perf_counter()
        update = engine.index(DOMAIN)
        index_seconds = time.perf_counter() - clock
    return {
        "saved_at": time.time(),  # the update is stored: what is left is the process's exit
        "index_seconds": round(index_seconds, 4),
        "main_seconds": round(time.perf_counter() - started, 4),
        "parts": {**rounded(seconds), "rest_seconds": round(index_seconds - sum(seconds.values()), 4)},
        "embedded": update.embedded,
        "dropped": update.dropped,
        "version": update.version,
        "rebuilt": update.rebuilt,
    }


def fresh_edit(settings: Path, config: Any, folder: Path, rel: str, number: int) -> dict[str, Any]:
    """Rewrite one file, then time a new python process that applies it: from its start until the update is
    stored (the interpreter, the imports, loading, updating, writing), and the whole process (its exit too)."""
    (folder / rel).write_text(make_fact(number).content, encoding="utf-8")
    command = [sys.executable, "-m", "benchmarks.bench_incremental", "--fresh-edit", str(settings)]
    command += [str(config.paths.knowledge_dir), str(config.paths.data_dir)]
    spawned, clock = time.time(), time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - clock
    if done.returncode != 0:
        raise SystemExit(f"the fresh-process edit failed:\n{done.stderr}")
    child: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    if child["rebuilt"] or not child["embedded"]:
        raise SystemExit(f"the fresh-process edit of {rel} did not apply one edit: {child}")
    embedding = child["parts"]["model_load_seconds"] + child["parts"]["embed_seconds"]
    saved = child.pop("saved_at") - spawned
    return {
        "file": rel,
        "until_saved_seconds": round(saved, 4),
        "until_saved_less_embedding_seconds": round(saved - embedding, 4),
        "start_and_imports_seconds": round(saved - child["main_seconds"], 4),
        "wall_seconds": round(wall, 4),
        "wall_less_embedding_seconds": round(wall - embedding, 4),
        **child,
    }


def machine() -> dict[str, Any]:
    """The machine, and how busy it was (shared machines make timings noisy)."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def profile_edit(engine: Engine, folder: Path, rel: str, number: int) -> None:
    """One more edit under cProfile (not part of the results): where does the update time go?"""
    (folder / rel).write_text(make_fact(number).content, encoding="utf-8")
    profiler = cProfile.Profile()
    profiler.enable()
    engine.index(DOMAIN)
    profiler.disable()
    print(f"\nprofile of one more edit ({rel}):", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)


def print_table(result: dict[str, Any]) -> None:
    def row(name: str, value: str) -> None:
        print(f"  {name:<34} {value}")

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    def split(parts: dict[str, float]) -> str:
        return ", ".join(f"{name.removesuffix('_seconds')} {ms(value)}" for name, value in parts.items() if value)

    print(f"SciFact: {result['files']} files, {result['passages']} passages ({result['chunk_size_chars']}-char chunks)")
    row("full rebuild", f"{result['full_rebuild_seconds']:.2f} s ({result['full_rebuild']['embedded']} embedded)")
    for edit in result["edits"]:
        row(
            f"one-file edit {edit['file']}",
            f"{ms(edit['wall_seconds'])} ({edit['embedded']} embedded, {edit['dropped']} dropped: "
            f"{split(edit['parts'])})",
        )
    row("one-file edit median / max", f"{ms(result['update_seconds_median'])} / {ms(result['update_seconds_max'])}")
    for kind in ("rename", "delete"):
        step = result[kind]
        row(f"{kind} {step['file']}", f"{ms(step['wall_seconds'])} ({split(step['parts'])})")
    row("restart (load stored index)", ms(result["restart_load_seconds"]))
    for fresh in result["fresh_process_edits"]:
        row(
            f"fresh-process edit {fresh['file']}",
            f"stored after {ms(fresh['until_saved_seconds'])}, {ms(fresh['until_saved_less_embedding_seconds'])} "
            f"less the embedding (start and imports {ms(fresh['start_and_imports_seconds'])}, "
            f"{split(fresh['parts'])}); process {ms(fresh['wall_seconds'])} with its exit",
        )
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"update / full rebuild = {result['ratio_percent']:.3f}% (target <= {result['target_percent']}%: {verdict})")
    verdict = "met" if result["fresh_target_met"] else "MISSED"
    print(
        f"fresh-process edit less embedding = {ms(result['fresh_less_embedding_seconds_median'])} median "
        f"(target <= {result['fresh_target_seconds']} s: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, help="index only the first N SciFact abstracts (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="one-file edits to time (median and max)")
    parser.add_argument("--fresh-repeats", type=int, default=3, help="fresh-process edits to time (median)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile one extra edit (to stderr)")
    parser.add_argument(
        "--fresh-edit", nargs=3, type=Path, metavar=("CONFIG", "KNOWLEDGE", "DATA"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.fresh_edit:  # the child process of a fresh-process edit: its measurements on stdout's last line
        print(json.dumps(fresh_edit_child(*args.fresh_edit)))
        return 0
    if args.repeats < 1 or args.fresh_repeats < 1:
        parser.error("--repeats and --fresh-repeats must be at least 1")

    host = machine()
    with tempfile.TemporaryDirectory(prefix="ragscope-bench-") as scratch:
        root = Path(scratch)
        knowledge = write_scifact(root / "knowledge", args.docs if args.docs is not None else sys.maxsize)
        folder = knowledge / DOMAIN
        # One copy of the settings for the whole run: the fresh processes must index as this one does, even if
        # config.toml is edited meanwhile (another setting would make them rebuild).
        settings = root / "config.toml"
        settings.write_text((REPO / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
        config = load_config(settings).with_paths(knowledge_dir=knowledge, data_dir=root / "data")
        parts = Parts()
        loaded = SentenceTransformerEmbedder(config.embedding)
        loaded.embed(["warm-up"] * config.embedding.batch_size)  # first-call costs stay out of the baseline
        embedder = TimedEmbedder(loaded, parts)
        engine = Engine(config, embedder=lambda: embedder)

        # The baseline: read, chunk and embed everything (the cache is not used), build FAISS, write to disk.
        clock = time.perf_counter()
        full = engine.index(DOMAIN, full=True)
        full_seconds = time.perf_counter() - clock
        built = engine.snapshot(DOMAIN).stats
        if built.passages < MIN_PASSAGES:
            print("=" * 72, file=sys.stderr)
            print(f"CORPUS TOO SMALL: {built.passages} < {MIN_PASSAGES} passages", file=sys.stderr)
            print("=" * 72, file=sys.stderr)

        targets = pick_targets(engine, args.repeats + 2 + args.profile + args.fresh_repeats)
        edits = []
        for number, rel in enumerate(targets[: args.repeats]):
            (folder / rel).write_text(make_fact(number).content, encoding="utf-8")
            edits.append(timed(engine, parts, "edit", rel))
        renamed = targets[args.repeats]
        os.rename(folder / renamed, folder / f"renamed-{renamed}")
        rename = timed(engine, parts, "rename", renamed)
        deleted = targets[args.repeats + 1]
        (folder / deleted).unlink()
        delete = timed(engine, parts, "delete", deleted)
        restart = restart_seconds(engine)
        if args.profile:
            profile_edit(engine, folder, targets[args.repeats + 2], args.repeats)
        # Last: after these, the files hold what another process wrote (this engine would read them again).
        fresh_targets = targets[args.repeats + 2 + args.profile :]
        fresh = [fresh_edit(settings, config, folder, rel, 100 + n) for n, rel in enumerate(fresh_targets)]

    walls = [e["wall_seconds"] for e in edits]
    median = statistics.median(walls)
    ratio = 100 * median / full_seconds
    fresh_less_embedding = statistics.median(f["until_saved_less_embedding_seconds"] for f in fresh)
    result: dict[str, Any] = {
        "corpus": "scifact",
        "machine": host,
        "embedding": asdict(config.embedding),
        "files": len(built.files),
        "passages": built.passages,
        "chunk_size_chars": config.chunking.chunk_size_chars,
        "min_passages": MIN_PASSAGES,
        "full_rebuild_seconds": round(full_seconds, 3),
        "full_rebuild": full.to_dict(),
        "update_seconds_median": round(median, 4),
        "update_seconds_max": round(max(walls), 4),
        "update_engine_seconds_median": round(statistics.median(e["engine_seconds"] for e in edits), 4),
        "ratio_percent": round(ratio, 4),
        "target_percent": TARGET_PERCENT,
        "target_met": ratio <= TARGET_PERCENT,
        "edits": edits,
        "rename": rename,
        "delete": delete,
        "restart_load_seconds": round(restart, 4),
        "fresh_process_edits": fresh,
        "fresh_less_embedding_seconds_median": round(fresh_less_embedding, 4),
        "fresh_target_seconds": FRESH_TARGET_SECONDS,
        "fresh_target_met": fresh_less_embedding <= FRESH_TARGET_SECONDS,
    }
    result["passed"] = built.passages >= MIN_PASSAGES and result["target_met"] and result["fresh_target_met"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if args.docs is None:  # a partial corpus is for profiling, not the record
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
