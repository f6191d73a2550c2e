"""Where the domain snapshots are kept between processes: the `DomainStore` seam, chosen by `[index] backend`
(`knowledge.open_store`).

`NpzStore` ("faiss", the default) keeps a base file per domain in the data folder (the FAISS bytes, the
metadata JSON and the lexical statistics, swapped atomically) and small update files after it, each holding one
update's change (`journal.py`, `storage.py`); `PgStore` ("pgvector", `pg_store.py`) keeps them in PostgreSQL.
Both check that a stored snapshot was made with exactly the current settings (`index_settings`: the format, the
embedding model and backend, chunking and loading) and hand back None otherwise, so the domain is rebuilt, never
mixed. What a snapshot is and how the next one is computed is `incremental.py`'s; when to load, save and swap,
`knowledge.py`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from rag_engine.config import Config
from rag_engine.errors import IndexStoreError
from rag_engine.ingest.embedding import vector_backend
from rag_engine.ingest.incremental import DomainIndex, FileRecord
from rag_engine.ingest.journal import Journal, JournalConflictError
from rag_engine.ingest.storage import remove_stale_temps
from rag_engine.records import DomainStats, Passage, SkippedFile
from rag_engine.search.approximate import IvfIndex
from rag_engine.search.index import FaissIndex, VectorIndex
from rag_engine.search.lexical import Bm25Index, LexicalIndex
from rag_engine.search.retrieval import SearchSpace

log = logging.getLogger(__name__)

# Bumped whenever the stored layout changes; an index of another format is rebuilt, not misread.
# 3: the FAISS store's base file holds the lexical statistics, and update files follow it (`journal.py`).
INDEX_FORMAT = 3


class StoreConflictError(IndexStoreError):
    """Another process wrote the domain since this one read it: the update must start again from the store."""


class DomainStore(Protocol):
    """Loads, saves and forgets domain snapshots."""

    def current(self, domain: str, loaded: DomainIndex | None) -> DomainIndex | None:
        """The domain's newest snapshot: `loaded` (the one in memory) while it is still the stored one, else the
        stored one; None when nothing usable is stored."""
        ...

    def stored_version(self, domain: str) -> int:
        """The stored domain's version even if it cannot be used (other settings): 0 if there is none."""
        ...

    def save(self, snapshot: DomainIndex) -> None:
        """Store the snapshot all at once (readers see the old one or this one); `IndexStoreError` otherwise."""
        ...

    def forget(self, domain: str) -> None: ...

    def domains(self) -> set[str]:
        """The domains that have a stored snapshot."""
        ...

    def empty_index(self, domain: str, dimension: int) -> VectorIndex:
        """An empty index of this store's kind, for a domain indexed from nothing."""
        ...


def index_settings(config: Config) -> dict[str, Any]:
    """Everything that changes the vectors or the passages; a stored index must match it exactly. The model and
    what runs it (torch, onnx, onnx-int8 with its kernels) are named by config, so checking a stored index never
    needs to load the model, and a domain indexed by another backend is rebuilt, never mixed."""
    loading = asdict(config.loading)
    return {
        "format": INDEX_FORMAT,
        "embedding_model": config.embedding.model,
        "embedding_backend": vector_backend(config.embedding),
        "chunking": asdict(config.chunking),
        "loading": {key: list(value) if isinstance(value, tuple) else value for key, value in loading.items()},
    }


def snapshot_meta(config: Config, snapshot: DomainIndex) -> dict[str, Any]:
    """What a store keeps beside the vectors, passages aside: the settings, the version and times, the files."""
    stats = snapshot.stats
    return {
        "settings": index_settings(config),
        "version": stats.version,
        "built_at": stats.built_at,
        "updated_at": stats.updated_at,
        "records": {rel: record.to_dict() for rel, record in snapshot.records.items()},
    }


def build_snapshot(
    config: Config,
    domain: str,
    meta: dict[str, Any],
    passages: dict[int, Passage],
    index: VectorIndex,
    lexical: LexicalIndex | None = None,
) -> DomainIndex:
    """A snapshot from what a store kept (`snapshot_meta`'s keys). The lexical index is the stored one when
    given (the FAISS store keeps the analysed terms; k1 and b apply at query time, so they can change without
    a re-analysis), else built from the passages (about 2 s for 13,400 on 2 cores, most of it stemming).
    Raises KeyError, TypeError or ValueError on malformed metadata."""
    records = {rel: FileRecord.from_dict(raw) for rel, raw in meta["records"].items()}
    stats = DomainStats(
        domain=domain,
        files=tuple(sorted(rel for rel, rec in records.items() if rec.reason is None)),
        passages=len(passages),
        skipped=tuple(SkippedFile(rel, rec.reason, rec.failed) for rel, rec in sorted(records.items()) if rec.reason),
        built_at=float(meta["built_at"]),
        embedding_model=config.embedding.model,
        updated_at=float(meta["updated_at"]),
        version=int(meta["version"]),
    )
    if lexical is None:
        retrieval = config.retrieval
        lexical = Bm25Index.build({i: p.text for i, p in passages.items()}, retrieval.bm25_k1, retrieval.bm25_b)
    return DomainIndex(stats, SearchSpace(domain, index, passages, lexical), records)


def npz_path(data_dir: Path, domain: str) -> Path:
    return data_dir / "indexes" / f"{domain}.npz"


class NpzStore:
    """Per domain under the data folder, a base .npz (the FAISS index, the metadata, the lexical statistics)
    replaced atomically, and the update files written after it (`journal.py`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = Path(config.paths.data_dir)
        retrieval = config.retrieval
        self._journal = Journal(self.data_dir / "indexes", retrieval.bm25_k1, retrieval.bm25_b)

    def current(self, domain: str, loaded: DomainIndex | None) -> DomainIndex | None:
        # One process owns the files: what it holds in memory is what it last wrote or read, unless a write found
        # that another process had written meanwhile (then the journal forgot the domain, and the files are read).
        return loaded if loaded is not None and self._journal.knows(domain) else self._load(domain)

    def stored_version(self, domain: str) -> int:
        try:
            return self._journal.stored_version(domain)
        except (FileNotFoundError, IndexStoreError, TypeError, ValueError, KeyError):
            return 0

    def save(self, snapshot: DomainIndex) -> None:
        index = snapshot.space.index
        assert isinstance(index, FaissIndex | IvfIndex)
        try:
            self._journal.save(snapshot, lambda: snapshot_meta(self.config, snapshot))
        except JournalConflictError as exc:
            raise StoreConflictError(str(exc)) from exc

    def forget(self, domain: str) -> None:
        self._journal.forget(domain)

    def domains(self) -> set[str]:
        return {p.stem for p in (self.data_dir / "indexes").glob("*.npz")}

    def empty_index(self, domain: str, dimension: int) -> VectorIndex:
        return FaissIndex(dimension)

    def _load(self, domain: str) -> DomainIndex | None:
        path = npz_path(self.data_dir, domain)
        if path.parent.is_dir():
            remove_stale_temps(path.parent, time.time())
        try:
            stored = self._journal.load(domain, index_settings(self.config))
            if stored is None:
                log.info("rebuilding %s: it was indexed with other model, chunking or loading settings", domain)
                return None
            snapshot = build_snapshot(self.config, domain, stored.meta, stored.passages, stored.index, stored.lexical)
        except FileNotFoundError:
            return None
        except IndexStoreError as exc:
            log.warning("rebuilding %s: %s", domain, exc)
            return None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("rebuilding %s: stored index metadata is malformed (%s)", domain, exc)
            return None
        self._journal.adopt(stored, snapshot)
        return snapshot
