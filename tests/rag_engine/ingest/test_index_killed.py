"""Crash safety: `ragscope index` killed while it writes the index leaves a loadable index and nothing to
re-embed, on SciFact abstracts (one passage each) indexed once per module by the console script.

1. a racy SIGKILL of `index --rebuild` (which writes a new base file) or of an incremental `index` (which writes
   one update file after the base) the moment its temp file appears: either the old snapshot or the complete
   new one, never anything in between;
2. a deterministic death (SIGXFSZ, from a file-size limit) of an incremental `index` halfway through writing
   its update file.

No test sleeps: each waits on its child process (the kill comes from watchdog's thread).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from rag_engine.config import Config
from rag_engine.ingest.journal import update_files
from rag_engine.ingest.storage import load_domain_index
from rag_engine.ingest.store import NpzStore
from rag_engine.records import IndexUpdate
from tests.conftest import REPO, write
from tests.rag_engine.ingest.live import (
    PROCESS_SECONDS,
    SharedModels,
    check_hits,
    child_env,
    folder_args,
    live_config,
    ragscope_command,
    run_child,
)

pytestmark = pytest.mark.real_models


SCIFACT_CORPUS = REPO.parent / "shared" / "data" / "scifact-train" / "corpus.jsonl"
SCIFACT_FILES = 200
EDITED = 5
ADDED = 2
KILL_PREFIX = ".scifact.npz."


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

    def updates(self) -> list[Path]:
        return [path for _, _, path in update_files(self.index.parent, "scifact")]

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
    done = run_child(
        ragscope_command("index", "--json", "--domain", "scifact", *folder_args(corpus.knowledge, corpus.data)), base
    )
    assert done.returncode == 0, done.stderr
    (stats,) = json.loads(done.stdout)["domains"]
    assert stats["files"] == SCIFACT_FILES and stats["passages"] == SCIFACT_FILES and stats["version"] == 1
    return corpus


def index_temps(corpus: Corpus) -> list[Path]:
    return sorted(corpus.index.parent.glob(f"{KILL_PREFIX}*.tmp"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_version(config: Config) -> int:
    """The version the files hold (the base and its updates), read as a fresh process reads them."""
    snapshot = NpzStore(config).current("scifact", None)
    assert snapshot is not None, "the stored index is not loadable"
    assert len(snapshot.space.index) == len(snapshot.space.passages) == len(snapshot.space.lexical)
    return snapshot.stats.version


def check_recovery(corpus: Corpus, config: Config, models: SharedModels, question: str, version: int) -> IndexUpdate:
    """A new engine over the data dir loads what is stored and only applies the edits (nothing re-embedded:
    the killed run had already put the new texts in the embedding cache)."""
    assert stored_version(config) == version
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
    assert stored_version(config) == 2
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


@pytest.mark.parametrize("rebuild", [True, False], ids=["new base", "update file"])
def test_index_killed_when_its_temp_file_appears_leaves_a_loadable_index(
    tmp_path: Path,
    scifact: Corpus,
    repo_config: Config,
    models: SharedModels,
    record_property: Callable[[str, object], None],
    rebuild: bool,
) -> None:
    corpus = scifact.copy_to(tmp_path)
    question = corpus.change()
    before = sha256(corpus.index)
    handler = KillOnTemp()
    observer = Observer()
    observer.schedule(handler, str(corpus.index.parent), recursive=False)
    observer.start()
    log = tmp_path / "index.stderr"
    args = ["index", *(["--rebuild"] if rebuild else []), "--domain", "scifact"]
    args += folder_args(corpus.knowledge, corpus.data)
    try:
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                ragscope_command(*args),
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
    assert handler.temp is not None and (".update." in handler.temp.name) != rebuild  # the file it was writing
    config = live_config(repo_config, corpus.knowledge, corpus.data)
    # Either the old snapshot (the kill came first) or the complete new one: never anything in between.
    landed = stored_version(config) == 2
    record_property("kill_landed_after_the_file_was_in_place", landed)
    print(f"\nSIGKILL landed {'after' if landed else 'before'} the file was in place: temps {index_temps(corpus)}")
    if not landed:
        assert sha256(corpus.index) == before and corpus.updates() == []
        assert index_temps(corpus)  # the killed writer's temp file, left for the stale-temp sweep
    elif rebuild:
        assert sha256(corpus.index) != before
    else:
        assert sha256(corpus.index) == before and len(corpus.updates()) == 1
    check_recovery(corpus, config, models, question, 2 if landed else 1)


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
    """Deterministic: the kernel stops the write of the update file at `limit` bytes, i.e. always between
    mkstemp and the link that puts it in place. The limit lies between the size of the run's new embedding-cache
    segment (written first, and completely) and that of its update file, both measured on a run to completion
    over another copy of the same folder."""
    calibration = scifact.copy_to(tmp_path / "calibration")
    calibration.change()
    segments = set((calibration.data / "cache").rglob("*.npz"))
    args = ["index", "--domain", "scifact", *folder_args(calibration.knowledge, calibration.data)]
    assert run_child(ragscope_command(*args), tmp_path).returncode == 0
    (segment,) = set((calibration.data / "cache").rglob("*.npz")) - segments
    (update_file,) = calibration.updates()
    segment_bytes, update_bytes = segment.stat().st_size, update_file.stat().st_size
    # Not the whole index again (it holds the copied files' new stamps too: a copy changes every ctime).
    assert segment_bytes < update_bytes < calibration.index.stat().st_size // 2
    limit = (segment_bytes + update_bytes) // 2

    corpus = scifact.copy_to(tmp_path / "killed")
    question = corpus.change()
    before = sha256(corpus.index)
    segments = set((corpus.data / "cache").rglob("*.npz"))
    args = ["index", "--domain", "scifact", *folder_args(corpus.knowledge, corpus.data)]
    done = run_child([sys.executable, "-c", LIMITED_CLI, str(limit), *args], tmp_path)
    assert done.returncode == -signal.SIGXFSZ, (done.returncode, done.stderr)
    (leftover,) = index_temps(corpus)
    assert leftover.name.startswith(f"{KILL_PREFIX}") and ".update." in leftover.name
    assert leftover.stat().st_size == limit  # cut off exactly at the limit, before the link
    assert sha256(corpus.index) == before and corpus.updates() == []
    (new_segment,) = set((corpus.data / "cache").rglob("*.npz")) - segments  # the killed run cached its vectors
    assert new_segment.stat().st_size < limit
    update = check_recovery(corpus, live_config(repo_config, corpus.knowledge, corpus.data), models, question, 1)
    assert update.version == 2 and len(corpus.updates()) == 1
