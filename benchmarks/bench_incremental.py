"""One-file update of a large index against a full rebuild of the same corpus, measured in the same run.

A full rebuild (`Engine.index(domain, full=True)`: walk the folder, read, chunk and embed every passage, build
the FAISS index, write it atomically) is the baseline. Against it we time `Engine.index(domain)` after one file
of the corpus was rewritten: the stat scan of every file, reading and chunking the changed file, embedding its
new passages, copying the FAISS index and removing/adding by id, and the crash-safe write of the whole domain
index to disk. Both the wall clock around the call and the engine's own `IndexUpdate.seconds` are reported.
The ratio is median update ÷ full rebuild (target: under 0.5%). A rename (must embed nothing: the vectors
come from the embedding cache) and a delete (must only drop passages) are timed separately.

The time alone proves nothing if the update is wrong, so after every change the benchmark checks that the
new text is found (hit 1 for a question about it), that no passage still holds a sentence only the old text
had, that the passage counts add up (before − dropped + embedded + reused = after, FAISS ids = passages),
and that a fresh `Engine` over the same data folder (a restart) sees the same index without re-embedding.
Any failed check, a corpus under 10,000 passages or a missed target exits with status 1.

Why this matters: LlamaIndex's default `FaissVectorStore` has no working delete (its `delete` raises
`NotImplementedError`), so the passages of a changed or removed file cannot be taken out of that FAISS store;
the old text stays searchable until everything is rebuilt. (Its separate `FaissMapVectorStore` can delete by
node id, but the default store cannot.) Here a one-file change is applied by id to a copy of the FAISS
index, which is then swapped in.

Corpus: all 5,183 SciFact abstracts from ../shared/data (one Markdown file each; ~13k passages at the default
800-character chunks), or the first `--docs`.
Usage: python benchmarks/bench_incremental.py [--docs N] [--repeats 5] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_indexing import write_scifact  # noqa: E402
from rag_engine.config import Config, load_config  # noqa: E402
from rag_engine.engine import Engine  # noqa: E402
from rag_engine.ingest.chunking import split_sentences  # noqa: E402
from rag_engine.ingest.embedding import SentenceTransformerEmbedder  # noqa: E402
from rag_engine.ingest.incremental import DomainIndex  # noqa: E402
from rag_engine.records import IndexUpdate, Passage  # noqa: E402
from rag_engine.seams import Embedder  # noqa: E402

DOMAIN = "scifact"
MIN_PASSAGES = 10_000
TARGET_PERCENT = 0.5
RESULTS = REPO / "benchmarks" / "results" / "bench_incremental.json"
# Sentences shorter than this are too generic to prove that the old text is gone.
MIN_SENTENCE_CHARS = 40

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


@dataclass
class Checks:
    """Every correctness check of the run, in order; the run fails if any one fails."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append({"check": name, "ok": bool(ok), "detail": detail})
        if not ok:
            print(f"CHECK FAILED: {name} {detail}".rstrip(), file=sys.stderr)
        return bool(ok)

    @property
    def passed(self) -> bool:
        return all(r["ok"] for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [f"{r['check']} {r['detail']}".rstrip() for r in self.results if not r["ok"]]


def timed_sync(engine: Engine) -> tuple[IndexUpdate, float]:
    clock = time.perf_counter()
    update = engine.index(DOMAIN)
    return update, time.perf_counter() - clock


def snapshot(engine: Engine) -> DomainIndex:
    return engine.snapshot(DOMAIN)  # syncs first: a stat of every file, nothing to apply


def passages_of(index: DomainIndex, rel: str) -> list[Passage]:
    return [p for p in index.space.passages.values() if p.path == rel]


def index_ids(index: DomainIndex) -> set[int]:
    """The ids FAISS actually holds (not just the passages the metadata lists)."""
    import faiss

    return {int(i) for i in faiss.vector_to_array(index.space.index._index.id_map)}  # type: ignore[attr-defined]


def unique_sentences(index: DomainIndex, rel: str, text: str) -> list[str]:
    """Sentences of the file that its passages hold and no other file's passage does."""
    own = [p.text for p in passages_of(index, rel)]
    others = [p.text for p in index.space.passages.values() if p.path != rel]
    sentences = {" ".join(s.split()) for s in split_sentences(" ".join(text.split()))}
    return sorted(
        s
        for s in sentences
        if len(s) >= MIN_SENTENCE_CHARS and any(s in t for t in own) and not any(s in t for t in others)
    )


def probe(index: DomainIndex, rel: str, sentences: list[str]) -> Passage:
    """A passage of the file holding a sentence of its own: its full text, as a query, must find it (distance ~0)
    while it is indexed. A single sentence is no such test: another abstract may well be nearer to it."""
    return next(p for p in passages_of(index, rel) if any(s in p.text for s in sentences))


def still_present(index: DomainIndex, sentences: Iterable[str]) -> list[str]:
    texts = [p.text for p in index.space.passages.values()]
    return [s for s in sentences if any(s in t for t in texts)]


def pick_targets(engine: Engine, folder: Path, count: int) -> list[str]:
    """`count` files spread over the corpus, each with at least one sentence of its own."""
    index = snapshot(engine)
    files = sorted(index.records)
    stride = max(1, len(files) // (count + 1))
    targets: list[str] = []
    position = stride // 2
    while len(targets) < count and position < len(files) * 2:
        rel = files[position % len(files)]
        if rel not in targets and unique_sentences(index, rel, (folder / rel).read_text(encoding="utf-8")):
            targets.append(rel)
            position += stride
        else:
            position += 1
    if len(targets) < count:
        raise SystemExit(f"the corpus has fewer than {count} files with a sentence of their own")
    return targets


def consistent(checks: Checks, label: str, before: DomainIndex, after: DomainIndex, update: IndexUpdate) -> None:
    """The counts of the update add up, in the update record, the passages and FAISS itself."""
    expected = before.stats.passages - update.dropped + update.embedded + update.reused
    checks(
        f"{label}: passages = before - dropped + embedded + reused",
        after.stats.passages == expected == update.passages,
        f"({before.stats.passages} - {update.dropped} + {update.embedded} + {update.reused} = {expected}; "
        f"index has {after.stats.passages}, update says {update.passages})",
    )
    held = index_ids(after)
    checks(
        f"{label}: FAISS holds exactly the listed passages",
        held == set(after.space.passages) and len(after.space.index) == len(after.space.passages),
        f"({len(held)} ids in FAISS, {len(after.space.passages)} passages)",
    )


def check_restart(
    checks: Checks, label: str, config: Config, embedder: Embedder, engine: Engine, question: str | None
) -> float:
    """A fresh Engine over the same data folder loads the stored index, applies nothing and answers alike."""
    fresh = Engine(config, embedder=lambda: embedder)
    clock = time.perf_counter()
    update = fresh.index(DOMAIN)
    seconds = time.perf_counter() - clock
    live, stored = snapshot(engine), snapshot(fresh)
    checks(
        f"{label}: restart loads the stored index as is",
        not update.applied and update.embedded == 0 and stored.stats.version == live.stats.version,
        f"(applied={update.applied}, embedded={update.embedded}, v{stored.stats.version} vs v{live.stats.version})",
    )
    checks(
        f"{label}: restart has the same passages",
        set(stored.space.passages) == set(live.space.passages) and index_ids(stored) == index_ids(live),
        f"({len(stored.space.passages)} vs {len(live.space.passages)})",
    )
    if question is not None:
        now, then = engine.retrieve(question, DOMAIN, 3), fresh.retrieve(question, DOMAIN, 3)
        checks(
            f"{label}: restart retrieves the same passages",
            [h.passage.id for h in now] == [h.passage.id for h in then],
        )
    return seconds


def edit_one(
    checks: Checks, engine: Engine, folder: Path, rel: str, number: int, config: Config, embedder: Embedder
) -> dict[str, Any]:
    """Replace one file's text by a made-up fact; time the update and check old text out, new text in."""
    label = f"edit {number + 1} ({rel})"
    path = folder / rel
    before = snapshot(engine)
    old_ids = set(before.records[rel].passage_ids)
    old_sentences = unique_sentences(before, rel, path.read_text(encoding="utf-8"))
    old_probe = probe(before, rel, old_sentences)
    fact = make_fact(number)
    path.write_text(fact.content, encoding="utf-8")

    update, wall = timed_sync(engine)

    after = snapshot(engine)
    new = passages_of(after, rel)
    checks(
        f"{label}: one file changed",
        (update.added, update.changed, update.removed) == (0, 1, 0),
        f"(+{update.added} ~{update.changed} -{update.removed})",
    )
    checks(
        f"{label}: all old passages dropped, new ones embedded",
        update.dropped == len(old_ids) and update.embedded >= 1 and update.embedded + update.reused == len(new),
        f"(dropped {update.dropped} of {len(old_ids)}, embedded {update.embedded}, reused {update.reused}, "
        f"{len(new)} new)",
    )
    consistent(checks, label, before, after, update)
    left = still_present(after, old_sentences)
    checks(
        f"{label}: old text gone",
        not left and not old_ids & set(after.space.passages) and not old_ids & index_ids(after),
        f"({len(old_sentences)} old sentences checked; still there: {left[:1]})",
    )
    hits = engine.retrieve(fact.question, DOMAIN, 3)
    top = hits[0].passage if hits else None
    checks(
        f"{label}: new text is hit 1",
        top is not None and top.path == rel and fact.key in top.text,
        f"(hit 1: {top.path if top else None} at {hits[0].distance:.3f})" if hits else "(no hits)",
    )
    hits = engine.retrieve(old_probe.text, DOMAIN, 3)
    echoed = [h.passage.path for h in hits if h.passage.id in old_ids or any(s in h.passage.text for s in left)]
    checks(f"{label}: old text not retrieved", not echoed, f"(found in {echoed})")
    check_restart(checks, label, config, embedder, engine, fact.question)
    return {
        "file": rel,
        "wall_seconds": round(wall, 4),
        "engine_seconds": round(update.seconds, 4),
        "embedded": update.embedded,
        "reused": update.reused,
        "dropped": update.dropped,
        "passages": update.passages,
    }


def rename_one(checks: Checks, engine: Engine, folder: Path, rel: str) -> dict[str, Any]:
    """Rename a file: its passages move to the new path with vectors from the cache, nothing is embedded."""
    label = f"rename ({rel})"
    new_rel = f"renamed-{rel}"
    before = snapshot(engine)
    old_texts = sorted(p.text for p in passages_of(before, rel))
    old_vectors = {p.text: before.space.index.vectors([p.id])[0] for p in passages_of(before, rel)}
    sentences = unique_sentences(before, rel, (folder / rel).read_text(encoding="utf-8"))
    query = probe(before, rel, sentences).text
    os.rename(folder / rel, folder / new_rel)

    update, wall = timed_sync(engine)

    after = snapshot(engine)
    checks(
        f"{label}: embeds nothing, reuses every passage",
        (update.added, update.removed, update.embedded) == (1, 1, 0)
        and update.reused == update.dropped == len(old_texts),
        f"(+{update.added} -{update.removed}, embedded {update.embedded}, reused {update.reused}, "
        f"dropped {update.dropped}, {len(old_texts)} passages)",
    )
    consistent(checks, label, before, after, update)
    moved = passages_of(after, new_rel)
    checks(
        f"{label}: same passages under the new name only",
        sorted(p.text for p in moved) == old_texts and not passages_of(after, rel),
        f"({len(moved)} under the new name, {len(passages_of(after, rel))} under the old)",
    )
    checks(
        f"{label}: same vectors as before the rename",
        all(
            p.text in old_vectors and np.allclose(after.space.index.vectors([p.id])[0], old_vectors[p.text], atol=1e-6)
            for p in moved
        ),
    )
    hits = engine.retrieve(query, DOMAIN, 3)
    checks(
        f"{label}: its text is found under the new name",
        bool(hits) and hits[0].passage.path == new_rel and hits[0].passage.text == query,
        f"(hit 1: {hits[0].passage.path} at {hits[0].distance:.4f})" if hits else "(no hits)",
    )
    return {
        "file": rel,
        "wall_seconds": round(wall, 4),
        "engine_seconds": round(update.seconds, 4),
        "embedded": update.embedded,
        "reused": update.reused,
        "dropped": update.dropped,
        "passages": update.passages,
    }


def delete_one(checks: Checks, engine: Engine, folder: Path, rel: str) -> dict[str, Any]:
    """Delete a file: its passages leave the index, nothing is embedded."""
    label = f"delete ({rel})"
    before = snapshot(engine)
    old_ids = set(before.records[rel].passage_ids)
    sentences = unique_sentences(before, rel, (folder / rel).read_text(encoding="utf-8"))
    query = probe(before, rel, sentences).text
    (folder / rel).unlink()

    update, wall = timed_sync(engine)

    after = snapshot(engine)
    checks(
        f"{label}: drops its passages, embeds nothing",
        (update.removed, update.embedded, update.reused) == (1, 0, 0) and update.dropped == len(old_ids) > 0,
        f"(-{update.removed}, dropped {update.dropped} of {len(old_ids)}, embedded {update.embedded})",
    )
    consistent(checks, label, before, after, update)
    left = still_present(after, sentences)
    checks(
        f"{label}: its text is gone",
        not left and not passages_of(after, rel) and not old_ids & index_ids(after),
        f"(still there: {left[:1]})",
    )
    hits = engine.retrieve(query, DOMAIN, 3)
    checks(
        f"{label}: its text is not retrieved",
        all(h.passage.path != rel and h.passage.text != query for h in hits),
        f"(hit 1: {hits[0].passage.path} at {hits[0].distance:.4f})" if hits else "(no hits)",
    )
    return {
        "file": rel,
        "wall_seconds": round(wall, 4),
        "engine_seconds": round(update.seconds, 4),
        "embedded": update.embedded,
        "reused": update.reused,
        "dropped": update.dropped,
        "passages": update.passages,
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

    print(f"SciFact: {result['files']} files, {result['passages']} passages ({result['chunk_size_chars']}-char chunks)")
    row("full rebuild", f"{result['full_rebuild_seconds']:.2f} s ({result['full_rebuild']['embedded']} embedded)")
    for edit in result["edits"]:
        row(
            f"one-file edit {edit['file']}",
            f"{edit['wall_seconds'] * 1000:.0f} ms (engine {edit['engine_seconds'] * 1000:.0f} ms; "
            f"{edit['embedded']} embedded, {edit['reused']} reused, {edit['dropped']} dropped)",
        )
    row(
        "one-file edit median / max",
        f"{result['update_seconds_median'] * 1000:.0f} / {result['update_seconds_max'] * 1000:.0f} ms",
    )
    for kind in ("rename", "delete"):
        step = result[kind]
        row(
            f"{kind} {step['file']}",
            f"{step['wall_seconds'] * 1000:.0f} ms ({step['embedded']} embedded, {step['reused']} reused, "
            f"{step['dropped']} dropped)",
        )
    row("restart (load stored index)", f"{result['restart_load_seconds'] * 1000:.0f} ms")
    verdict = "met" if result["target_met"] else "MISSED"
    print(
        f"update / full rebuild = {result['ratio_percent']:.3f}% (target < {result['target_percent']}%: {verdict}); "
        f"checks: {sum(c['ok'] for c in result['checks'])}/{len(result['checks'])} passed"
    )
    for failure in result["failed_checks"]:
        print(f"  FAILED: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, help="index only the first N SciFact abstracts (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="one-file edits to time (median and max)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile one extra edit (to stderr)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    checks = Checks()

    with tempfile.TemporaryDirectory(prefix="ragscope-bench-") as scratch:
        root = Path(scratch)
        knowledge = write_scifact(root / "knowledge", args.docs if args.docs is not None else sys.maxsize)
        folder = knowledge / DOMAIN
        config = load_config(REPO / "config.toml").with_paths(knowledge_dir=knowledge, data_dir=root / "data")
        embedder = SentenceTransformerEmbedder(config.embedding)
        embedder.embed(["warm-up"] * config.embedding.batch_size)  # first-call costs stay out of the baseline
        engine = Engine(config, embedder=lambda: embedder)

        # The baseline: read, chunk and embed everything (the cache is not used), build FAISS, write to disk.
        clock = time.perf_counter()
        full = engine.index(DOMAIN, full=True)
        full_seconds = time.perf_counter() - clock
        built = snapshot(engine)
        checks(
            "full rebuild embedded every passage",
            full.rebuilt and full.embedded == built.stats.passages and full.reused == 0,
            f"(embedded {full.embedded}, reused {full.reused}, {built.stats.passages} passages)",
        )
        if not checks(
            f"corpus has at least {MIN_PASSAGES} passages",
            built.stats.passages >= MIN_PASSAGES,
            f"(got {built.stats.passages} from {len(built.stats.files)} files at "
            f"{config.chunking.chunk_size_chars}-char chunks; use more --docs)",
        ):
            print("=" * 72, file=sys.stderr)
            print(f"CORPUS TOO SMALL: {built.stats.passages} < {MIN_PASSAGES} passages", file=sys.stderr)
            print("=" * 72, file=sys.stderr)

        targets = pick_targets(engine, folder, args.repeats + 2 + args.profile)
        edits = [
            edit_one(checks, engine, folder, rel, number, config, embedder)
            for number, rel in enumerate(targets[: args.repeats])
        ]
        renamed = rename_one(checks, engine, folder, targets[args.repeats])
        deleted = delete_one(checks, engine, folder, targets[args.repeats + 1])
        restart_seconds = check_restart(checks, "after all changes", config, embedder, engine, None)
        if args.profile:
            profile_edit(engine, folder, targets[-1], args.repeats)

    walls = [e["wall_seconds"] for e in edits]
    median = statistics.median(walls)
    ratio = 100 * median / full_seconds
    result: dict[str, Any] = {
        "corpus": "scifact",
        "files": len(built.stats.files),
        "passages": built.stats.passages,
        "chunk_size_chars": config.chunking.chunk_size_chars,
        "min_passages": MIN_PASSAGES,
        "full_rebuild_seconds": round(full_seconds, 3),
        "full_rebuild": full.to_dict(),
        "update_seconds_median": round(median, 4),
        "update_seconds_max": round(max(walls), 4),
        "update_engine_seconds_median": round(statistics.median(e["engine_seconds"] for e in edits), 4),
        "ratio_percent": round(ratio, 4),
        "target_percent": TARGET_PERCENT,
        "target_met": ratio < TARGET_PERCENT,
        "edits": edits,
        "rename": renamed,
        "delete": deleted,
        "restart_load_seconds": round(restart_seconds, 4),
        "checks": checks.results,
        "failed_checks": checks.failed,
        "passed": checks.passed and ratio < TARGET_PERCENT,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
