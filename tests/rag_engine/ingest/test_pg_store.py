"""The pgvector store on a real PostgreSQL, beside FAISS: the same hits at the same distances, k rows for any k,
readers that need no folder, rebuilds instead of mixing, two writers, forgetting, and a connection string
that never shows. (The engine's FAISS tests run on it too: `test_pg_engine.py`; processes: `test_pg_processes.py`.)
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
from psycopg import sql

from rag_engine.config import Config, IndexConfig, WatchConfig, load_config
from rag_engine.engine import Engine
from rag_engine.errors import ConfigError, IndexStoreError, SnapshotReplacedError
from rag_engine.ingest.pg_store import PG_SCHEMA_VERSION, SCHEMA_TABLE
from rag_engine.ingest.watcher import KnowledgeWatcher
from rag_engine.records import Hit, IndexUpdate
from rag_engine.search.pgvector_index import PgVectorIndex, partition_name
from rag_engine.search.postgres import redact
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.rag_engine.ingest.pg import DSN_ENV, pgvector_config, reader_config
from tests.rag_engine.ingest.test_incremental import edit
from tests.servers import free_port
from tests.servers_pg import PostgresServer

WORDS = (
    "heron",
    "otter",
    "basalt",
    "lichen",
    "quenth",
    "varnholm",
    "moss",
    "glacier",
    "ember",
    "tide",
    "lantern",
    "copper",
    "willow",
    "falcon",
    "marsh",
    "cedar",
    "granite",
    "amber",
    "harbor",
    "meadow",
    "thistle",
    "raven",
    "cobalt",
    "dune",
    "fjord",
    "orchard",
    "kelp",
    "quarry",
    "saffron",
    "tundra",
)
QUESTIONS = ["heron otter marsh", "basalt granite quarry", "What glows in the amber lantern?", "kelp tide harbor"]
WAIT_SECONDS = 10.0


def notes(folder: Path, count: int, seed: int) -> None:
    """`count` one-passage notes of random words (the same words, so the same vectors, for the same seed)."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        words = " ".join(rng.choice(WORDS, size=12))
        write(folder / f"note-{n:04d}.md", f"Note {n}: {words}.\n")


def same_hits(ours: list[Hit], faiss: list[Hit]) -> None:
    """The same passages in the same order, and distances equal to FAISS's within 1e-4."""
    assert [(h.domain, h.passage.id) for h in ours] == [(h.domain, h.passage.id) for h in faiss]
    assert np.allclose([h.distance for h in ours], [h.distance for h in faiss], rtol=0, atol=1e-4)
    assert [h.passage for h in ours] == [h.passage for h in faiss]


def engine_on(config: Config, embedder: HashingEmbedder | None = None) -> Engine:
    model = embedder or HashingEmbedder()
    return Engine(config, embedder=lambda: model, generator=EchoGenerator)


