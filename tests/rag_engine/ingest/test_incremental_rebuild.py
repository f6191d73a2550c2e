"""An incremental update gives the index a clean rebuild would: the correctness half of
`benchmarks/bench_incremental.py`, on a corpus of a few dozen files with the hashing fake embedder.

After each one-file change (an edit, a rename, a delete) the counts of the update add up (before − dropped +
embedded + reused = after, and FAISS holds exactly the listed passages), the old text is gone from the passages,
from FAISS and from retrieval, the new text is hit 1 for a question about it, a restarted engine loads the
stored index as is and retrieves the same passages, and the index equals a full rebuild of the same folder in
another data folder (the same passages per file, the same vectors). The benchmark times the same changes over
10,000+ passages with the real model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.ingest.chunking import split_sentences
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.records import IndexUpdate, Passage
from tests.conftest import write
from tests.fakes import HashingEmbedder

DOMAIN = "archive"
FILES = 36
# Sentences shorter than this are too generic to prove that the old text is gone.
MIN_SENTENCE_CHARS = 40
SYLLABLES = ["ka", "lo", "mir", "ven", "tas", "quo", "ril", "dun", "pex", "sar", "bel", "tho", "gru", "nim"]


def made_up(number: int) -> str:
    """A word no other number gives (its digits in base 14, one syllable each)."""
    letters = []
    number += len(SYLLABLES)  # at least two syllables
    while number:
        number, digit = divmod(number, len(SYLLABLES))
        letters.append(SYLLABLES[digit])
    return "".join(letters)


def note(i: int) -> str:
    """About 1,300 characters in two paragraphs (two passages at the default 800-character chunks), every
    sentence naming words of this file only."""

    def paragraph(part: int) -> str:
        return " ".join(
            f"The {made_up(1000 + 40 * i + 8 * part + j)} ledger of {made_up(3000 + 40 * i + 8 * part + j)} lists "
            f"{7 + i + j} crates of {made_up(5000 + 40 * i + 8 * part + j)} salt."
            for j in range(8)
        )

    return f"# Archive note {i}\n\n{paragraph(0)}\n\n{paragraph(1)}\n"


def fact(number: int) -> tuple[str, str, str]:
    """New content for an edited file: (text, the sentence only it holds, a question about that sentence)."""
    word, place = made_up(9000 + number), made_up(9500 + number)
    key = f"The {word} enzyme turns frozen moonsilk into blue vapour in {7 + number} seconds."
    text = f"# The {word} enzyme\n\n{key} The {word} plant grows only on the cliffs of {place}.\n"
    return text, key, f"What does the {word} enzyme turn frozen moonsilk into?"


@pytest.fixture
def corpus_config(config: Config, tmp_path: Path) -> Config:
    knowledge = tmp_path / "corpus"
    for i in range(FILES):
        write(knowledge / DOMAIN / f"note-{i:02d}.md", note(i))
    return config.with_paths(knowledge_dir=knowledge, data_dir=tmp_path / "corpus-data")


def new_engine(config: Config, embedder: HashingEmbedder) -> Engine:
    return Engine(config, embedder=lambda: embedder)


@pytest.fixture
def engine(corpus_config: Config, embedder: HashingEmbedder) -> Engine:
    engine = new_engine(corpus_config, embedder)
    full = engine.index(DOMAIN, full=True)
    built = engine.snapshot(DOMAIN)
    assert full.rebuilt and full.embedded == built.stats.passages > FILES and full.reused == 0
    return engine


# -- what the checks read --------------------------------------------------------------------------------------
def folder(engine: Engine) -> Path:
    return engine.domain_folder(DOMAIN)


def passages_of(index: DomainIndex, rel: str) -> list[Passage]:
    return [p for p in index.space.passages.values() if p.path == rel]


def index_ids(index: DomainIndex) -> set[int]:
    """The ids FAISS actually holds (not just the passages the metadata lists): an exhaustive search's."""
    vectors = index.space.index
    dimension = vectors.vectors([next(iter(index.space.passages))]).shape[1]
    _, ids = vectors.search(np.zeros((1, dimension), np.float32), len(vectors))
    return {int(i) for i in ids[0]}


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
    """A passage of the file holding a sentence of its own: its full text, as a query, finds it while it is
    indexed (a single sentence is no such test: another passage may be nearer to it)."""
    return next(p for p in passages_of(index, rel) if any(s in p.text for s in sentences))


