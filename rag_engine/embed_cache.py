"""The embedding cache: passage text → vector, on disk, so unchanged text is never embedded twice.

Keyed by the SHA-256 of the exact text the embedder saw, scoped by the embedding model's name, so a vector
is reused across edits elsewhere in a file, renames, copies, other domains and restarts. Stored in SQLite
(standard library, one file): each `put` is one transaction, so a process killed mid-write leaves the cache
as it was before that transaction, and several processes (`ragscope watch` and `ragscope ask`) can share it.
The cache is disposable: an unreadable file is moved aside and started afresh. Choosing what to embed is
the caller's job (`knowledge.py`).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
# SQLite's limit on host parameters per statement is 32766 nowadays, 999 in old builds.
_LOOKUP_BATCH = 900
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key BLOB NOT NULL,
    dimension INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID
"""


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors of one embedding model, looked up by text. Thread-safe; one connection per instance."""

    def __init__(self, path: Path, model: str) -> None:
        self.path = path
        self.model = model
        self._lock = threading.Lock()
        self._connection = self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            # A damaged cache costs re-embedding, never an error: keep the file for a post-mortem, start over.
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.warning("embedding cache %s is unreadable (%s); moved to %s", self.path, exc, aside.name)
            self.path.replace(aside)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in `put`), nothing is left open.
        connection = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False, isolation_level=None)
        try:
            # WAL lets readers in other processes go on while one writes; NORMAL sync is still crash-safe
            # in WAL mode (a power cut may lose the last transaction, never corrupt the file).
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
            connection.execute("SELECT count(*) FROM vectors WHERE 0").fetchall()
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def get(self, texts: Sequence[str], dimension: int | None = None) -> dict[int, Vector]:
        """Cached vectors by position in `texts`; a text that is missing (or of another dimension) is absent."""
        wanted: dict[bytes, list[int]] = {}
        for position, text in enumerate(texts):
            wanted.setdefault(text_key(text), []).append(position)
        found: dict[int, Vector] = {}
        keys = list(wanted)
        with self._lock:
            for batch in _batches(keys, _LOOKUP_BATCH):
                marks = ",".join("?" * len(batch))
                rows = self._connection.execute(
                    f"SELECT key, dimension, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                    [self.model, *batch],
                ).fetchall()
                for key, stored_dimension, blob in rows:
                    if dimension is not None and stored_dimension != dimension:
                        continue
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if len(vector) != stored_dimension:
                        continue
                    for position in wanted[bytes(key)]:
                        found[position] = vector
        return found

    def put(self, texts: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Store one vector per text, in one transaction."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(self.model, text_key(t), int(matrix.shape[1]), matrix[i].tobytes()) for i, t in enumerate(texts)]
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                self._connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._connection.execute("SELECT count(*) FROM vectors WHERE model = ?", [self.model]).fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _batches(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
