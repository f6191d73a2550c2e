"""The PostgreSQL store (`[index] backend = "pgvector"`): every domain's snapshot in tables, written by one
indexer and read by any number of answer processes, which need no local files.

Three tables in the schema `index.schema`:
- `ragscope_schema`: one row, the layout version (`PG_SCHEMA_VERSION`) and the vector dimension (the embedder's).
  A table of another layout or dimension is dropped and made again by the next writer: every domain is
  rebuilt, never mixed (a reader sees no domains meanwhile).
- `ragscope_domains`: a row per domain: its `revision` (bumped by every write; what readers and the next write
  compare), version, settings (JSON: format, embedding model, chunking, loading: another set means a rebuild,
  as with the FAISS files), times, and the file records (JSON).
- `passages`: one row per passage: domain, the stable passage id, path, span, lines and pages, text, text hash
  (the embedding cache's key) and `vector(dimension)`. The primary key is (domain, id): an id is stable within a
  domain, and the same file in two domains has the same ids. The table is list-partitioned by domain, each
  partition with its own HNSW index (`search/pgvector_index.py` searches it).

Why a reader sees the old domain or the new one, never half: a domain update is ONE transaction (the upserts,
`DELETE ... WHERE id = ANY(...)`, and the domain row with its new revision last), so PostgreSQL makes all of
it visible at the commit, or none of it if the writer dies first (a killed writer's connection drops and
its transaction is rolled back; the next sync finds the old state and applies the changes again, the
embeddings coming from the cache). A reader loads a snapshot (domain row, ids, new rows) in one REPEATABLE
READ transaction, so every statement of the load sees the same commit, and the revision it read says which;
each search reads that revision again beside its kNN, in one such transaction of its own, and a search whose
snapshot was replaced meanwhile raises `SnapshotReplacedError` (the engine then searches the new snapshot)
rather than mixing the two. Writers take a per-domain advisory lock and check that the stored revision is the
one their update started from; if another process wrote in between, `StoreConflictError` sends the update back
to start from the store.

Text PostgreSQL cannot hold (a NUL, a lone surrogate) is stored escaped, and read back so; the file records
are stored as JSON text, which keeps even names that are not UTF-8 exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from rag_engine.config import Config
from rag_engine.ingest.embed_cache import text_key
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.ingest.store import StoreConflictError, build_snapshot, index_settings, snapshot_meta
from rag_engine.records import Passage
from rag_engine.safe_names import utf8_name
from rag_engine.search.pgvector_index import DOMAINS_TABLE, PASSAGES_TABLE, DomainTable, PgVectorIndex, partition_name
from rag_engine.search.postgres import Connection, PgConnections, dsn_from_environment

log = logging.getLogger(__name__)

# Bumped whenever the tables' layout changes: tables of another layout are made again, every domain rebuilt.
PG_SCHEMA_VERSION = 1
SCHEMA_TABLE = "ragscope_schema"
_PASSAGE_COLUMNS = "id, path, text, line_start, line_end, page_start, page_end"


def db_text(text: str) -> str:
    """`text` as a PostgreSQL text value: a NUL or a lone surrogate (which it cannot store) escaped."""
    return utf8_name(text).replace("\x00", "\\x00")


def _lock_key(*parts: str) -> int:
    """A 64-bit advisory lock key for the names."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgStore:
    """Domain snapshots in PostgreSQL (see the module docstring for the tables and the transactions)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.schema = config.index.schema
        # A reader only expects the extension; the writer creates it if it may.
        self.connections = PgConnections(
            lambda: dsn_from_environment(config.index), create_extension=not config.index.read_only
        )
        # (domain, revision) of stored snapshots already reported unusable: said once, not at every question.
        self._announced: set[tuple[str, int]] = set()

    def _name(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def _table(self, domain: str) -> DomainTable:
        return DomainTable(self.connections, self.schema, db_text(domain))

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """One read-only transaction whose every statement sees the same commits."""
        with self.connections.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def _dimension(self, conn: Connection) -> int | None:
        """The tables' vector dimension; None when there are no tables of this layout yet."""
        regclass = self._name(SCHEMA_TABLE).as_string(conn)
        if conn.execute("SELECT to_regclass(%s)", (regclass,)).fetchone() == (None,):
            return None
        row = conn.execute(sql.SQL("SELECT schema_version, dimension FROM {}").format(self._name(SCHEMA_TABLE)))
        found = row.fetchone()
        return int(found[1]) if found is not None and found[0] == PG_SCHEMA_VERSION else None

    # -- reading ------------------------------------------------------------------------------------------
    def domains(self) -> set[str]:
        with self._reading() as conn:
            if self._dimension(conn) is None:
                return set()
            rows = conn.execute(sql.SQL("SELECT domain FROM {}").format(self._name(DOMAINS_TABLE)))
            return {str(row[0]) for row in rows}

    def stored_version(self, domain: str) -> int:
        with self._reading() as conn:
            if self._dimension(conn) is None:
                return 0
            query = sql.SQL("SELECT version FROM {} WHERE domain = %s").format(self._name(DOMAINS_TABLE))
            row = conn.execute(query, (db_text(domain),)).fetchone()
            return int(row[0]) if row is not None else 0

    def current(self, domain: str, loaded: DomainIndex | None) -> DomainIndex | None:
        """`loaded` while the table still holds its revision (one indexed read: what every question costs a
        reader), else the table's snapshot, read incrementally from `loaded` when there is one."""
        key = db_text(domain)
        with self._reading() as conn:
            dimension = self._dimension(conn)
            if dimension is None:
                return None
            query = sql.SQL("SELECT revision, settings FROM {} WHERE domain = %s").format(self._name(DOMAINS_TABLE))
            row = conn.execute(query, (key,)).fetchone()
            if row is None:
                return None
            revision, settings = int(row[0]), row[1]
            if settings != index_settings(self.config):
                if (domain, revision) not in self._announced:
                    self._announced.add((domain, revision))
                    log.info("the table's index of %s was made with other model, chunking or loading settings", domain)
                return None
            held = loaded.space.index if loaded is not None else None
            if isinstance(held, PgVectorIndex) and held.revision == revision:
                return loaded
            return self._read(conn, domain, revision, dimension, loaded if isinstance(held, PgVectorIndex) else None)

    def _read(
        self, conn: Connection, domain: str, revision: int, dimension: int, base: DomainIndex | None
    ) -> DomainIndex | None:
        table = self._table(domain)
        query = sql.SQL("SELECT version, built_at, updated_at, records FROM {} WHERE domain = %s")
        found = conn.execute(query.format(self._name(DOMAINS_TABLE)), (table.domain,)).fetchone()
        assert found is not None  # read in this same transaction a moment ago
        meta: dict[str, Any] = {"version": found[0], "built_at": found[1], "updated_at": found[2]}
        select = sql.SQL(f"SELECT {_PASSAGE_COLUMNS} FROM {{}}").format(table.partition)
        if base is None:
            passages = _passages(conn.execute(sql.SQL("{} ORDER BY id").format(select)))
            lexical = None
        else:  # only the rows this process has not read yet: an id always stands for the same passage
            ids = {int(row[0]) for row in conn.execute(sql.SQL("SELECT id FROM {}").format(table.partition))}
            known = base.space.passages
            new = sorted(ids - known.keys())
            added = _passages(conn.execute(sql.SQL("{} WHERE id = ANY(%s::bigint[])").format(select), (new,)))
            passages = {i: p for i, p in known.items() if i in ids} | added
            lexical = base.space.lexical.updated({i: p.text for i, p in added.items()}, known.keys() - ids)
        try:
            meta["records"] = json.loads(found[3])
            index = PgVectorIndex(table, dimension, passages, revision, self.config.index.ef_search)
            snapshot = build_snapshot(self.config, domain, meta, passages, index, lexical)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("rebuilding %s: its stored records are malformed (%s)", domain, exc)
            return None
        referenced = {i for record in snapshot.records.values() for i in record.passage_ids}
        if referenced != passages.keys():
            held, named = len(passages), len(referenced)
            log.warning("rebuilding %s: the table holds %d passages, its file records name %d", domain, held, named)
            return None
        return snapshot

    # -- writing ------------------------------------------------------------------------------------------
    def empty_index(self, domain: str, dimension: int) -> PgVectorIndex:
        return PgVectorIndex(self._table(domain), dimension, ef_search=self.config.index.ef_search)

    def save(self, snapshot: DomainIndex) -> None:
        """Write the snapshot's changes in one transaction (see the module docstring)."""
        index = snapshot.space.index
        assert isinstance(index, PgVectorIndex)
        table = self._table(snapshot.stats.domain)
        added, removed = index.pending()
        meta = snapshot_meta(self.config, snapshot)
        with self.connections.connection() as conn:
            self._prepare(conn, table, index.dimension)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema, table.domain),))
                query = sql.SQL("SELECT revision FROM {} WHERE domain = %s").format(self._name(DOMAINS_TABLE))
                row = conn.execute(query, (table.domain,)).fetchone()
                stored = int(row[0]) if row is not None else None
                if index.revision is None:  # a rebuild replaces whatever the table holds for the domain
                    conn.execute(sql.SQL("DELETE FROM {}").format(table.partition))
                elif stored != index.revision:
                    raise StoreConflictError(
                        f"{snapshot.stats.domain} was written by another process (revision {stored}) since this "
                        f"one read revision {index.revision}"
                    )
                elif removed:
                    delete = sql.SQL("DELETE FROM {} WHERE id = ANY(%s::bigint[])").format(table.partition)
                    conn.execute(delete, (sorted(removed),))
                if added:
                    self._upsert(conn, table, snapshot.space.passages, added)
                revision = (stored or 0) + 1
                self._write_domain(conn, table.domain, revision, meta)
        index.mark_saved(revision)

    def _upsert(
        self, conn: Connection, table: DomainTable, passages: dict[int, Passage], vectors: dict[int, Any]
    ) -> None:
        upsert = sql.SQL(
            "INSERT INTO {} (domain, id, path, span, line_start, line_end, page_start, page_end, text, text_hash, "
            "embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain, id) DO UPDATE SET "
            "path = EXCLUDED.path, span = EXCLUDED.span, line_start = EXCLUDED.line_start, "
            "line_end = EXCLUDED.line_end, page_start = EXCLUDED.page_start, page_end = EXCLUDED.page_end, "
            "text = EXCLUDED.text, text_hash = EXCLUDED.text_hash, embedding = EXCLUDED.embedding"
        ).format(table.partition)
        rows = []
        for passage_id, vector in sorted(vectors.items()):
            p = passages[passage_id]
            rows.append(
                (table.domain, passage_id, db_text(p.path), p.span, p.line_start, p.line_end, p.page_start,
                 p.page_end, db_text(p.text), text_key(p.text), vector)
            )  # fmt: skip
        with conn.cursor() as cursor:
            cursor.executemany(upsert, rows)

    def _write_domain(self, conn: Connection, domain: str, revision: int, meta: dict[str, Any]) -> None:
        """The domain row, last in the transaction: its new revision is what readers look for."""
        query = sql.SQL(
            "INSERT INTO {} (domain, revision, version, settings, built_at, updated_at, records) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain) DO UPDATE SET revision = EXCLUDED.revision, "
            "version = EXCLUDED.version, settings = EXCLUDED.settings, built_at = EXCLUDED.built_at, "
            "updated_at = EXCLUDED.updated_at, records = EXCLUDED.records"
        ).format(self._name(DOMAINS_TABLE))
        values = (domain, revision, meta["version"], Jsonb(meta["settings"]), meta["built_at"], meta["updated_at"])
        conn.execute(query, (*values, json.dumps(meta["records"])))

    def _prepare(self, conn: Connection, table: DomainTable, dimension: int) -> None:
        """The tables for this dimension and the domain's partition, made if missing (a short transaction of
        its own, under a lock of the whole schema, so that two writers never make them at once)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema),))
            stored = self._dimension(conn)
            if stored != dimension:
                self._make_tables(conn, dimension, stored)
            partition = table.partition
            if conn.execute("SELECT to_regclass(%s)", (partition.as_string(conn),)).fetchone() == (None,):
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                        partition, self._name(PASSAGES_TABLE), sql.Literal(table.domain)
                    )
                )
                hnsw = sql.Identifier(partition_name(table.domain) + "_hnsw")
                create = sql.SQL("CREATE INDEX {} ON {} USING hnsw (embedding vector_l2_ops)")
                conn.execute(create.format(hnsw, partition))

    def _make_tables(self, conn: Connection, dimension: int, stored: int | None) -> None:
        regclass = self._name(SCHEMA_TABLE).as_string(conn)
        if conn.execute("SELECT to_regclass(%s)", (regclass,)).fetchone() != (None,):
            log.warning(
                "rebuilding every domain in schema %s: its tables are of another layout or dimension (%s, not %d)",
                self.schema, stored, dimension,
            )  # fmt: skip
        for name in (PASSAGES_TABLE, DOMAINS_TABLE, SCHEMA_TABLE):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(self._name(name)))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
                "schema_version integer NOT NULL, dimension integer NOT NULL)"
            ).format(self._name(SCHEMA_TABLE))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (domain text PRIMARY KEY, revision bigint NOT NULL, version bigint NOT NULL, "
                "settings jsonb NOT NULL, built_at double precision NOT NULL, updated_at double precision NOT NULL, "
                "records text NOT NULL)"
            ).format(self._name(DOMAINS_TABLE))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (domain text NOT NULL, id bigint NOT NULL, path text NOT NULL, span text NOT NULL, "
                "line_start integer NOT NULL, line_end integer NOT NULL, page_start integer, page_end integer, "
                "text text NOT NULL, text_hash bytea NOT NULL, embedding vector({}) NOT NULL, "
                "PRIMARY KEY (domain, id)) PARTITION BY LIST (domain)"
            ).format(self._name(PASSAGES_TABLE), sql.Literal(dimension))
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (schema_version, dimension) VALUES (%s, %s)").format(self._name(SCHEMA_TABLE)),
            (PG_SCHEMA_VERSION, dimension),
        )

    def forget(self, domain: str) -> None:
        """Drop the domain's row and its partition, in one transaction."""
        table = self._table(domain)
        with self.connections.connection() as conn, conn.transaction():
            if self._dimension(conn) is None:
                return
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.schema, table.domain),))
            delete = sql.SQL("DELETE FROM {} WHERE domain = %s").format(self._name(DOMAINS_TABLE))
            conn.execute(delete, (table.domain,))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table.partition))


def _passages(rows: Any) -> dict[int, Passage]:
    return {int(row[0]): Passage(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows}
