"""Incremental indexing with fake models, through `Engine` and `KnowledgeBase`: only what changed is read and
embedded, renames reuse vectors, deletions and corrupt files drop passages, restarts and settings changes,
damaged or leftover files on disk, removed domains, and copy-on-write snapshots."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.pdf import make_pdf

# Three paragraphs of ~600 characters: with the default 800-character chunks, one passage each.
PARAGRAPHS = [
    " ".join(f"{topic} sentence {n} tells of the {topic} of the Quenth valley and its blue moss." for n in range(8))
    for topic in ("alpha", "bravo", "charlie")
]


def edit(path: Path, text: str | bytes) -> Path:
    """Write `path` and make sure its mtime differs from before, even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    write(path, text)
    after = path.stat().st_mtime_ns
    if after <= before:
        os.utime(path, ns=(after, before + 1_000_000_000))
    return path


def new_engine(config: Config, embedder: HashingEmbedder | None = None) -> Engine:
    model = embedder or HashingEmbedder()
    return Engine(config, embedder=lambda: model, generator=EchoGenerator)


def paths_found(engine: Engine, question: str, domain: str = "zoology", k: int = 10) -> set[str]:
    return {hit.passage.path for hit in engine.retrieve(question, domain, k)}


def test_first_index_builds_everything(fake_engine: Engine, embedder: HashingEmbedder) -> None:
    update = fake_engine.index("zoology")
    assert update.applied and update.rebuilt and not update.domain_removed
    assert (update.added, update.changed, update.removed, update.skipped, update.failed) == (2, 0, 0, 0, 0)
    assert update.version == 1
    assert update.embedded == update.passages == embedder.texts_embedded > 0
    assert update.reused == update.dropped == 0
    stats = fake_engine.domain_stats("zoology")
    assert stats.files == ("quillfish.txt", "zorblat.md")
    assert stats.version == 1 and stats.passages == update.passages
    assert fake_engine.index_file("zoology").is_file()


def test_nothing_changed_means_nothing_applied_or_embedded(fake_engine: Engine, embedder: HashingEmbedder) -> None:
    first = fake_engine.index("zoology")
    embedded, calls = embedder.texts_embedded, len(embedder.calls)
    again = fake_engine.index("zoology")
    assert not again.applied
    assert again == IndexUpdate("zoology", first.version, passages=first.passages)
    assert embedder.texts_embedded == embedded and len(embedder.calls) == calls
    assert fake_engine.domain_stats("zoology").version == first.version


def test_editing_one_paragraph_reembeds_only_that_passage(
    fake_engine: Engine, embedder: HashingEmbedder, knowledge_dir: Path
) -> None:
    essay = write(knowledge_dir / "zoology" / "essay.md", "\n\n".join(PARAGRAPHS) + "\n")
    fake_engine.index("zoology")
    before = fake_engine.snapshot("zoology")
    essay_ids = before.records["essay.md"].passage_ids
    assert len(essay_ids) == 3  # one passage per paragraph
    calls = len(embedder.calls)

    changed = PARAGRAPHS[1].replace("bravo", "delta")
    edit(essay, "\n\n".join([PARAGRAPHS[0], changed, PARAGRAPHS[2]]) + "\n")
    update = fake_engine.index("zoology")

    assert (update.added, update.changed, update.removed) == (0, 1, 0)
    assert (update.embedded, update.reused, update.dropped) == (1, 0, 1)
    assert update.passages == len(before.space.passages) and update.version == 2
    assert embedder.calls[calls:] == [[changed]]
    after = fake_engine.snapshot("zoology")
    new_ids = after.records["essay.md"].passage_ids
    assert (new_ids[0], new_ids[2]) == (essay_ids[0], essay_ids[2])
    assert new_ids[1] != essay_ids[1] and essay_ids[1] not in after.space.passages
    assert after.space.passages[new_ids[1]].text == changed
    assert "delta" in fake_engine.retrieve("delta sentence tells of the delta", "zoology", 1)[0].passage.text


def test_a_renamed_file_reuses_every_vector(fake_engine: Engine, knowledge_dir: Path) -> None:
    first = fake_engine.index("zoology")
    old_count = len(fake_engine.snapshot("zoology").records["zorblat.md"].passage_ids)
    os.rename(knowledge_dir / "zoology" / "zorblat.md", knowledge_dir / "zoology" / "zorblat-renamed.md")
    update = fake_engine.index("zoology")
    assert (update.added, update.removed, update.changed) == (1, 1, 0)
    assert update.embedded == 0 and update.reused == update.dropped == old_count
    assert update.passages == first.passages
    found = paths_found(fake_engine, "Agatha Plimm described the zorblat")
    assert "zorblat-renamed.md" in found and "zorblat.md" not in found
    assert fake_engine.domain_stats("zoology").files == ("quillfish.txt", "zorblat-renamed.md")


