"""Chaos: a live knowledge folder under a running watcher, shaken by a seeded random writer while questions go on.

The writer makes a bounded number of operations (create, edit, rename, delete, chmod, make and remove
folders, and symlinks: to files and folders inside, to a secret outside the knowledge folder, dangling, in a
loop), in batches, each batch waiting until the watcher has run a sync, so the changes land during syncs and
not only between them. A second thread asks questions the whole time. Afterwards, once the watcher has
indexed a last marker file written after every operation, the domain's index must equal a clean rebuild of
the final folder (same passage ids, files and skip reasons), no question may have failed, the watcher may have
reported no error, and no text of the secret may appear in any passage, any embedded text or any answer.
Fake models (tests/fakes.py); real files, real events, real FAISS. No sleeping: every wait is on an event or
a queue, with a timeout.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import random
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from rag_engine.config import Config, WatchConfig
from rag_engine.engine import Engine
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

OPERATIONS = 300
BATCH = 10
SEED = int(os.environ.get("RAGSCOPE_CHAOS_SEED", "2013"))
WAIT_SECONDS = 30.0
SECRET = "Obsidianwyrm sentinel text that lives outside the knowledge folder"
SECRET_WORD = "obsidianwyrm"
WORDS = ("quenth", "varnholm", "zorblat", "moss", "lichen", "basalt", "newt", "toad", "fern", "river", "stone", "lake")
QUESTIONS = ["where does the zorblat live", "what grows on Quenth stones", "which lake is cold", "basalt valley rain"]
# root reads a file whatever its mode; anyone else could not read a 000 file, and a file made readable again
# with the same size and mtime is not re-read (see the report on `stale_files`), so only root gets 000.
MODES = (0o000, 0o444, 0o600, 0o644) if os.geteuid() == 0 else (0o444, 0o600, 0o644)


class Writer:
    """The random operations on one domain folder; each picks from what is there now, so each one acts."""

    def __init__(self, folder: Path, secret: Path, secret_folder: Path, rng: random.Random) -> None:
        self.folder = folder
        self.secret = secret
        self.secret_folder = secret_folder
        self.rng = rng
        self.count = 0
        self.done: Counter[str] = Counter()

    def _name(self, suffix: str = ".md") -> str:
        self.count += 1
        return f"note-{self.count:04d}{suffix}"

    def _sentence(self) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(4, 12))).capitalize() + ".\n"

    def _folders(self) -> list[Path]:
        below = (Path(current) / name for current, names, _ in os.walk(self.folder) for name in names)
        return [self.folder, *sorted(path for path in below if not path.is_symlink())]

    def _entries(self, links: bool) -> list[Path]:
        found = []
        for current, names, files in os.walk(self.folder):
            for name in sorted(files + names):
                path = Path(current) / name
                if os.path.islink(path) if links else path.is_file() and not path.is_symlink():
                    found.append(path)
        return found

    def _place(self, suffix: str = ".md") -> Path:
        return self.rng.choice(self._folders()) / self._name(suffix)

    def step(self) -> None:
        files, links = self._entries(links=False), self._entries(links=True)
        choices: list[Callable[[], None]] = [self.create, self.create, self.mkdir, self.link_outside, self.link_broken]
        if files:
            choices += [self.edit, self.edit, self.rename, self.delete, self.chmod, self.link_inside, self.link_loop]
        if links:
            choices += [self.rename_link, self.delete_link]
        if len(self._folders()) > 1:
            choices += [self.remove_folder, self.link_folder]
        operation = self.rng.choice(choices)
        operation()
        self.done[operation.__name__] += 1

    def create(self) -> None:
        write(self._place(self.rng.choice([".md", ".txt"])), self._sentence() + "\n" + self._sentence())

    def edit(self) -> None:
        # Always longer: an edit of the same size within one mtime tick is invisible to any stat-based sync.
        path = self.rng.choice(self._entries(links=False))
        path.chmod(0o644)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n" + self._sentence())

    def rename(self) -> None:
        path = self.rng.choice(self._entries(links=False))
        os.rename(path, self._place(path.suffix))

    def delete(self) -> None:
        self.rng.choice(self._entries(links=False)).unlink()

    def chmod(self) -> None:
        self.rng.choice(self._entries(links=False)).chmod(self.rng.choice(MODES))

    def mkdir(self) -> None:
        (self.rng.choice(self._folders()) / f"folder-{self._name('')}").mkdir()

    def remove_folder(self) -> None:
        shutil.rmtree(self.rng.choice(self._folders()[1:]))

    def link_outside(self) -> None:
        if self.rng.random() < 0.7:
            self._place().symlink_to(self.secret)
        else:
            (self.rng.choice(self._folders()) / f"outside-{self._name('')}").symlink_to(self.secret_folder)

    def link_inside(self) -> None:
        self._place().symlink_to(self.rng.choice(self._entries(links=False)))

    def link_folder(self) -> None:
        # To a folder inside (followed) or to the domain folder itself (a loop, skipped).
        target = self.rng.choice(self._folders())
        (self.rng.choice(self._folders()) / f"linked-{self._name('')}").symlink_to(target)

    def link_broken(self) -> None:
        self._place().symlink_to(self.folder / "never-there.md")

    def link_loop(self) -> None:
        first, second = self._place(), self._place()
        first.symlink_to(second)
        second.symlink_to(first)

    def rename_link(self) -> None:
        path = self.rng.choice(self._entries(links=True))
        os.rename(path, self._place(path.suffix or ".md"))

    def delete_link(self) -> None:
        self.rng.choice(self._entries(links=True)).unlink()


def test_the_index_survives_chaos_and_equals_a_clean_rebuild(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "live"
    folder = root / "chaos"
    write(folder / "seed.md", "The zorblat lives in the valley of Quenth and eats blue moss.\n")
    secret = write(tmp_path / "outside" / "secret.md", f"{SECRET}.\n\n{SECRET}, twice.\n")
    write(tmp_path / "outside" / "inner" / "secret.txt", f"{SECRET}, in a folder.\n")
    live = dataclasses.replace(
        config.with_paths(knowledge_dir=root, data_dir=tmp_path / "live-data"),
        watch=WatchConfig(rebuild_debounce_seconds=0.05, max_rebuild_delay_seconds=0.5),
    )
    embedder = HashingEmbedder()
    knowledge = KnowledgeBase(live, lambda: embedder)
    engine = Engine(live, embedder=lambda: embedder, generator=EchoGenerator, knowledge=knowledge)

    synced = threading.Event()  # set after every sync the watcher runs, so the writer can pace itself on them
    real_sync = knowledge.sync
    synced_count = [0]

    def pacing_sync(domain: str, *args: object, **kwargs: object) -> IndexUpdate:
        try:
            return real_sync(domain)
        finally:
            synced_count[0] += 1
            synced.set()

    monkeypatch.setattr(knowledge, "sync", pacing_sync)
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    asked: list[int] = [0]
    failures: list[BaseException] = []
    leaks: list[str] = []
    writing_done = threading.Event()

    def ask() -> None:
        rng = random.Random(SEED + 1)
        while not writing_done.is_set():
            try:
                answer = engine.answer(rng.choice(QUESTIONS), "chaos")
            except BaseException as exc:  # the test fails on any; keep asking to find more
                failures.append(exc)
                continue
            asked[0] += 1
            leaks.extend(hit.passage.path for hit in answer.hits if SECRET_WORD in hit.passage.text.lower())

    writer = Writer(folder, secret, secret.parent / "inner", random.Random(SEED))
    with engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc))) as watcher:
        asker = threading.Thread(target=ask, name="chaos-asker", daemon=True)
        asker.start()
        try:
            for start in range(0, OPERATIONS, BATCH):
                synced.clear()
                for _ in range(min(BATCH, OPERATIONS - start)):
                    writer.step()
                assert synced.wait(WAIT_SECONDS), f"no sync within {WAIT_SECONDS}s of operation {start + BATCH}"
            # Written after every operation: once the index holds it, a sync has walked the final folder.
            write(folder / "zz-final-marker.md", "The final marker of the Quenth chaos.\n")
            while "zz-final-marker.md" not in knowledge.get("chaos").stats.files:
                updates.get(timeout=WAIT_SECONDS)
        finally:
            writing_done.set()
            asker.join(WAIT_SECONDS)
        watcher.stop()  # no sync may run while the result is compared

    final = knowledge.get("chaos")
    rebuilt_engine = Engine(
        live.with_paths(data_dir=tmp_path / "clean-data"), embedder=HashingEmbedder, generator=EchoGenerator
    )
    rebuilt_engine.index("chaos")
    clean = rebuilt_engine.snapshot("chaos")

    assert not failures, failures[:3]
    assert asked[0] > 0
    assert errors.empty(), errors.get_nowait()
    assert sorted(final.space.passages) == sorted(clean.space.passages)
    assert {i: (p.path, p.text) for i, p in final.space.passages.items()} == {
        i: (p.path, p.text) for i, p in clean.space.passages.items()
    }
    assert final.stats.files == clean.stats.files
    assert final.stats.skipped == clean.stats.skipped
    assert len(final.space.index) == len(final.space.passages) == final.stats.passages
    # The index stored on disk is the same one: a restart finds nothing to do.
    restarted = Engine(live, embedder=HashingEmbedder, generator=EchoGenerator)
    assert not restarted.index("chaos").applied
    assert sorted(restarted.snapshot("chaos").space.passages) == sorted(clean.space.passages)
    # The chaos was real: every kind of operation ran, and the watcher kept up with it in many updates.
    assert sum(writer.done.values()) == OPERATIONS
    assert {"create", "edit", "rename", "delete", "chmod", "link_outside", "link_loop", "remove_folder"} <= set(
        writer.done
    ), writer.done
    assert synced_count[0] >= OPERATIONS // BATCH
    # Nothing outside the knowledge folder was read.
    assert not leaks
    assert all(SECRET_WORD not in p.text.lower() for p in final.space.passages.values())
    assert all(SECRET_WORD not in text.lower() for call in embedder.calls for text in call)
