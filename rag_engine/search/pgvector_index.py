"""The `VectorIndex` seam on PostgreSQL + pgvector: one domain's vectors in its partition of the `passages`
table, searched in SQL with true Euclidean distances (`<->`), as `FaissIndex` reports them.

Each domain is a list partition of `passages` with an HNSW index of its own, so a search never filters: a
filtered HNSW scan on pgvector < 0.8 cuts at `hnsw.ef_search` candidates before the filter and can return fewer
than k rows. `hnsw.ef_search` is raised to k for the search (HNSW never returns more rows than that), and a
search that still comes back short (k above pgvector's limit of 1,000, or a graph thinned by deletions) is
answered by an exact scan instead.

An index object is one snapshot of one domain: the ids it holds and the revision of the domain's row in
`ragscope_domains` they are, plus, on a copy being updated, the vectors to add and the ids to drop. Those
pending changes reach the table only through the store (`ingest/pg_store.py`), in one transaction, which then
marks the index saved; searching an index with changes not yet saved is refused. Each search reads the
domain's revision and runs its kNN in one REPEATABLE READ transaction, so it sees exactly its snapshot's rows;
when the indexer has committed a newer revision since, the search raises `SnapshotReplacedError` instead of
answering from rows its snapshot does not describe (the engine asks again, from the new snapshot).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql

from rag_engine.errors import IndexStoreError, SnapshotReplacedError
from rag_engine.search.index import Floats, Ids
from rag_engine.search.postgres import Connection, PgConnections

PASSAGES_TABLE = "passages"
# A row per domain; its `revision` is bumped by every write (the store owns the table, searches read it).
DOMAINS_TABLE = "ragscope_domains"
# pgvector's upper bound for hnsw.ef_search; a larger k is answered by an exact scan.
HNSW_MAX_EF_SEARCH = 1000
# Vectors of recent hits kept per snapshot: retrieval asks for the vectors of the ids a search just returned.
VECTOR_CACHE_SIZE = 4096
# What FAISS reports for a missing neighbour: id -1 at the largest float32 distance.
_NO_DISTANCE = np.finfo(np.float32).max


def partition_name(domain: str) -> str:
    """The table name of a domain's partition: from a hash, since a folder name need not be an identifier."""
    return "passages_" + hashlib.sha256(domain.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class DomainTable:
    """Where one domain's passages live: its partition of `schema.passages`, through `connections`."""

    connections: PgConnections
    schema: str
    domain: str

    @property
    def partition(self) -> sql.Identifier:
        return sql.Identifier(self.schema, partition_name(self.domain))


class PgVectorIndex:
    """One domain's snapshot in the `passages` table: kNN in SQL, changes pending until the store saves them."""

    def __init__(
        self,
        table: DomainTable,
        dimension: int,
        ids: Iterable[int] = (),
        revision: int | None = None,
        ef_search: int = 100,
    ) -> None:
        self.table = table
        self.dimension = dimension
        # The domain's revision in the table that these ids are (None: not from the table: a rebuild, which
        # replaces whatever the table holds for the domain).
        self.revision = revision
        self.ef_search = ef_search
        self._ids = frozenset(int(i) for i in ids)
        self._added: dict[int, Floats] = {}
        self._removed: set[int] = set()
        self._cache: dict[int, Floats] = {}
        self._knn = sql.SQL(
            "SELECT id, embedding <-> %s AS distance, embedding FROM {} ORDER BY distance LIMIT %s"
        ).format(table.partition)

    # -- changes, applied by the store ------------------------------------------------------------------
    def add(self, ids: Sequence[int] | Ids, vectors: Floats) -> None:
        id_array = np.asarray(ids, dtype=np.int64)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension or len(id_array) != len(matrix):
            raise ValueError(f"expected {len(id_array)} vectors of dimension {self.dimension}, got {matrix.shape}")
        for passage_id, vector in zip(id_array.tolist(), matrix, strict=True):
            self._added[passage_id] = vector.copy()
            self._removed.discard(passage_id)
        self._ids = self._ids | set(self._added)

    def remove(self, ids: Sequence[int] | Ids) -> int:
        gone = {int(i) for i in np.asarray(ids, dtype=np.int64).tolist()} & self._ids
        for passage_id in gone:
            self._added.pop(passage_id, None)
        self._removed |= gone
        self._ids = self._ids - gone
        return len(gone)

    def pending(self) -> tuple[dict[int, Floats], frozenset[int]]:
        """(vectors to upsert by id, ids to delete): what the store writes in its one transaction."""
        return dict(self._added), frozenset(self._removed)

    def mark_saved(self, revision: int) -> None:
        """The store committed the pending changes as `revision`: from now on this index is the table's state."""
        self._added.clear()
        self._removed.clear()
        self.revision = revision

    # -- queries ------------------------------------------------------------------------------------------
    def search(self, queries: Floats, k: int) -> tuple[Floats, Ids]:
        """Nearest first. Returns (euclidean distances, ids), each [n_queries, min(k, len)], as FAISS does."""
        matrix = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        if self._added or self._removed:
            raise IndexStoreError(f"the {self.table.domain} index has changes not saved yet; it cannot be searched")
        distances = np.full((len(matrix), k), _NO_DISTANCE, np.float32)
        found = np.full((len(matrix), k), -1, np.int64)
        with self.table.connections.connection() as conn:
            for row, query in enumerate(matrix):
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    self._check_revision(conn)
                    for column, (passage_id, distance, vector) in enumerate(self._nearest(conn, query, k)):
                        found[row, column] = passage_id
                        distances[row, column] = distance
                        self._remember(passage_id, vector.to_numpy())
        return distances, found

    def _check_revision(self, conn: Connection) -> None:
        """Inside the search's transaction: the table must still be this snapshot's revision."""
        query = sql.SQL("SELECT revision FROM {} WHERE domain = %s")
        row = conn.execute(query.format(sql.Identifier(self.table.schema, DOMAINS_TABLE)), (self.table.domain,))
        stored = row.fetchone()
        if stored is None or stored[0] != self.revision:
            raise SnapshotReplacedError(f"{self.table.domain} was updated while this question was answered")

    def _nearest(self, conn: Connection, query: Floats, k: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if k <= HNSW_MAX_EF_SEARCH:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(self.ef_search, k)),))
            rows = conn.execute(self._knn, (query, k), binary=True).fetchall()
        if len(rows) < k:  # short: answered by a true scan (no index), in the same transaction
            conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
            rows = conn.execute(self._knn, (query, k), binary=True).fetchall()
        return rows

    def vectors(self, ids: Sequence[int] | Ids) -> Floats:
        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros((0, self.dimension), np.float32)
        known: dict[int, Floats] = {}
        for passage_id in wanted:
            vector = self._added.get(passage_id)
            if vector is None:
                vector = self._cache.get(passage_id)
            if vector is not None:
                known[passage_id] = vector
        missing = sorted(set(wanted) - set(known))
        if missing:
            query = sql.SQL("SELECT id, embedding FROM {} WHERE id = ANY(%s::bigint[])").format(self.table.partition)
            with self.table.connections.connection() as conn:
                for passage_id, vector in conn.execute(query, (missing,), binary=True):
                    known[passage_id] = vector.to_numpy()
                    self._remember(passage_id, known[passage_id])
        if len(known) < len(set(wanted)):  # deleted by an update since this snapshot was read
            raise SnapshotReplacedError(f"{self.table.domain} was updated while this question was answered")
        return np.vstack([known[i] for i in wanted]).astype(np.float32)

    def _remember(self, passage_id: int, vector: Floats) -> None:
        if len(self._cache) >= VECTOR_CACHE_SIZE:
            self._cache.clear()
        self._cache[passage_id] = vector

    def copy(self) -> PgVectorIndex:
        """An independent copy (same table, same ids and pending changes) to apply an update to."""
        twin = PgVectorIndex(self.table, self.dimension, self._ids, self.revision, self.ef_search)
        twin._added = dict(self._added)
        twin._removed = set(self._removed)
        return twin

    def __len__(self) -> int:
        return len(self._ids)