def test_a_deleted_file_drops_its_passages(fake_engine: Engine, knowledge_dir: Path) -> None:
    first = fake_engine.index("zoology")
    quill_ids = fake_engine.snapshot("zoology").records["quillfish.txt"].passage_ids
    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    update = fake_engine.index("zoology")
    assert (update.added, update.changed, update.removed) == (0, 0, 1)
    assert update.embedded == 0 and update.dropped == len(quill_ids)
    assert update.passages == first.passages - len(quill_ids)
    assert "quillfish.txt" not in paths_found(fake_engine, "quillfish spines Varnholm lakes")
    assert not set(quill_ids) & set(fake_engine.snapshot("zoology").space.passages)


def test_a_touched_file_is_not_an_update(fake_engine: Engine, embedder: HashingEmbedder, knowledge_dir: Path) -> None:
    first = fake_engine.index("zoology")
    embedded = embedder.texts_embedded
    path = knowledge_dir / "zoology" / "zorblat.md"
    new_mtime = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(new_mtime, new_mtime))
    update = fake_engine.index("zoology")
    assert not update.applied and update.version == first.version
    assert embedder.texts_embedded == embedded
    snapshot = fake_engine.snapshot("zoology")
    assert snapshot.records["zorblat.md"].mtime_ns == new_mtime  # the new stat is remembered ...
    assert snapshot.stats.version == first.version
    assert not fake_engine.index("zoology").applied  # ... so the file is not read again
    restarted = new_engine(fake_engine.config)
    assert not restarted.index("zoology").applied  # ... and survives a restart


def test_a_restart_loads_the_stored_index(config: Config, fake_engine: Engine) -> None:
    first = fake_engine.index("zoology")
    second = HashingEmbedder()
    restarted = new_engine(config, second)
    update = restarted.index("zoology")
    assert not update.applied and update.version == first.version and update.passages == first.passages
    assert second.texts_embedded == 0
    hits = restarted.retrieve("Agatha Plimm described the zorblat", "zoology", 1)
    assert second.texts_embedded == 1  # only the question
    assert hits[0].passage.path == "zorblat.md"


def test_changed_chunking_settings_rebuild_the_domain(config: Config, fake_engine: Engine) -> None:
    fake_engine.index("zoology")
    chunking = dataclasses.replace(config.chunking, chunk_size_chars=300, chunk_overlap_chars=50)
    rechunked = new_engine(dataclasses.replace(config, chunking=chunking))
    update = rechunked.index("zoology")
    assert update.applied and update.rebuilt
    assert update.added == 2
    assert update.version == 2  # a rebuild for new settings continues the version count, never goes back
    # The fixture's files are short: the passages are the same texts, so the cache supplies every vector.
    assert update.embedded == 0 and update.reused == update.passages
    assert not rechunked.index("zoology").applied


def test_full_reembeds_everything_and_continues_the_version(fake_engine: Engine, embedder: HashingEmbedder) -> None:
    first = fake_engine.index("zoology")
    embedded = embedder.texts_embedded
    update = fake_engine.index("zoology", full=True)
    assert update.applied and update.rebuilt
    assert update.embedded == first.passages and update.reused == 0
    assert embedder.texts_embedded == embedded + first.passages
    assert update.version == first.version + 1
    assert fake_engine.domain_stats("zoology").version == first.version + 1
    assert fake_engine.index("zoology", full=True).version == first.version + 2


def test_a_pdf_that_becomes_corrupt_fails_and_loses_its_passages(fake_engine: Engine, knowledge_dir: Path) -> None:
    pdf = write(knowledge_dir / "zoology" / "report.pdf", make_pdf(["The gribbleweed report.\nIt glows at dusk."]))
    fake_engine.index("zoology")
    assert "report.pdf" in paths_found(fake_engine, "gribbleweed glows at dusk")
    pdf_ids = fake_engine.snapshot("zoology").records["report.pdf"].passage_ids
    assert pdf_ids

    edit(pdf, b"%PDF-1.4 garbage")
    update = fake_engine.index("zoology")
    assert update.failed == 1 and update.changed == 1 and update.skipped == 0
    assert update.dropped == len(pdf_ids) and update.embedded == 0
    stats = fake_engine.domain_stats("zoology")
    assert "report.pdf" not in stats.files
    assert [(s.path, s.failed) for s in stats.failed] == [("report.pdf", True)]
    assert "corrupt PDF" in stats.failed[0].reason
    assert "report.pdf" not in paths_found(fake_engine, "gribbleweed glows at dusk")
    assert not fake_engine.index("zoology").applied  # failing the same way again is old news


