"""The watcher: which paths can matter to which domain, then real file-system events with fake models.

No test sleeps: each waits (with a timeout) for the updates the watcher reports from its worker thread. That a
change did *not* cause an update is shown by a later change whose update must be the next one reported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rag_engine.config import Config, LoadingConfig, WatchConfig
from rag_engine.engine import Engine
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.ingest.watcher import KnowledgeWatcher, affected_domain
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

ROOT = Path("/srv/knowledge")
WAIT_SECONDS = 10.0


@pytest.mark.parametrize(
    ("path", "is_directory", "expected"),
    [
        ("zoology/zorblat.md", False, "zoology"),
        ("zoology/notes/deep/quillfish.txt", False, "zoology"),
        ("zoology/report.PDF", False, "zoology"),
        ("zoology/.hidden.md", False, None),
        ("zoology/foo.md.swp", False, None),
        ("zoology/#foo.md#", False, None),
        ("zoology/4913", False, None),
        ("zoology/foo.md~", False, None),
        ("zoology/.foo.md.tmp", False, None),
        ("zoology/~$report.md", False, None),
        ("zoology/questions.jsonl", False, None),
        ("zoology/image.png", False, None),
        ("readme.md", False, None),
        ("zoology", True, "zoology"),
        ("zoology/notes", True, "zoology"),
        (".git", True, None),
        (".git/objects/ab/cdef", False, None),
        ("zoology/.git", True, None),
        ("_drafts/idea.md", False, None),
        ("zoology/.obsidian/notes.md", False, None),
        ("zoology/.cache/sub/notes.md", False, None),
        ("", True, None),
    ],
)
def test_affected_domain(path: str, is_directory: bool, expected: str | None) -> None:
    assert affected_domain(ROOT, str(ROOT / path), is_directory, LoadingConfig()) == expected


@pytest.mark.parametrize("outside", ["/srv/other/zoology/zorblat.md", "/srv/knowledge-old/zoology/zorblat.md", "/"])
def test_a_path_outside_the_root_affects_no_domain(outside: str) -> None:
    assert affected_domain(ROOT, outside, False, LoadingConfig()) is None
    assert affected_domain(ROOT, outside, True, LoadingConfig()) is None


# -- real events ---------------------------------------------------------------------------------------------


@dataclass
class Watching:
    """A started watcher over the fixture's knowledge folder and what it reported."""

    engine: Engine
    knowledge: KnowledgeBase
    root: Path
    watcher: KnowledgeWatcher
    updates: queue.Queue[IndexUpdate]
    errors: queue.Queue[tuple[str, Exception]]
    initial: list[IndexUpdate] = field(default_factory=list)

    def next_update(self) -> IndexUpdate:
        return self.updates.get(timeout=WAIT_SECONDS)

    def assert_no_update_before(self, domain: str) -> None:
        """Add a file to `domain`; its update must be the next one (nothing else was pending)."""
        name = f"sentinel-{len(self.engine.domain_stats(domain).files)}.md"
        write(self.root / domain / name, f"A sentinel note called {name}.\n")
        update = self.next_update()
        assert (update.domain, update.added, update.changed, update.removed) == (domain, 1, 0, 0)


def fast_config(config: Config) -> Config:
    return dataclasses.replace(config, watch=WatchConfig(rebuild_debounce_seconds=0.2, max_rebuild_delay_seconds=2.0))


@pytest.fixture
def watching(config: Config, embedder: HashingEmbedder, knowledge_dir: Path) -> Iterator[Watching]:
    knowledge = KnowledgeBase(fast_config(config), lambda: embedder)
    engine = Engine(fast_config(config), embedder=lambda: embedder, generator=EchoGenerator, knowledge=knowledge)
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    watcher = engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc)))
    try:
        initial: list[IndexUpdate] = []
        while not updates.empty():  # the initial sync reports from start(), before it returns
            initial.append(updates.get_nowait())
        yield Watching(engine, knowledge, knowledge_dir, watcher, updates, errors, initial)
    finally:
        watcher.stop()


def test_the_initial_sync_reports_every_domain(watching: Watching) -> None:
    assert [(u.domain, u.rebuilt, u.added) for u in watching.initial] == [("geology", True, 1), ("zoology", True, 2)]
    assert watching.engine.watched