@pytest.fixture
def pg(config: Config, postgres_server: PostgresServer, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv(DSN_ENV, postgres_server.dsn)
    return pgvector_config(config, pg_schema)


@pytest.fixture
def faiss(config: Config, tmp_path: Path) -> Config:
    """The FAISS store over the same folder, with data of its own."""
    return config.with_paths(data_dir=tmp_path / "faiss-data")


def rows(server: PostgresServer, query: sql.Composable, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


@pytest.mark.parametrize("mode", ["dense", "hybrid", "bm25"])
def test_the_same_hits_at_the_same_distances_as_faiss(
    pg: Config, faiss: Config, knowledge_dir: Path, tmp_path: Path, mode: str
) -> None:
    notes(knowledge_dir / "notes", 150, seed=1)
    writer, local = engine_on(pg), engine_on(faiss)
    reader = engine_on(reader_config(pg, pg.index.schema, tmp_path))  # BM25 rebuilt from the table's texts
    for question in QUESTIONS:
        expected = local.retrieve(question, None, 8, mode)
        assert len(expected) == 8
        same_hits(writer.retrieve(question, None, 8, mode), expected)
        same_hits(reader.retrieve(question, None, 8, mode), expected)
    answer, expected = (engine.answer(QUESTIONS[0], "notes", mode=mode) for engine in (writer, local))
    assert answer.text == expected.text and answer.prompt == expected.prompt


def test_k_rows_come_back_for_any_k(
    pg: Config, faiss: Config, knowledge_dir: Path, postgres_server: PostgresServer
) -> None:
    notes(knowledge_dir / "big", 1100, seed=2)
    notes(knowledge_dir / "small", 12, seed=3)
    writer, local = engine_on(pg), engine_on(faiss)
    question = QUESTIONS[0]
    for domain, k in (("big", 150), ("big", 1050), ("small", 12)):
        hits = writer.retrieve(question, domain, k)
        assert len(hits) == k
        expected = local.retrieve(question, domain, k)
        assert {h.passage.id for h in hits} == {h.passage.id for h in expected}
        assert np.allclose([h.distance for h in hits], [h.distance for h in expected], rtol=0, atol=1e-4)
    # What the index avoids: on this server an HNSW scan stops at hnsw.ef_search rows (40 by default).
    vector = HashingEmbedder().embed([question])[0]
    partition = sql.Identifier(pg.index.schema, partition_name("big"))
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        psycopg_vector = "[" + ",".join(str(float(x)) for x in vector) + "]"
        query = sql.SQL("SELECT id FROM {} ORDER BY embedding <-> %s::vector LIMIT 150").format(partition)
        assert len(conn.execute(query, (psycopg_vector,)).fetchall()) == 40


def test_a_search_whose_snapshot_was_replaced_meanwhile_answers_from_the_new_one(
    pg: Config, knowledge_dir: Path, tmp_path: Path
) -> None:
    writer = engine_on(pg)
    writer.index("zoology")
    old = writer.snapshot("zoology")
    zorblat = knowledge_dir / "zoology" / "zorblat.md"
    edit(zorblat, "The zorblat now eats purple lichen.\n")
    writer.index("zoology")
    query = HashingEmbedder().embed(["What does the zorblat eat?"])
    with pytest.raises(SnapshotReplacedError):  # never rows its snapshot does not describe
        old.space.index.search(query, 3)
    assert writer.retrieve("What does the zorblat eat?", "zoology", 1)[0].passage.text.endswith("purple lichen.")

    class Committing(HashingEmbedder):
        """Embeds the reader's question while the indexer commits its next update."""

        armed = False

        def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            if self.armed:
                self.armed = False
                edit(zorblat, "The zorblat now eats orange fungus.\n")
                assert writer.index("zoology").changed == 1
            return super().embed(texts)

    model = Committing()
    reader = Engine(reader_config(pg, pg.index.schema, tmp_path), embedder=lambda: model, generator=EchoGenerator)
    before = reader.snapshot("zoology")
    model.armed = True
    (hit,) = reader.retrieve("What does the zorblat eat?", "zoology", 1)
    assert not model.armed and hit.passage.text.endswith("orange fungus.")
    assert reader.snapshot("zoology").stats.version == before.stats.version + 1


def test_a_read_only_process_follows_the_writer_without_a_folder(
    pg: Config, knowledge_dir: Path, tmp_path: Path
) -> None:
    writer = engine_on(pg)
    writer.sync_all()
    reader = engine_on(reader_config(pg, pg.index.schema, tmp_path))
    assert not reader.folder.exists()
    assert reader.domains() == ["geology", "zoology"]
    first = reader.snapshot("zoology")
    assert reader.snapshot("zoology") is first  # nothing written: one version check, nothing read again
    assert first.stats == writer.domain_stats("zoology")

    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    writer.index("zoology")
    second = reader.snapshot("zoology")
    assert second.stats.version == 2 and second.stats.files == ("newt.md", "quillfish.txt", "zorblat.md")
    assert all(second.space.passages[i] is p for i, p in first.space.passages.items())  # read incrementally
    assert reader.retrieve("glass newt Quenth stones", "zoology", 1)[0].passage.path == "newt.md"
    with pytest.raises(IndexStoreError, match="only reads"):
        reader.index("zoology")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("read_only = true", "read_only needs"),
        ('backend = "milvus"', "index.backend must be one of faiss, pgvector"),
        ('backend = "pgvector"\nschema = "my-schema"', "index.schema must be a plain identifier"),
        ('backend = "pgvector"\nef_search = 0', "index.ef_search must be between 1 and 1000"),
        ('backend = "pgvector"\ndsn = "postgresql://u:pw@h/db"', "unknown setting index.dsn"),
    ],
)
def test_bad_index_settings_are_refused(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.toml", f"[index]\n{table}\n"))


def test_the_index_settings_and_their_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "c.toml", "")).index == IndexConfig(backend="faiss")
    config = load_config(write(tmp_path / "d.toml", '[index]\nbackend = "pgvector"\nschema = "ours"\n'))
    assert config.index == IndexConfig(backend="pgvector", dsn_env="RAGSCOPE_PG_DSN", schema="ours", ef_search=100)