def test_a_truncated_stored_index_is_rebuilt(config: Config, fake_engine: Engine) -> None:
    fake_engine.index("zoology")
    stored = fake_engine.index_file("zoology")
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2])
    update = new_engine(config).index("zoology")
    assert update.applied and update.rebuilt and update.added == 2
    assert update.embedded == 0  # the cache still has every vector


def test_stale_temp_files_are_removed_on_load_and_fresh_ones_kept(config: Config, fake_engine: Engine) -> None:
    fake_engine.index("zoology")
    folder = fake_engine.index_file("zoology").parent
    stale = write(folder / ".zoology.npz.abc123.tmp", b"left by a killed writer")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    fresh = write(folder / ".zoology.npz.def456.tmp", b"another process is writing")
    update = new_engine(config).index("zoology")
    assert not update.applied  # the stored index itself was fine
    assert not stale.exists()
    assert fresh.exists()


def test_a_removed_domain_folder_is_forgotten(fake_engine: Engine, knowledge_dir: Path) -> None:
    updates = fake_engine.sync_all()
    assert sorted((u.domain, u.rebuilt) for u in updates) == [("geology", True), ("zoology", True)]
    stored = fake_engine.index_file("geology")
    assert stored.is_file()
    shutil.rmtree(knowledge_dir / "geology")
    by_domain = {u.domain: u for u in fake_engine.sync_all()}
    assert set(by_domain) == {"geology", "zoology"}
    assert by_domain["geology"].domain_removed and by_domain["geology"].applied
    assert not by_domain["zoology"].applied
    assert not stored.exists()
    assert fake_engine.known_domains() == {"zoology"}
    assert fake_engine.sync_all() == [by_domain["zoology"]]  # forgotten once, not every time


def test_an_old_snapshot_keeps_answering_after_an_update(
    fake_engine: Engine, embedder: HashingEmbedder, knowledge_dir: Path
) -> None:
    fake_engine.index("zoology")
    old = fake_engine.snapshot("zoology")
    old_ids = set(old.space.passages)
    old_count = len(old.space.index)

    edit(knowledge_dir / "zoology" / "zorblat.md", "The zorblat now eats purple lichen.\n")
    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    update = fake_engine.index("zoology")
    assert update.applied and update.dropped and update.embedded
    new = fake_engine.snapshot("zoology")
    assert new is not old and not set(new.space.passages) & old_ids

    query = embedder.embed(["Agatha Plimm described the zorblat"])
    _, ids = old.space.index.search(query, 10)
    found = [int(i) for i in ids[0] if i >= 0]
    assert len(old.space.index) == old_count
    assert set(found) == old_ids  # every old passage, and only old ones
    assert {old.space.passages[i].path for i in found} == {"zorblat.md", "quillfish.txt"}
    assert "purple lichen" not in " ".join(p.text for p in old.space.passages.values())
    assert old.stats.version == 1 and new.stats.version == 2


def test_a_file_that_failed_is_read_again_once_its_permissions_change(
    fake_engine: Engine, knowledge_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag_engine.ingest.incremental
    from rag_engine.errors import DocumentReadError

    path = knowledge_dir / "zoology" / "zorblat.md"
    real_load = rag_engine.ingest.incremental.load_document

    def unreadable(file: Path, relative: str, config: object) -> object:
        if relative == "zorblat.md":
            raise DocumentReadError("unreadable: Permission denied")
        return real_load(file, relative, config)  # type: ignore[arg-type]

    monkeypatch.setattr(rag_engine.ingest.incremental, "load_document", unreadable)
    fake_engine.index("zoology")
    assert fake_engine.snapshot("zoology").records["zorblat.md"].failed
    monkeypatch.undo()
    assert not fake_engine.index("zoology").applied  # nothing about the file changed: not read again
    os.chmod(path, path.stat().st_mode)  # what fixing the permissions does to the stat: a new ctime, same mtime
    assert fake_engine.index("zoology").applied
    record = fake_engine.snapshot("zoology").records["zorblat.md"]
    assert record.reason is None and record.passage_ids
