"""What the live-knowledge tests share (test_live_watcher.py, test_live_answering.py, test_index_killed.py,
test_live_cli.py): the real models loaded once, the shipped settings over temporary folders, a running watcher
whose reports a test waits on, and the console script as a child process. The fixtures built from these are in
conftest.py.

Nothing here sleeps: `Live` waits, with a generous timeout, on the queue the watcher fills.
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rag_engine.config import Config, WatchConfig
from rag_engine.engine import Engine
from rag_engine.generate.generation import Generator, LlamaGenerator
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from rag_engine.records import Hit, IndexUpdate
from tests.conftest import REPO

CONFIG_PATH = REPO / "config.toml"
# Generous on purpose: the suite may share two cores with other CPU-heavy work.
WAIT_SECONDS = 120.0
PROCESS_SECONDS = 300.0
FAST_WATCH = WatchConfig(rebuild_debounce_seconds=0.3, max_rebuild_delay_seconds=5.0)


# -- shared models and configs -------------------------------------------------------------------------------
class SharedModels:
    """One embedder for the session (loaded up front) and one generator (loaded on first use)."""

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


def live_config(repo_config: Config, knowledge: Path, data: Path) -> Config:
    """The shipped settings over temporary folders, with a short debounce."""
    return dataclasses.replace(repo_config.with_paths(knowledge_dir=knowledge, data_dir=data), watch=FAST_WATCH)


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


# -- the console script as a child process -------------------------------------------------------------------
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


def run_child(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a child to its end (at most `PROCESS_SECONDS`) and capture what it wrote; its exit is the caller's
    to judge."""
    return subprocess.run(
        command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=PROCESS_SECONDS, check=False
    )
