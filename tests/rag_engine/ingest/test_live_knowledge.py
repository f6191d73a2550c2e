"""Live knowledge with the real parts: all-MiniLM-L6-v2, SmolLM2, FAISS, real file-system events, real processes.

Every test works on a copy (of the shipped history domain with an index built once per module, or of SciFact
abstracts) in its own temporary folder; the shipped knowledge folder is only read. The embedder is loaded once
for the module and shared by every in-process `Engine`; the generator likewise, on first use. No test sleeps:
each waits, with a generous timeout, on a queue the watcher (or a pipe-reading thread) fills, on a
`threading.Condition`/`Event`, or on a child process.

1. one file through its life (add, edit, rename, delete) under a running watcher, plus one generated answer;
2. 300 files dropped at once become a handful of updates, embedding each new passage exactly once;
3. questions keep being answered while 50 files change;
4. `ragscope index` killed while it writes the index leaves a loadable index and nothing to re-embed: a racy
   SIGKILL of `index --rebuild` the moment its temp file appears, and a deterministic death (SIGXFSZ, from a
   file-size limit) of an incremental `index` halfway through the write;
5. `ragscope watch --json` as a process: one JSON line per update, seen by a separate `ragscope ask`;
6. the watcher keeps following after its update sink raises (a closed pipe under `ragscope watch`).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from rag_engine.config import Config, WatchConfig, load_config
from rag_engine.engine import Engine
from rag_engine.generate.generation import Generator, LlamaGenerator
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from rag_engine.ingest.storage import load_domain_index
from rag_engine.records import Hit, IndexUpdate
from tests.conftest import REPO, SHIPPED_KNOWLEDGE, write

pytestmark = pytest.mark.real_models

CONFIG_PATH = REPO / "config.toml"
SCIFACT_CORPUS = REPO.parent / "shared" / "data" / "scifact-train" / "corpus.jsonl"
# Generous on purpose: the suite may share two cores with other CPU-heavy work.
WAIT_SECONDS = 120.0
PROCESS_SECONDS = 300.0
FAST_WATCH = WatchConfig(rebuild_debounce_seconds=0.3, max_rebuild_delay_seconds=5.0)


# -- shared models and configs -------------------------------------------------------------------------------


class SharedModels:
    """One embedder for the module (loaded up front) and one generator (loaded on first use)."""

    def __init__(self, config: Config) -> None:
        self.embedder = SentenceTransformerEmbedder(config.embedding)
        self._generation = config.generation
        self._generator: LlamaGenerator | None = None
        self._lock = threading.Lock()

    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = LlamaGenerator(self._generation)
            return self._generator

    def engine(self, config: Config) -> Engine:
        return Engine(config, embedder=lambda: self.embedder, generator=self.generator)


@pytest.fixture(scope="module")
def repo_config() -> Config:
    """The repository's config, ranking by embeddings alone (these tests check nearest-first order)."""
    config = load_config(CONFIG_PATH)
    return dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode="dense"))


@pytest.fixture(scope="module")
def models(repo_config: Config) -> SharedModels:
    return SharedModels(repo_config)


def live_config(repo_config: Config, knowledge: Path, data: Path) -> Config:
    """The shipped settings over temporary folders, with a short debounce."""
    return dataclasses.replace(repo_config.with_paths(knowledge_dir=knowledge, data_dir=data), watch=FAST_WATCH)


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory, repo_config: Config, models: SharedModels) -> Path:
    """A copy of the shipped history domain and its stored index (and embedding cache), built once."""
    base = tmp_path_factory.mktemp("history")
    shutil.copytree(SHIPPED_KNOWLEDGE / "history", base / "knowledge" / "history")
    update = models.engine(live_config(repo_config, base / "knowledge", base / "data")).index("history")
    assert update.rebuilt and update.added == 10
    return base


def copy_history(template: Path, tmp_path: Path) -> Path:
    """`tmp_path/knowledge/history` and `tmp_path/data`, copied with their mtimes (copy2), so the stored index
    matches the folder as if an earlier run had built it. Returns the knowledge root."""
    shutil.copytree(template / "knowledge", tmp_path / "knowledge")
    shutil.copytree(template / "data", tmp_path / "data")
    return tmp_path / "knowledge"