def still_present(index: DomainIndex, sentences: Iterable[str]) -> list[str]:
    texts = [p.text for p in index.space.passages.values()]
    return [s for s in sentences if any(s in t for t in texts)]


# -- the checks after every change ------------------------------------------------------------------------------
def assert_consistent(before: DomainIndex, after: DomainIndex, update: IndexUpdate) -> None:
    """The counts of the update add up, in the update record, the passages and FAISS itself."""
    expected = before.stats.passages - update.dropped + update.embedded + update.reused
    assert after.stats.passages == expected == update.passages, update.to_dict()
    assert index_ids(after) == set(after.space.passages)
    assert len(after.space.index) == len(after.space.passages)


def assert_restart_sees_the_same(engine: Engine, embedder: HashingEmbedder, question: str | None) -> None:
    """A fresh Engine over the same data folder loads the stored index, applies nothing and answers alike."""
    fresh = new_engine(engine.config, embedder)
    update = fresh.index(DOMAIN)
    live, stored = engine.snapshot(DOMAIN), fresh.snapshot(DOMAIN)
    assert not update.applied and update.embedded == 0, update.to_dict()
    assert stored.stats.version == live.stats.version
    assert set(stored.space.passages) == set(live.space.passages) and index_ids(stored) == index_ids(live)
    if question is not None:
        now, then = engine.retrieve(question, DOMAIN, 3), fresh.retrieve(question, DOMAIN, 3)
        assert [h.passage.id for h in now] == [h.passage.id for h in then]


def assert_same_as_a_rebuild(engine: Engine, tmp_path: Path, settings: Config | None = None) -> None:
    """A full rebuild of the same folder into another data folder (with `settings`, by default the engine's)
    holds the same passages per file, with the same vectors (ids may differ: they are handed out in the order
    passages were added)."""

    def by_file(index: DomainIndex) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
        rows: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
        for passage in index.space.passages.values():
            vector = index.space.index.vectors([passage.id])[0]
            rows.setdefault(passage.path, []).append((passage.text, tuple(np.round(vector, 5).tolist())))
        return {path: sorted(texts) for path, texts in rows.items()}

    config = (settings or engine.config).with_paths(data_dir=tmp_path / "rebuilt-data")
    clean = new_engine(config, HashingEmbedder())
    assert clean.index(DOMAIN, full=True).rebuilt
    incremental, rebuilt = engine.snapshot(DOMAIN), clean.snapshot(DOMAIN)
    assert incremental.stats.files == rebuilt.stats.files
    assert incremental.stats.passages == rebuilt.stats.passages
    assert by_file(incremental) == by_file(rebuilt)


# -- one change each --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [0, 1, 2])
def test_an_edit_replaces_the_old_text_and_matches_a_rebuild(
    engine: Engine, embedder: HashingEmbedder, tmp_path: Path, number: int
) -> None:
    rel = f"note-{7 + 11 * number:02d}.md"
    path = folder(engine) / rel
    before = engine.snapshot(DOMAIN)
    old_ids = set(before.records[rel].passage_ids)
    old_sentences = unique_sentences(before, rel, path.read_text(encoding="utf-8"))
    old_probe = probe(before, rel, old_sentences)
    text, key, question = fact(number)
    path.write_text(text, encoding="utf-8")

    update = engine.index(DOMAIN)

    after = engine.snapshot(DOMAIN)
    new = passages_of(after, rel)
    assert (update.added, update.changed, update.removed) == (0, 1, 0)
    assert update.dropped == len(old_ids) >= 2 and update.embedded >= 1
    assert update.embedded + update.reused == len(new)
    assert_consistent(before, after, update)
    assert not still_present(after, old_sentences)
    assert not old_ids & set(after.space.passages) and not old_ids & index_ids(after)
    top = engine.retrieve(question, DOMAIN, 3)[0].passage
    assert top.path == rel and key in top.text
    echoed = [h.passage.path for h in engine.retrieve(old_probe.text, DOMAIN, 3) if h.passage.id in old_ids]
    assert echoed == []
    assert all(old_probe.text != h.passage.text for h in engine.retrieve(old_probe.text, DOMAIN, 3))
    assert_restart_sees_the_same(engine, embedder, question)
    assert_same_as_a_rebuild(engine, tmp_path)


