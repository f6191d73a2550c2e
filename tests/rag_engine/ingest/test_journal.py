"""The FAISS store's base file and its journal of update files (`rag_engine/ingest/journal.py`), with fake models:
an update writes only its change; a fresh process reads the base and the updates without analysing a passage;
the journal is compacted into a new base; a broken chain, an old generation and a second writer are never
mixed in; and a write killed at each of its steps leaves the old snapshot or the new one.

The crashes here are simulated in process (an exception no `except Exception` catches, raised at the step), so
that every step is reached deterministically; test_index_killed.py kills real processes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rag_engine.ingest.journal as journal
import rag_engine.ingest.storage as storage
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.ingest.store import NpzStore
from rag_engine.search.lexical import Analyzer, Bm25Index
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

DOMAIN = "zoology"


class Killed(BaseException):
    """The process dies here: nothing after this step runs (not even `except Exception` handlers)."""


def new_engine(config: Config, embedder: HashingEmbedder | None = None) -> Engine:
    model = embedder or HashingEmbedder()
    return Engine(config, embedder=lambda: model, generator=EchoGenerator)


def update_files(engine: Engine) -> list[Path]:
    return [path for _, _, path in journal.update_files(engine.index_file(DOMAIN).parent, DOMAIN)]


def edit(engine: Engine, n: int) -> Path:
    """A new note (a new file each time, so every update adds passages and terms)."""
    return write(engine.domain_folder(DOMAIN) / f"note-{n}.md", f"The glass newt number {n} hides under stone {n}.\n")


def stored(config: Config) -> DomainIndex:
    """What the files hold, read as a fresh process reads them."""
    snapshot = NpzStore(config).current(DOMAIN, None)
    assert snapshot is not None
    return snapshot


def same(a: DomainIndex, b: DomainIndex) -> bool:
    """The same snapshot: passages, records, version, vectors and BM25 scores."""
    if (a.space.passages, a.records, a.stats.version) != (b.space.passages, b.records, b.stats.version):
        return False
    ids = sorted(a.space.passages)
    if not np.allclose(a.space.index.vectors(ids), b.space.index.vectors(ids)):
        return False
    question = "glass newt stone zorblat quillfish spines"
    return bool(np.allclose(a.space.lexical.scores(question, ids), b.space.lexical.scores(question, ids)))


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard links", "no hard links"])
def test_an_exclusive_write_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    if not hard_links:

        def unsupported(source: object, target: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", unsupported)
    path = tmp_path / "d.npz.0123456789abcdef.000001.update"
    storage.atomic_write_bytes(path, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        storage.atomic_write_bytes(path, b"second", exclusive=True)
    assert path.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp left


def test_the_base_file_keeps_named_arrays(tmp_path: Path) -> None:
    from rag_engine.search.index import FaissIndex

    index = FaissIndex(4)
    index.add([7, 9], np.eye(4, dtype=np.float32)[:2])
    path = tmp_path / "d.npz"
    size = storage.save_domain_index(path, index, {"a": 1}, {"lexical.counts": np.arange(5, dtype=np.int32)})
    loaded = storage.load_domain_file(path)
    assert size == path.stat().st_size and loaded.meta == {"a": 1} and len(loaded.index) == 2
    assert loaded.arrays["lexical.counts"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="the file's own"):
        storage.save_domain_index(path, index, {}, {"meta": np.zeros(1)})


def test_an_update_writes_only_its_change_and_a_restart_reads_it(fake_engine: Engine, config: Config) -> None:
    fake_engine.index(DOMAIN)
    base = fake_engine.index_file(DOMAIN)
    before = base.read_bytes()
    quill_ids = fake_engine.snapshot(DOMAIN).records["quillfish.txt"].passage_ids
    edit(fake_engine, 1)
    fake_engine.index(DOMAIN)
    (fake_engine.domain_folder(DOMAIN) / "quillfish.txt").unlink()
    fake_engine.index(DOMAIN)

    assert base.read_bytes() == before  # the base is not rewritten
    first, second = update_files(fake_engine)
    assert first.name.endswith(".000001.update") and second.name.endswith(".000002.update")
    added, ids, vectors = storage.load_domain_update(first)  # the new note's passage, its vector and terms
    assert [p["path"] for p in added["passages"]] == ["note-1.md"] and added["removed"] == []
    assert list(added["records"]) == ["note-1.md"] and vectors.shape == (1, HashingEmbedder().dimension)
    assert added["terms"] == [Analyzer().counts(added["passages"][0]["text"])]
    removed, ids, _ = storage.load_domain_update(second)  # only the deleted file's ids
    assert removed["passages"] == [] and removed["removed"] == sorted(quill_ids) and len(ids) == 0
    assert removed["records"] == {} and removed["records_removed"] == ["quillfish.txt"]
    assert same(stored(config), fake_engine.snapshot(DOMAIN))
    restarted = new_engine(config)
    assert not restarted.index(DOMAIN).applied
    assert restarted.domain_stats(DOMAIN).version == 3
    assert restarted.retrieve("glass newt number 1", DOMAIN, 1)[0].passage.path == "note-1.md"


def test_a_fresh_process_analyses_no_passage(
    fake_engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine.index(DOMAIN)
    edit(fake_engine, 1)
    fake_engine.index(DOMAIN)  # the new passage's terms are in the update file
    analysed: list[str] = []
    real_counts = Analyzer.counts

    def counting(self: Analyzer, text: str) -> dict[str, int]:
        analysed.append(text)
        return real_counts(self, text)

    monkeypatch.setattr(Analyzer, "counts", counting)
    restarted = new_engine(config)
    assert not restarted.index(DOMAIN).applied
    assert analysed == []
    lexical = restarted.snapshot(DOMAIN).space.lexical
    assert isinstance(lexical, Bm25Index)
    live = fake_engine.snapshot(DOMAIN).space.lexical
    ids = sorted(live.ids())
    for question in ("glass newt stone", "zorblat blue moss", "quillfish spines"):
        assert lexical.search(question, 5)[1].tolist() == live.search(question, 5)[1].tolist()
        np.testing.assert_allclose(lexical.scores(question, ids), live.scores(question, ids), rtol=1e-6)

    # The check can fail: a base stored without its statistics is analysed again on load.
    monkeypatch.setattr(journal, "ANALYZER", "another analyzer")
    fake_engine.index(DOMAIN, full=True)  # a new base, marked as another analyzer's
    monkeypatch.undo()
    monkeypatch.setattr(Analyzer, "counts", counting)
    analysed.clear()
    new_engine(config).index(DOMAIN)
    assert len(analysed) == len(fake_engine.snapshot(DOMAIN).space.passages)


def test_the_journal_is_compacted_into_a_new_base(
    fake_engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "MAX_UPDATES", 3)
    fake_engine.index(DOMAIN)
    base = fake_engine.index_file(DOMAIN)
    for n in range(3):
        edit(fake_engine, n)
        fake_engine.index(DOMAIN)
    assert len(update_files(fake_engine)) == 3
    first_base = base.read_bytes()
    edit(fake_engine, 3)
    fake_engine.index(DOMAIN)  # the fourth: a new base, the old generation's updates deleted
    assert update_files(fake_engine) == [] and base.read_bytes() != first_base
    edit(fake_engine, 4)
    fake_engine.index(DOMAIN)
    (update,) = update_files(fake_engine)
    assert update.name.endswith(".000001.update")
    assert same(stored(config), fake_engine.snapshot(DOMAIN))
    assert stored(config).stats.version == 6


@pytest.mark.parametrize("damage", ["gap", "foreign parent", "unreadable"])
def test_a_broken_chain_of_updates_is_rebuilt_never_mixed(
    fake_engine: Engine, config: Config, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_engine.index(DOMAIN)
    for n in range(2):
        edit(fake_engine, n)
        fake_engine.index(DOMAIN)
    first, second = update_files(fake_engine)
    if damage == "gap":
        first.unlink()
    elif damage == "foreign parent":
        meta, ids, vectors = storage.load_domain_update(second)
        second.unlink()
        storage.save_domain_update(second, {**meta, "parent": "0" * 16}, ids, vectors)
    else:
        second.write_bytes(second.read_bytes()[:100])
    restarted = new_engine(config)
    update = restarted.index(DOMAIN)
    assert update.rebuilt and update.embedded == 0  # the folder is the truth; the cache has every vector
    assert "rebuilding zoology" in caplog.text
    assert {p.path for p in restarted.snapshot(DOMAIN).space.passages.values()} == {
        "zorblat.md", "quillfish.txt", "note-0.md", "note-1.md",
    }  # fmt: skip
    assert update_files(restarted) == []  # the new base's generation has none yet; the old ones are gone


def test_updates_of_another_generation_are_ignored_and_deleted(fake_engine: Engine, config: Config) -> None:
    fake_engine.index(DOMAIN)
    note = edit(fake_engine, 1)
    fake_engine.index(DOMAIN)
    (old,) = update_files(fake_engine)  # adds note-1
    kept = old.read_bytes()
    fake_engine.index(DOMAIN, full=True)  # a new base: the old generation's update is deleted ...
    assert update_files(fake_engine) == []
    note.unlink()
    fake_engine.index(DOMAIN)  # the new generation's update 1 takes note-1 out
    old.write_bytes(kept)  # ... and the old one put back (its deletion lost to a crash) is not read
    assert len(update_files(fake_engine)) == 2
    assert same(stored(config), fake_engine.snapshot(DOMAIN))
    assert "note-1.md" not in {p.path for p in stored(config).space.passages.values()}
    fake_engine.index(DOMAIN, full=True)  # the next base deletes both
    assert update_files(fake_engine) == []


def test_a_second_writer_starts_again_from_the_files(config: Config) -> None:
    """Two processes over the same data folder: the one that writes second finds the other's update file (or
    new base), reads the files again and writes its change after it; both changes are kept."""
    first, second = new_engine(config), new_engine(config)
    first.index(DOMAIN)
    assert not second.index(DOMAIN).applied
    edit(first, 1)
    first.index(DOMAIN)  # update 1 (second still believes the files end at the base)
    edit(first, 2)
    update = second.index(DOMAIN)  # its update 1 exists already: conflict, read again, then update 2
    assert update.applied and not update.rebuilt and update.embedded == 0  # note 1 came from the files
    assert len(update_files(second)) == 2
    paths = {p.path for p in stored(config).space.passages.values()}
    assert {"note-1.md", "note-2.md"} <= paths
    first.index(DOMAIN, full=True)  # a new base under second's feet
    edit(first, 3)
    assert second.index(DOMAIN).applied
    assert "note-3.md" in {p.path for p in stored(config).space.passages.values()}
    assert stored(config).stats.version == second.snapshot(DOMAIN).stats.version


# -- killed at each step of a write -------------------------------------------------------------------------------


def kill_on(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, when: Callable[[], bool] = lambda: True, after: int = 0
) -> None:
    """Raise `Killed` at a call of `owner.name` once `when()` holds and `after` such calls have gone through."""
    real: Callable[..., object] = getattr(owner, name)
    calls = [0]

    def dying(*args: object, **kwargs: object) -> object:
        if when():
            calls[0] += 1
            if calls[0] > after:
                raise Killed(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, dying)


def new_update_linked(engine: Engine) -> Callable[[], bool]:
    """True once an update file appeared that was not there when this was made."""
    before = set(update_files(engine))
    return lambda: bool(set(update_files(engine)) - before)


def new_base_renamed(engine: Engine) -> Callable[[], bool]:
    """True once the base file is another file than when this was made."""
    before = engine.index_file(DOMAIN).stat().st_ino
    return lambda: engine.index_file(DOMAIN).stat().st_ino != before


@dataclass(frozen=True)
class KillPoint:
    """Where a write dies (`kill` arms it), what the files look like then (`check`), which snapshot survives."""

    name: str
    write: str  # "update" (an update file) or "base" (a compaction)
    kill: Callable[[pytest.MonkeyPatch, Engine], None]
    check: Callable[[Engine, list[Path], list[str]], None]
    survivor: str


# Each check gets the engine, the update files before the write, and the functions the kill came through (its
# traceback): a kill point that fired somewhere else would not test what it says. (The simulated death runs the
# writer's cleanup of its temp file, which a real one would not; test_index_killed.py leaves them.)
def _update_not_linked(engine: Engine, old_updates: list[Path], through: list[str]) -> None:
    assert "save_domain_update" in through and update_files(engine) == old_updates


def _update_linked(engine: Engine, old_updates: list[Path], through: list[str]) -> None:
    assert "save_domain_update" in through and len(update_files(engine)) == len(old_updates) + 1


def _base_not_renamed(engine: Engine, old_updates: list[Path], through: list[str]) -> None:
    assert "save_domain_index" in through and update_files(engine) == old_updates


def _old_updates_left(kept: int, inside: str) -> Callable[[Engine, list[Path], list[str]], None]:
    def check(engine: Engine, old_updates: list[Path], through: list[str]) -> None:
        assert inside in through and update_files(engine) == old_updates[:kept]  # newest deleted first

    return check


KILL_POINTS = [
    KillPoint("update: temp file written, not linked", "update", lambda m, e: kill_on(m, os, "link"),
              _update_not_linked, "old"),
    KillPoint("update: linked, folder not synced", "update",
              lambda m, e: kill_on(m, storage, "fsync_folder", new_update_linked(e)), _update_linked, "new"),
    # The embedding cache's segment is renamed into place first; the base is the second `os.replace`.
    KillPoint("compaction: temp file written, not renamed", "base",
              lambda m, e: kill_on(m, os, "replace", after=1), _base_not_renamed, "old"),
    KillPoint("compaction: base renamed, folder not synced", "base",
              lambda m, e: kill_on(m, storage, "fsync_folder", new_base_renamed(e)),
              _old_updates_left(2, "save_domain_index"), "new"),
    KillPoint("compaction: base in place, no update deleted", "base", lambda m, e: kill_on(m, Path, "unlink"),
              _old_updates_left(2, "_remove_updates"), "new"),
    KillPoint("compaction: one update deleted of two", "base", lambda m, e: kill_on(m, Path, "unlink", after=1),
              _old_updates_left(1, "_remove_updates"), "new"),
]  # fmt: skip


@pytest.mark.parametrize("point", KILL_POINTS, ids=[k.name for k in KILL_POINTS])
def test_a_write_killed_at_any_step_leaves_the_old_snapshot_or_the_new(
    fake_engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch, point: KillPoint
) -> None:
    monkeypatch.setattr(journal, "MAX_UPDATES", 2)
    fake_engine.index(DOMAIN)
    for n in range(2 if point.write == "base" else 1):
        edit(fake_engine, n)
        fake_engine.index(DOMAIN)
    old = fake_engine.snapshot(DOMAIN)
    old_updates = update_files(fake_engine)
    edit(fake_engine, 9)
    (fake_engine.domain_folder(DOMAIN) / "quillfish.txt").unlink()
    with monkeypatch.context() as patch:
        point.kill(patch, fake_engine)
        with pytest.raises(Killed) as killed:
            fake_engine.index(DOMAIN)  # the "process" is dead from here on: only its files are looked at
    point.check(fake_engine, old_updates, [entry.name for entry in killed.traceback])
    after = stored(config)
    if point.survivor == "old":
        assert same(after, old)
    else:
        assert after.stats.version == old.stats.version + 1
        expected = {"zorblat.md", "note-0.md", "note-9.md"} | ({"note-1.md"} if point.write == "base" else set())
        assert {p.path for p in after.space.passages.values()} == expected
    # Whatever survived, a restart brings the index up to date with the folder and loads what it wrote.
    restarted = new_engine(config)
    restarted.index(DOMAIN)
    assert same(stored(config), restarted.snapshot(DOMAIN))
    assert "note-9.md" in {p.path for p in restarted.snapshot(DOMAIN).space.passages.values()}
    assert "quillfish.txt" not in {p.path for p in restarted.snapshot(DOMAIN).space.passages.values()}