def all_passage_texts(engine: Engine, domain: str) -> dict[int, tuple[str, str]]:
    """id -> (path, text) of every passage of the domain's current snapshot."""
    return {i: (p.path, p.text) for i, p in engine.snapshot(domain).space.passages.items()}


def check_hits(hits: list[Hit]) -> None:
    assert hits, "no hits"
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    distances = [hit.distance for hit in hits]
    assert all(isinstance(d, float) and math.isfinite(d) and -1e-4 <= d <= 2.0 + 1e-4 for d in distances), distances
    assert distances == sorted(distances), distances


# -- a running watcher ---------------------------------------------------------------------------------------


@dataclass
class Live:
    """An engine with a started watcher, and what the watcher reported from its worker thread."""

    engine: Engine
    root: Path
    updates: queue.Queue[IndexUpdate]
    errors: queue.Queue[tuple[str, Exception]]
    initial: list[IndexUpdate] = field(default_factory=list)

    def check_errors(self) -> None:
        if not self.errors.empty():
            domain, exc = self.errors.get_nowait()
            pytest.fail(f"the watcher failed to update {domain}: {exc!r}")

    def next_update(self) -> IndexUpdate:
        try:
            update = self.updates.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            self.check_errors()
            pytest.fail(f"no update within {WAIT_SECONDS}s")
        self.check_errors()
        return update

    def until(self, done: Callable[[list[IndexUpdate]], bool], what: str) -> list[IndexUpdate]:
        """Updates, as they come, until `done(received)`; judged on the reports only, so none is left in flight."""
        received: list[IndexUpdate] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while not done(received):
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                received.append(self.updates.get(timeout=remaining))
            except queue.Empty:
                self.check_errors()
                pytest.fail(f"timed out waiting for {what}; received {[u.to_dict() for u in received]}")
            self.check_errors()
        return received


@pytest.fixture
def live_history(tmp_path: Path, history_template: Path, repo_config: Config, models: SharedModels) -> Iterator[Live]:
    """A watcher over a copy of the history domain whose stored index is current: the initial sync loads it
    and reports nothing."""
    root = copy_history(history_template, tmp_path)
    engine = models.engine(live_config(repo_config, root, tmp_path / "data"))
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    with engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc))):
        initial: list[IndexUpdate] = []
        while not updates.empty():  # the initial sync reports from start(), before it returns
            initial.append(updates.get_nowait())
        assert initial == []
        yield Live(engine, root, updates, errors, initial)


# -- 1. one file's life --------------------------------------------------------------------------------------

ACCORD_QUESTION = "Where was the Brennic Accord signed?"


def test_a_file_is_followed_through_add_edit_rename_and_delete(
    live_history: Live, record_property: Callable[[str, object], None]
) -> None:
    engine, folder = live_history.engine, live_history.root / "history"

    # Added: found first, and answered from.
    write(
        folder / "brennic-accord.md",
        "The Brennic Accord was signed in the town of Oskavel in 1721 by seven river guilds.\n",
    )
    update = live_history.next_update()
    assert (update.domain, update.added, update.changed, update.removed) == ("history", 1, 0, 0)
    assert update.embedded >= 1 and not update.rebuilt
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "brennic-accord.md" and "Oskavel" in top.passage.text

    answer = engine.answer(ACCORD_QUESTION, "history")
    assert answer.covered and answer.text
    assert answer.hits[0].passage.path == "brennic-accord.md" and answer.hits[0].in_prompt
    record_property("answer_mentions_oskavel", "Oskavel" in answer.text)
    print(f"\nanswer from SmolLM2: {answer.text!r}")

    # Edited: the new text is found, the old one is gone from memory and from disk.
    write(
        folder / "brennic-accord.md",
        "The Brennic Accord was signed in the town of Tarrow Ford in 1744 by seven river guilds.\n",
    )
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (0, 1, 0)
    assert update.embedded >= 1 and update.dropped >= 1
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "brennic-accord.md"
    assert "Tarrow Ford" in top.passage.text and "1744" in top.passage.text
    assert not [text for _, text in all_passage_texts(engine, "history").values() if "Oskavel" in text]
    _, meta = load_domain_index(engine.index_file("history"))
    assert not [p for p in meta["passages"] if "Oskavel" in p["text"]]

    # Renamed: same text, new path: nothing embedded, the vectors come from the cache.
    os.rename(folder / "brennic-accord.md", folder / "river-guilds-treaty.md")
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (1, 0, 1)
    assert update.embedded == 0 and update.reused >= 1
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "river-guilds-treaty.md" and "Tarrow Ford" in top.passage.text

    # Deleted: neither name is anywhere any more.
    os.remove(folder / "river-guilds-treaty.md")
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (0, 0, 1) and update.dropped >= 1
    names = {"brennic-accord.md", "river-guilds-treaty.md"}
    assert not names & {hit.passage.path for hit in engine.retrieve(ACCORD_QUESTION, "history", 3)}
    assert not names & {path for path, _ in all_passage_texts(engine, "history").values()}
    assert not names & set(engine.domain_stats("history").files)
    assert live_history.updates.empty()