def test_another_dimension_or_layout_rebuilds_rather_than_mixes(
    pg: Config, knowledge_dir: Path, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    engine_on(pg).sync_all()
    other = dataclasses.replace(pg, embedding=dataclasses.replace(pg.embedding, model="other-model"))
    narrow = engine_on(other, HashingEmbedder(dimension=32, name="other-model"))
    caplog.set_level(logging.WARNING, logger="rag_engine.ingest.pg_store")
    assert narrow.index("zoology").rebuilt
    assert "rebuilding every domain" in caplog.text
    schema_table = sql.Identifier(pg.index.schema, SCHEMA_TABLE)
    assert rows(postgres_server, sql.SQL("SELECT schema_version, dimension FROM {}").format(schema_table)) == [
        (PG_SCHEMA_VERSION, 32)
    ]
    assert narrow.known_domains() == {"zoology"}  # geology's 64-dimensional rows went with the old tables
    assert narrow.index("geology").rebuilt
    assert narrow.retrieve("Varnholm basalt columns", "geology", 1)[0].passage.path == "basalt.md"

    rows(postgres_server, sql.SQL("UPDATE {} SET schema_version = 0 RETURNING 1").format(schema_table))
    again = engine_on(other, HashingEmbedder(dimension=32, name="other-model"))
    update = again.index("zoology")
    assert update.rebuilt and update.embedded == 0  # tables of another layout: rebuilt, the vectors from the cache


def test_a_second_writer_that_lost_the_race_starts_again_from_the_table(
    pg: Config, knowledge_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = engine_on(pg), engine_on(pg)
    first.index("zoology")
    second.index("zoology")
    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")

    class Racing(HashingEmbedder):
        """While the second writer embeds, the first writes the same change: the second's save must conflict."""

        def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            if len(self.calls) == 0:
                first.index("zoology")
            return super().embed(texts)

    racing = Racing()
    late = Engine(pg, embedder=lambda: racing, generator=EchoGenerator)
    late.snapshot("zoology")
    caplog.set_level(logging.WARNING, logger="rag_engine.ingest.knowledge")
    update = late.index("zoology")
    assert "indexing zoology again: zoology was written by another process" in caplog.text
    assert not update.applied  # after the conflict it read the first writer's update: nothing left to do
    assert late.domain_stats("zoology") == first.domain_stats("zoology")
    assert late.domain_stats("zoology").version == 2


def test_a_forgotten_domain_leaves_nothing_in_the_table(
    pg: Config, knowledge_dir: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    writer = engine_on(pg)
    writer.sync_all()
    shutil.rmtree(knowledge_dir / "geology")
    assert any(u.domain_removed for u in writer.sync_all())
    partition = f"{pg.index.schema}.{partition_name('geology')}"
    assert rows(postgres_server, sql.SQL("SELECT to_regclass(%s)"), partition) == [(None,)]
    assert engine_on(reader_config(pg, pg.index.schema, tmp_path)).domains() == ["zoology"]
    assert writer.known_domains() == {"zoology"}


def test_the_connection_string_never_shows(
    config: Config, pg_schema: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-pw"
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(ConfigError, match=DSN_ENV):
        engine_on(pgvector_config(config, pg_schema)).answer("zorblat", "zoology")
    caplog.set_level(logging.DEBUG)
    for dsn in (
        f"postgresql://ragscope:{secret}@127.0.0.1:{free_port()}/ragscope?connect_timeout=5",
        f"postgresql://ragscope:{secret}@127.0.0.1/rag scope",  # psycopg quotes it back in its error
        f"host=127.0.0.1 port={free_port()} user=ragscope password='{secret}' connect_timeout=5",
    ):
        monkeypatch.setenv(DSN_ENV, dsn)
        with pytest.raises(IndexStoreError) as failed:
            engine_on(pgvector_config(config, pg_schema)).answer("zorblat", "zoology")
        assert secret not in str(failed.value) and failed.value.__cause__ is None
        assert "PostgreSQL" in str(failed.value)
    assert secret not in caplog.text
    assert redact(f"bad: user=x password={secret} host=h", "unparsable") == "bad: user=x password=*** host=h"


def test_each_watched_change_matches_faiss(pg: Config, faiss: Config, knowledge_dir: Path) -> None:
    """Add, edit, rename and delete through a watcher on each store: the same updates and the same hits."""
    quick = WatchConfig(rebuild_debounce_seconds=0.2, max_rebuild_delay_seconds=2.0)
    engines = [engine_on(dataclasses.replace(c, watch=quick)) for c in (faiss, pg)]
    streams: list[queue.Queue[IndexUpdate]] = [queue.Queue(), queue.Queue()]
    folder = knowledge_dir / "zoology"
    steps = [
        lambda: write(folder / "newt.md", "The glass newt hides under Quenth stones.\n"),
        lambda: edit(folder / "newt.md", "The glass newt hides under Quenth stones and sings at dusk.\n"),
        lambda: (folder / "newt.md").rename(folder / "glass-newt.md"),
        lambda: (folder / "quillfish.txt").unlink(),
    ]
    with watching(engines, streams):
        for step in steps:
            step()
            faiss_update, pg_update = (stream.get(timeout=WAIT_SECONDS) for stream in streams)
            assert _counts(pg_update) == _counts(faiss_update)
            for question in ("glass newt sings", "quillfish spines"):
                same_hits(engines[1].retrieve(question, "zoology", 3), engines[0].retrieve(question, "zoology", 3))
    assert engines[1].domain_stats("zoology").files == ("glass-newt.md", "zorblat.md")
    assert isinstance(engines[1].snapshot("zoology").space.index, PgVectorIndex)


def _counts(update: IndexUpdate) -> dict[str, object]:
    return {key: value for key, value in update.to_dict().items() if key != "seconds"}


@contextmanager
def watching(engines: list[Engine], streams: list[queue.Queue[IndexUpdate]]) -> Iterator[None]:
    """Watchers over the engines' folders (their initial syncs' reports dropped), stopped on exit."""
    watchers: list[KnowledgeWatcher] = []
    try:
        for engine, stream in zip(engines, streams, strict=True):
            watchers.append(engine.watch(stream.put))
            while not stream.empty():
                stream.get_nowait()
        yield
    finally:
        for watcher in watchers:
            watcher.stop()


def test_a_table_that_lost_rows_is_rebuilt_not_trusted(
    pg: Config, knowledge_dir: Path, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = engine_on(pg).index("zoology")
    passages = sql.Identifier(pg.index.schema, "passages")
    delete = sql.SQL("DELETE FROM {} WHERE id = (SELECT min(id) FROM {}) RETURNING id")
    assert len(rows(postgres_server, delete.format(passages, passages))) == 1  # behind the store's back
    caplog.set_level(logging.WARNING, logger="rag_engine.ingest.pg_store")
    update = engine_on(pg).index("zoology")
    assert "its file records name" in caplog.text
    assert update.rebuilt and update.passages == first.passages and update.embedded == 0