def test_a_rename_embeds_nothing_keeps_the_vectors_and_matches_a_rebuild(
    engine: Engine, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    rel, new_rel = "note-13.md", "renamed-note-13.md"
    before = engine.snapshot(DOMAIN)
    old_texts = sorted(p.text for p in passages_of(before, rel))
    old_vectors = {p.text: before.space.index.vectors([p.id])[0] for p in passages_of(before, rel)}
    query = probe(before, rel, unique_sentences(before, rel, (folder(engine) / rel).read_text(encoding="utf-8"))).text
    os.rename(folder(engine) / rel, folder(engine) / new_rel)

    update = engine.index(DOMAIN)

    after = engine.snapshot(DOMAIN)
    assert (update.added, update.removed, update.embedded) == (1, 1, 0)
    assert update.reused == update.dropped == len(old_texts)
    assert_consistent(before, after, update)
    moved = passages_of(after, new_rel)
    assert sorted(p.text for p in moved) == old_texts and not passages_of(after, rel)
    for passage in moved:
        assert np.allclose(after.space.index.vectors([passage.id])[0], old_vectors[passage.text], atol=1e-6)
    [hit, *_] = engine.retrieve(query, DOMAIN, 3)
    assert hit.passage.path == new_rel and hit.passage.text == query
    assert_restart_sees_the_same(engine, embedder, query)
    assert_same_as_a_rebuild(engine, tmp_path)


def test_a_delete_drops_its_passages_and_matches_a_rebuild(
    engine: Engine, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    rel = "note-29.md"
    before = engine.snapshot(DOMAIN)
    old_ids = set(before.records[rel].passage_ids)
    sentences = unique_sentences(before, rel, (folder(engine) / rel).read_text(encoding="utf-8"))
    query = probe(before, rel, sentences).text
    (folder(engine) / rel).unlink()

    update = engine.index(DOMAIN)

    after = engine.snapshot(DOMAIN)
    assert (update.removed, update.embedded, update.reused) == (1, 0, 0)
    assert update.dropped == len(old_ids) > 0
    assert_consistent(before, after, update)
    assert not still_present(after, sentences)
    assert not passages_of(after, rel) and not old_ids & index_ids(after)
    assert all(h.passage.path != rel and h.passage.text != query for h in engine.retrieve(query, DOMAIN, 3))
    assert_restart_sees_the_same(engine, embedder, None)
    assert_same_as_a_rebuild(engine, tmp_path)


def test_edits_renames_and_deletes_in_a_row_still_match_a_rebuild(
    engine: Engine, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    base = folder(engine)
    for number in range(3):
        text, _, _ = fact(number)
        (base / f"note-{number:02d}.md").write_text(text, encoding="utf-8")
        engine.index(DOMAIN)
    os.rename(base / "note-10.md", base / "renamed-note-10.md")
    engine.index(DOMAIN)
    (base / "note-20.md").unlink()
    engine.index(DOMAIN)
    versions = engine.snapshot(DOMAIN).stats.version
    assert versions == 1 + 3 + 1 + 1
    assert_restart_sees_the_same(engine, embedder, None)
    assert_same_as_a_rebuild(engine, tmp_path)


def test_the_rebuild_comparison_sees_other_passages(engine: Engine, tmp_path: Path) -> None:
    """The comparison can fail: a rebuild with wider chunks holds other passages than the index."""
    wide = dataclasses.replace(engine.config.chunking, chunk_size_chars=2000)
    with pytest.raises(AssertionError):
        assert_same_as_a_rebuild(engine, tmp_path, dataclasses.replace(engine.config, chunking=wide))