# -- 2. a burst ----------------------------------------------------------------------------------------------

GOODS = ["amber", "salt cod", "tin ingots", "indigo", "walrus ivory", "pine tar", "saffron"]
ISLANDS = ["Skerrow", "Brannock", "Ulvey", "Meriden", "Coldharbour", "Tassel", "Fenwick", "Orrin", "Lusk"]


def ledger_line(i: int) -> str:
    return (
        f"Ledger {i:03d}: the harbour master of Velmora recorded {17 + 3 * i} crates of {GOODS[i % len(GOODS)]} "
        f"arriving from the island of {ISLANDS[i % len(ISLANDS)]} on day {i + 1} of the wet season.\n"
    )


def test_three_hundred_files_dropped_at_once_are_a_handful_of_updates(live_history: Live) -> None:
    engine, folder = live_history.engine, live_history.root / "history"
    before = engine.domain_stats("history")
    names = [f"ledger-{i:03d}.md" for i in range(300)]
    for i, name in enumerate(names):
        write(folder / name, ledger_line(i))

    received = live_history.until(lambda got: sum(u.added for u in got) >= len(names), "300 files to be added")
    after = engine.domain_stats("history")
    assert set(names) <= set(after.files) and len(after.files) == len(before.files) + len(names)
    print(f"\n300 files -> {len(received)} update(s): {[(u.added, u.embedded, round(u.seconds, 2)) for u in received]}")
    assert 1 <= len(received) <= 5, [u.to_dict() for u in received]
    assert sum(u.added for u in received) == len(names)
    assert sum(u.changed + u.removed + u.failed for u in received) == 0
    assert sum(u.embedded for u in received) == after.passages - before.passages
    top = engine.retrieve("How many crates of saffron came from the island of Ulvey on day 84?", "history", 4)
    assert all(hit.passage.path.startswith("ledger-") for hit in top)


# -- 3. questions while files change -------------------------------------------------------------------------


def seed_note(i: int) -> str:
    return (
        f"# Archive note {i}\n\nThe archive of Dunmarrow keeps letter {i}, written by the cartographer "
        f"Ilsa Venn in {1800 + i} about the tides of the Korrel estuary.\n"
    )


def revised_note(i: int) -> str:
    return (
        f"# Archive note {i}, revised\n\nLetter {i} of the Dunmarrow archive was rewritten in {1900 + i}: it now "
        f"describes the salt marshes of Pellin and the herons nesting there (revision marker R{i:02d}).\n"
    )


def fresh_note(i: int) -> str:
    return (
        f"# Beacon log {i}\n\nBeacon {i} on the cliffs of Harrowgate burned {40 + i} nights in a row during "
        f"the storms of the year {1650 + i}, guiding {i + 3} fishing boats home.\n"
    )


class Counter:
    """A count another thread can wait on."""

    def __init__(self) -> None:
        self._value = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self._value += 1
            self._changed.notify_all()

    @property
    def value(self) -> int:
        with self._changed:
            return self._value

    def wait_for(self, target: int, timeout: float = WAIT_SECONDS) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._value >= target, timeout), f"{self._value} < {target}"