def test_a_created_file_is_one_update(watching: Watching) -> None:
    write(watching.root / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    update = watching.next_update()
    assert (update.domain, update.added, update.changed, update.removed) == ("zoology", 1, 0, 0)
    assert update.version == 2 and not update.rebuilt
    assert "newt.md" in watching.engine.domain_stats("zoology").files
    assert watching.engine.retrieve("glass newt Quenth stones", "zoology", 1)[0].passage.path == "newt.md"
    watching.assert_no_update_before("geology")
    assert watching.errors.empty()


def test_a_burst_of_files_is_few_updates(watching: Watching) -> None:
    names = [f"animal-{i:03d}.md" for i in range(100)]
    for i, name in enumerate(names):
        write(watching.root / "zoology" / name, f"Animal number {i} of the Quenth valley eats moss.\n")
    received: list[IndexUpdate] = []
    while sum(u.added for u in received) < len(names):
        received.append(watching.next_update())
    assert len(received) <= 3
    assert {u.domain for u in received} == {"zoology"}
    assert sum(u.changed + u.removed + u.failed + u.skipped for u in received) == 0
    files = watching.engine.domain_stats("zoology").files
    assert set(names) <= set(files) and len(files) == len(names) + 2


def test_an_editor_style_save_is_one_change(watching: Watching) -> None:
    folder = watching.root / "zoology"
    swap = write(folder / ".zorblat.md.swp", "The zorblat now eats purple lichen.\n")
    os.replace(swap, folder / "zorblat.md")
    update = watching.next_update()
    assert (update.domain, update.added, update.changed, update.removed, update.skipped) == ("zoology", 0, 1, 0, 0)
    assert "purple lichen" in watching.engine.retrieve("zorblat purple lichen", "zoology", 1)[0].passage.text
    assert watching.engine.domain_stats("zoology").files == ("quillfish.txt", "zorblat.md")
    watching.assert_no_update_before("zoology")


def test_ignored_files_cause_no_sync(watching: Watching, monkeypatch: pytest.MonkeyPatch) -> None:
    knowledge = watching.knowledge
    synced: list[str] = []
    real_sync = knowledge.sync

    def recording_sync(domain: str, *args: object, **kwargs: object) -> IndexUpdate:
        synced.append(domain)
        return real_sync(domain)

    monkeypatch.setattr(knowledge, "sync", recording_sync)
    ignored = [".basalt.md.swp", ".hidden.md", "questions.jsonl", "basalt.md~", "#basalt.md#", "4913", ".x.md.tmp"]
    for name in ignored:  # in geology: had any marked it, geology would be synced before zoology
        write(watching.root / "geology" / name, "ignored\n")
    for name in ignored[:3]:
        write(watching.root / "zoology" / name, "ignored\n")
    write(watching.root / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")

    update = watching.next_update()
    assert (update.domain, update.added, update.skipped, update.failed) == ("zoology", 1, 0, 0)
    assert synced == ["zoology"]
    zoology = watching.engine.domain_stats("zoology")
    assert zoology.files == ("newt.md", "quillfish.txt", "zorblat.md") and zoology.skipped == ()
    geology = watching.engine.domain_stats("geology")
    assert geology.files == ("basalt.md",) and geology.skipped == () and geology.version == 1


def test_files_the_watcher_ignores_are_not_reported_by_a_sync(fake_engine: Engine, knowledge_dir: Path) -> None:
    fake_engine.index("zoology")
    junk = ["#zorblat.md#", "4913", "zorblat.md.swp"]  # emacs autosave, vim's write probe, a swap file
    for name in junk:
        path = write(knowledge_dir / "zoology" / name, "editor junk\n")
        assert affected_domain(knowledge_dir, str(path), False, LoadingConfig()) is None
    update = fake_engine.index("zoology")
    assert not update.applied
    assert fake_engine.domain_stats("zoology").skipped == ()


def test_a_new_domain_folder_is_built_followed_and_forgotten(watching: Watching, tmp_path: Path) -> None:
    staged = write(tmp_path / "staging" / "botany" / "fern.md", "The Quenth fern unrolls only at night.\n").parent
    os.rename(staged, watching.root / "botany")  # appears at once, with its file
    update = watching.next_update()
    assert (update.domain, update.rebuilt, update.added) == ("botany", True, 1)
    assert watching.engine.domains() == ["botany", "geology", "zoology"]
    assert watching.engine.index_file("botany").is_file()

    write(watching.root / "botany" / "moss.md", "Blue moss grows on Quenth stones.\n")  # the new folder is watched
    update = watching.next_update()
    assert (update.domain, update.added, update.rebuilt) == ("botany", 1, False)

    shutil.rmtree(watching.root / "botany")
    update = watching.next_update()
    assert (update.domain, update.domain_removed) == ("botany", True)
    assert update.applied
    assert not watching.engine.index_file("botany").exists()
    assert "botany" not in watching.engine.known_domains()
    watching.assert_no_update_before("geology")


def test_watched_is_set_only_while_running(config: Config, embedder: HashingEmbedder) -> None:
    knowledge = KnowledgeBase(fast_config(config), lambda: embedder)
    engine = Engine(fast_config(config), embedder=lambda: embedder, generator=EchoGenerator, knowledge=knowledge)
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    assert not engine.watched
    with engine.watch(updates.put, initial_sync=False) as watcher:
        assert engine.watched
        assert updates.empty()  # no initial sync asked for
        write(config.paths.knowledge_dir / "geology" / "granite.md", "Quenth granite is pink.\n")
        update = updates.get(timeout=WAIT_SECONDS)
        assert (update.domain, update.rebuilt, update.added) == ("geology", True, 2)
    assert not engine.watched
    watcher.stop()  # stopping twice is harmless
    assert not engine.watched


def test_an_error_in_sync_is_reported_and_the_watcher_goes_on(
    watching: Watching, monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge = watching.knowledge
    real_sync = knowledge.sync
    failures = [RuntimeError("disk on fire")]

    def failing_once(domain: str, *args: object, **kwargs: object) -> IndexUpdate:
        if failures:
            raise failures.pop()
        return real_sync(domain)

    monkeypatch.setattr(knowledge, "sync", failing_once)
    write(watching.root / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    domain, exc = watching.errors.get(timeout=WAIT_SECONDS)
    assert domain == "zoology" and isinstance(exc, RuntimeError) and str(exc) == "disk on fire"
    assert watching.updates.empty()  # a failed sync reports no update

    write(watching.root / "zoology" / "toad.md", "The Quenth toad sings in the rain.\n")
    update = watching.next_update()
    assert (update.domain, update.added) == ("zoology", 2)  # both files: the failed sync applied nothing
    assert watching.errors.empty()


def test_an_error_in_the_embedder_is_reported_and_retried(config: Config) -> None:
    model = HashingEmbedder()
    failures = [RuntimeError("model failed to load")]

    def flaky_factory() -> HashingEmbedder:
        if failures:
            raise failures.pop()
        return model

    engine = Engine(fast_config(config), embedder=flaky_factory, generator=EchoGenerator)
    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()

    def on_error(domain: str, exc: Exception) -> None:
        errors.put((domain, exc))

    with engine.watch(updates.put, on_error, initial_sync=False):
        write(config.paths.knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
        domain, exc = errors.get(timeout=WAIT_SECONDS)
        assert domain == "zoology" and "failed to load" in str(exc)
        write(config.paths.knowledge_dir / "zoology" / "toad.md", "The Quenth toad sings in the rain.\n")
        update = updates.get(timeout=WAIT_SECONDS)
        assert (update.domain, update.rebuilt, update.added) == ("zoology", True, 4)
        assert not engine.index_file("geology").exists()  # only the changed domain was synced


@pytest.mark.parametrize("how", ["removed", "moved away"])
def test_a_knowledge_folder_made_again_is_watched_again(
    watching: Watching, caplog: pytest.LogCaptureFixture, tmp_path: Path, how: str
) -> None:
    caplog.set_level(logging.WARNING, logger="rag_engine.ingest.watcher")
    if how == "removed":
        shutil.rmtree(watching.root)  # `rm -rf knowledge; mkdir -p knowledge/botany`: the observer's folder is gone
    else:
        os.rename(watching.root, tmp_path / "knowledge-old")  # the observer would follow the old folder
    write(watching.root / "botany" / "fern.md", "The Quenth fern unrolls only at night.\n")

    seen: list[IndexUpdate] = []
    while not any(u.domain == "botany" and u.added == 1 for u in seen):
        seen.append(watching.next_update())
    assert watching.engine.domain_stats("botany").files == ("fern.md",)
    assert "was replaced: watching the new one, syncing every domain" in caplog.text
    # Followed from now on: the next file in the new folder is an update of its own (the old domains, gone
    # with the old folder, may be reported as removed first).
    write(watching.root / "botany" / "moss.md", "Blue moss grows on Quenth stones.\n")
    update = watching.next_update()
    while update.domain_removed:
        seen.append(update)
        update = watching.next_update()
    assert (update.domain, update.added, update.rebuilt) == ("botany", 1, False)
    assert {u.domain for u in seen if u.domain_removed} <= {"geology", "zoology"}
    assert caplog.text.count("was replaced") == 1
    assert watching.engine.domains() == ["botany"]