def test_questions_are_answered_while_fifty_files_change(
    tmp_path: Path, history_template: Path, repo_config: Config, models: SharedModels
) -> None:
    root = copy_history(history_template, tmp_path)
    folder = root / "history"
    for i in range(25):
        write(folder / f"seed-{i:02d}.md", seed_note(i))
    config = live_config(repo_config, root, tmp_path / "data")
    engine = models.engine(config)
    questions = [json.loads(line)["question"] for line in (folder / "questions.jsonl").read_text().splitlines() if line]
    questions += ["What did Ilsa Venn write about the Korrel estuary?", "Which beacon guided fishing boats home?"]

    stop, answer_now = threading.Event(), threading.Event()
    retrieved, answered = Counter(), Counter()
    failures: list[str] = []
    answers: list[str] = []

    def ask_in_a_loop() -> None:
        i = 0
        while not stop.is_set():
            question = questions[i % len(questions)]
            i += 1
            try:
                if answer_now.is_set() and not answers:
                    answer = engine.answer("When was the Eiffel Tower finished?", "history")
                    check_hits(list(answer.hits))
                    assert answer.covered and answer.text and answer.hits[0].passage.path == "eiffel-tower.md"
                    answers.append(answer.text)
                    answered.add()
                    continue
                check_hits(engine.retrieve(question, "history", 4))
                retrieved.add()
            except BaseException as exc:  # anything at all, reported by the main thread
                failures.append(f"{question!r}: {exc!r}")
                if answer_now.is_set() and not answers:
                    answers.append("failed")
                    answered.add()

    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    asker = threading.Thread(target=ask_in_a_loop, name="asker", daemon=True)
    with engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc))):
        live = Live(engine, root, updates, errors)
        while not updates.empty():
            live.initial.append(updates.get_nowait())
        assert [(u.added, u.rebuilt) for u in live.initial] == [(25, False)]
        asker.start()
        try:
            retrieved.wait_for(3)
            during_start = retrieved.value

            for i in range(25):  # burst 1: 25 new files
                write(folder / f"beacon-{i:02d}.md", fresh_note(i))
            added = live.until(lambda got: sum(u.added for u in got) >= 25, "25 added files")

            for i in range(15):  # burst 2: 15 edits, while the one generated answer runs
                write(folder / f"seed-{i:02d}.md", revised_note(i))
            answer_now.set()
            changed = live.until(lambda got: sum(u.changed for u in got) >= 15, "15 edited files")

            for i in range(15, 25):  # burst 3: 10 deletions
                os.remove(folder / f"seed-{i:02d}.md")
            removed = live.until(lambda got: sum(u.removed for u in got) >= 10, "10 deleted files")
            during = retrieved.value - during_start

            answered.wait_for(1)
            retrieved.wait_for(retrieved.value + 3)  # the last snapshot is queried too
        finally:
            stop.set()
            asker.join(WAIT_SECONDS)
    assert not asker.is_alive()

    print(
        f"\n{retrieved.value} retrievals ({during} while the 50 files changed), updates per burst: "
        f"{len(added)}/{len(changed)}/{len(removed)}, answer: {answers[0]!r}"
    )
    assert failures == []
    assert during >= 1 and retrieved.value >= 6
    assert sum(u.added for u in added) == 25 and sum(u.changed for u in changed) == 15
    assert sum(u.removed for u in removed) == 10

    deleted = {f"seed-{i:02d}.md" for i in range(15, 25)}
    edited = {f"seed-{i:02d}.md" for i in range(15)}
    fresh = {f"beacon-{i:02d}.md" for i in range(25)}
    stats = engine.domain_stats("history")
    assert not deleted & set(stats.files) and (edited | fresh) <= set(stats.files) and len(stats.files) == 50
    passages = all_passage_texts(engine, "history").values()
    assert not deleted & {path for path, _ in passages}
    for i in range(15):
        texts = [text for path, text in passages if path == f"seed-{i:02d}.md"]
        assert texts and any(f"revision marker R{i:02d}" in t for t in texts), texts
        assert not any("Korrel estuary" in t for t in texts), texts
    top = engine.retrieve("Which letter describes the salt marshes of Pellin and the herons?", "history", 3)
    assert top[0].passage.path in edited

    # What was written to disk is the same state: a new engine finds nothing to do.
    again = models.engine(config)
    assert not again.index("history").applied
    assert set(again.domain_stats("history").files) == set(stats.files)


# -- 4. `ragscope index` killed while writing ----------------------------------------------------------------

SCIFACT_FILES = 200
EDITED = 5
ADDED = 2
KILL_PREFIX = ".scifact.npz."


RUN_CLI = "from ragscope.cli import main; raise SystemExit(main())"


def ragscope_command(*args: str) -> list[str]:
    """The installed console script (there is no `python -m ragscope.cli`)."""
    script = Path(sys.executable).parent / "ragscope"
    command = [str(script)] if script.is_file() else [sys.executable, "-c", RUN_CLI]
    return [*command, *args]


def folder_args(knowledge: Path, data: Path) -> list[str]:
    return ["--config", str(CONFIG_PATH), "--knowledge", str(knowledge), "--data-dir", str(data)]


def child_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def abstract_note(row: dict[str, Any]) -> str:
    """Title and the opening of the abstract: one passage per file, so embedding stays cheap."""
    opening = row["text"][:200].rsplit(" ", 1)[0] if len(row["text"]) > 200 else row["text"]
    return f"# {row['title']}\n\n{opening}\n"


@dataclass(frozen=True)
class Corpus:
    knowledge: Path
    data: Path

    @property
    def index(self) -> Path:
        return self.data / "indexes" / "scifact.npz"

    def copy_to(self, target: Path) -> Corpus:
        """A copy that keeps the files' mtimes (copy2), so the stored index still matches the folder."""
        shutil.copytree(self.knowledge, target / "knowledge")
        shutil.copytree(self.data, target / "data")
        return Corpus(target / "knowledge", target / "data")

    def change(self) -> str:
        """Edit some files and add some; returns a question only the first edited file answers."""
        folder = self.knowledge / "scifact"
        for n, path in enumerate(sorted(folder.glob("*.md"))[:EDITED]):
            text = path.read_text(encoding="utf-8")
            path.write_text(f"{text}\nAddendum {n}: the Hollowmere otter cohort numbered {412 + n} animals.\n")
        for n in range(ADDED):
            write(
                folder / f"zz-added-{n}.md", f"# Added note {n}\n\nGlimmerfen moss doubles its mass in {9 + n} days.\n"
            )
        return "How many animals were in the Hollowmere otter cohort?"


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """SciFact abstracts, one .md each, indexed once by `ragscope index` run to completion."""
    base = tmp_path_factory.mktemp("scifact")
    corpus = Corpus(base / "knowledge", base / "data")
    with SCIFACT_CORPUS.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for _, line in zip(range(SCIFACT_FILES), lines, strict=False)]
    for row in rows:
        write(corpus.knowledge / "scifact" / f"abstract-{row['_id']}.md", abstract_note(row))
    done = subprocess.run(
        ragscope_command("index", "--json", "--domain", "scifact", *folder_args(corpus.knowledge, corpus.data)),
        cwd=base,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=PROCESS_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (stats,) = json.loads(done.stdout)["domains"]
    assert stats["files"] == SCIFACT_FILES and stats["passages"] == SCIFACT_FILES and stats["version"] == 1
    return corpus


def index_temps(corpus: Corpus) -> list[Path]:
    return sorted(corpus.index.parent.glob(f"{KILL_PREFIX}*.tmp"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_recovery(corpus: Corpus, config: Config, models: SharedModels, question: str, version: int) -> IndexUpdate:
    """A new engine over the data dir loads what is stored and only applies the edits (nothing re-embedded:
    the killed run had already put the new texts in the embedding cache)."""
    index, meta = load_domain_index(corpus.index)
    assert meta["version"] == version and len(index) == len(meta["passages"])
    engine = models.engine(config)
    update = engine.index("scifact")
    assert not update.rebuilt, update.to_dict()
    if version == 1:  # the old index survived: the edits are applied to it
        assert (update.added, update.changed, update.removed) == (ADDED, EDITED, 0), update.to_dict()
        assert (update.embedded, update.reused, update.version) == (0, ADDED + EDITED, 2), update.to_dict()
    else:  # the new index was already in place: nothing left to do
        assert not update.applied, update.to_dict()
    stats = engine.domain_stats("scifact")
    assert len(stats.files) == SCIFACT_FILES + ADDED and stats.passages == SCIFACT_FILES + ADDED
    hits = engine.retrieve(question, "scifact", 3)
    check_hits(hits)
    assert "Hollowmere" in hits[0].passage.text
    load_domain_index(corpus.index)  # still (or again) a valid file
    return update


class KillOnTemp(FileSystemEventHandler):
    """SIGKILLs the process the moment the index's temp file is created (from watchdog's thread)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = threading.Event()
        self.temp: Path | None = None

    def on_created(self, event: FileSystemEvent) -> None:
        path = Path(os.fsdecode(event.src_path))
        if self.process is None or self.killed.is_set() or event.is_directory:
            return
        if path.name.startswith(KILL_PREFIX) and path.name.endswith(".tmp"):
            os.kill(self.process.pid, signal.SIGKILL)
            self.temp = path
            self.killed.set()


def test_index_killed_when_its_temp_file_appears_leaves_a_loadable_index(
    tmp_path: Path,
    scifact: Corpus,
    repo_config: Config,
    models: SharedModels,
    record_property: Callable[[str, object], None],
) -> None:
    corpus = scifact.copy_to(tmp_path)
    question = corpus.change()
    before = sha256(corpus.index)
    handler = KillOnTemp()
    observer = Observer()
    observer.schedule(handler, str(corpus.index.parent), recursive=False)
    observer.start()
    log = tmp_path / "index.stderr"
    try:
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                ragscope_command(
                    "index", "--rebuild", "--domain", "scifact", *folder_args(corpus.knowledge, corpus.data)
                ),
                cwd=tmp_path,
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            handler.process = process
            try:
                process.wait(PROCESS_SECONDS)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    finally:
        observer.stop()
        observer.join()

    assert handler.killed.is_set(), f"no temp file was seen; exit {process.returncode}: {log.read_text()}"
    assert process.returncode == -signal.SIGKILL, log.read_text()
    leftovers = index_temps(corpus)
    landed_before_replace = bool(leftovers)
    record_property("kill_landed_before_replace", landed_before_replace)
    print(f"\nSIGKILL landed {'before' if landed_before_replace else 'after'} os.replace: temp files {leftovers}")
    # Either the old file untouched (the kill came first) or the complete new one: never anything in between.
    if landed_before_replace:
        assert sha256(corpus.index) == before
    check_recovery(
        corpus,
        live_config(repo_config, corpus.knowledge, corpus.data),
        models,
        question,
        1 if landed_before_replace else 2,
    )


# Runs the CLI with a maximum file size: writing past it raises SIGXFSZ, which kills the process (no core file).
LIMITED_CLI = (
    "import resource, signal, sys\n"
    "limit = int(sys.argv.pop(1))\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"  # Python starts with SIGXFSZ ignored (EFBIG instead)
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "from ragscope.cli import main\n"
    "raise SystemExit(main())\n"
)


def test_index_killed_by_a_file_size_limit_mid_write_leaves_the_old_index(
    tmp_path: Path, scifact: Corpus, repo_config: Config, models: SharedModels
) -> None:
    """Deterministic: the kernel stops the index write at `limit` bytes, i.e. always between mkstemp and
    os.replace. An incremental `index` (not --rebuild) keeps it cheap: it embeds only the changed files, but
    writes the whole index all the same; its one new cache segment stays far below the limit."""
    corpus = scifact.copy_to(tmp_path)
    question = corpus.change()
    before = sha256(corpus.index)
    segments = set((corpus.data / "cache").rglob("*.npz"))
    limit = corpus.index.stat().st_size // 2

    args = ["index", "--domain", "scifact", *folder_args(corpus.knowledge, corpus.data)]
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_CLI, str(limit), *args],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=PROCESS_SECONDS,
        check=False,
    )
    assert done.returncode == -signal.SIGXFSZ, (done.returncode, done.stderr)
    (leftover,) = index_temps(corpus)
    assert leftover.stat().st_size == limit  # cut off exactly at the limit, before os.replace
    assert sha256(corpus.index) == before
    (new_segment,) = set((corpus.data / "cache").rglob("*.npz")) - segments  # the killed run cached its vectors
    assert new_segment.stat().st_size < limit
    update = check_recovery(corpus, live_config(repo_config, corpus.knowledge, corpus.data), models, question, 1)
    assert update.version == 2


# -- 5. `ragscope watch --json` as a process -----------------------------------------------------------------


class Lines:
    """The lines of a child's pipe, read by a daemon thread into a queue (None at end of file)."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, wanted: Callable[[str], bool], what: str, timeout: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                pytest.fail(f"no {what} within {timeout}s; lines so far: {self.seen}")
            if line is None:
                pytest.fail(f"the stream ended before {what}; lines: {self.seen}")
            self.seen.append(line)
            if wanted(line):
                return line


def test_ragscope_watch_json_reports_an_added_file_that_ragscope_ask_then_finds(
    tmp_path: Path, history_template: Path
) -> None:
    root = copy_history(history_template, tmp_path)
    data = tmp_path / "data"
    process = subprocess.Popen(
        ragscope_command("watch", "--json", *folder_args(root, data)),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        out, err = Lines(process.stdout), Lines(process.stderr)
        err.until(lambda line: line.startswith("watching "), "'watching' notice", PROCESS_SECONDS)

        fact = "The Vellamy Lantern Festival is held every spring on the island of Quorrin, where 312 paper lanterns "
        write(root / "history" / "vellamy-lanterns.md", fact + "are floated on the bay.\n")
        line = out.until(lambda text: not json.loads(text)["rebuilt"], "JSON line for the added file")
        assert out.seen == [line]  # the stored index was current: the initial sync printed nothing
        update = json.loads(line)
        assert {"domain", "added", "changed", "removed", "embedded", "reused", "seconds"} <= set(update)
        assert (update["domain"], update["added"], update["changed"], update["removed"]) == ("history", 1, 0, 0)
        assert update["embedded"] >= 1

        question = "On which island is the Vellamy Lantern Festival held?"
        asked = subprocess.run(
            ragscope_command("ask", question, "--json", "--domain", "history", *folder_args(root, data)),
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=PROCESS_SECONDS,
            check=False,
        )
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["used_rag"] and answer["sources"][0]["path"] == "vellamy-lanterns.md"
        assert "Quorrin" in answer["sources"][0]["text"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT_SECONDS) == 0, err.seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- 6. a sink that raises once ------------------------------------------------------------------------------


def test_the_watcher_keeps_following_after_its_update_sink_raises(
    tmp_path: Path,
    history_template: Path,
    repo_config: Config,
    models: SharedModels,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = copy_history(history_template, tmp_path)
    engine = models.engine(live_config(repo_config, root, tmp_path / "data"))
    # One queue for both outcomes, so neither is waited for in vain: the next update, or the worker's death.
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    monkeypatch.setattr(threading, "excepthook", lambda args: events.put(("thread died", args.exc_value)))

    raised: list[IndexUpdate] = []

    def sink(update: IndexUpdate) -> None:
        events.put(("update", update))
        if not raised:  # the first report only, as when the reader of `ragscope watch` goes away
            raised.append(update)
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with engine.watch(sink):
        write(root / "history" / "orvale-bridge.md", "The Orvale bridge over the Sennet has nine stone arches.\n")
        kind, first = events.get(timeout=WAIT_SECONDS)
        assert kind == "update" and isinstance(first, IndexUpdate) and first.added == 1

        write(root / "history" / "quessa-well.md", "The Quessa well in the old market is forty metres deep.\n")
        kind, second = events.get(timeout=WAIT_SECONDS)
        assert kind == "update", f"the watcher's worker thread died: {second!r}"
        assert isinstance(second, IndexUpdate) and second.added == 1
        assert "quessa-well.md" in engine.domain_stats("history").files
