"""Where the domain snapshots are kept between processes: the `DomainStore` seam, chosen by `[index] backend`
(`knowledge.open_store`).

`NpzStore` ("faiss", the default) keeps one file per domain in the data folder (`storage.py`: the FAISS bytes
and the metadata JSON, swapped atomically); `PgStore` ("pgvector", `pg_store.py`) keeps them in PostgreSQL.
Both check that a stored snapshot was made with exactly the current settings (`index_settings`: the format, the
embedding model, chunking and loading) and hand back None otherwise, so the domain is rebuilt, never mixed. What
a snapshot is and how the next one is computed is `incremental.py`'s; when to load, save and swap, `knowledge.py`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from rag_engine.config import Config
from rag_engine.errors import IndexStoreError
from rag_engine.ingest.incremental import DomainIndex, FileRecord
from rag_engine.ingest.storage import load_domain_index, remove_stale_temps, save_domain_index
from rag_engine.records import DomainStats, Passage, SkippedFile
from rag_engine.search.index import FaissIndex, VectorIndex
from rag_engine.search.lexical import Bm25Index, LexicalIndex
from rag_engine.search.retrieval import SearchSpace

log = logging.getLogger(__name__)

# Bumped whenever the stored layout changes; an index of another format is rebuilt, not misread.
INDEX_FORMAT = 2


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
    """Everything that changes the vectors or the passages; a stored index must match it exactly. The model is
    named by config, so checking a stored index never needs to load the model."""
    loading = asdict(config.loading)
    return {
        "format": INDEX_FORMAT,
        "embedding_model": config.embedding.model,
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
    """A snapshot from what a store kept (`snapshot_meta`'s keys). The lexical index is not stored: rebuilt from
    the passages (about 1 s for 14,000 on 2 cores) unless given, it cannot disagree with them, and the BM25
    settings can change without a re-embedding. Raises KeyError, TypeError or ValueError on malformed metadata."""
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
    """One .npz per domain under the data folder: the FAISS index and the metadata, replaced atomically."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = Path(config.paths.data_dir)

    def current(self, domain: str, loaded: DomainIndex | None) -> DomainIndex | None:
        # One process owns the files: what it holds in memory is what it last wrote.
        return loaded if loaded is not None else self._load(domain)

    def stored_version(self, domain: str) -> int:
        try:
            _, meta = load_domain_index(npz_path(self.data_dir, domain))
            return int(meta.get("version", 0))
        except (FileNotFoundError, IndexStoreError, TypeError, ValueError):
            return 0

    def save(self, snapshot: DomainIndex) -> None:
        meta = snapshot_meta(self.config, snapshot)
        meta["passages"] = [p.to_dict() for p in snapshot.space.passages.values()]
        index = snapshot.space.index
        assert isinstance(index, FaissIndex)
        save_domain_index(npz_path(self.data_dir, snapshot.stats.domain), index, meta)

    def forget(self, domain: str) -> None:
        npz_path(self.data_dir, domain).unlink(missing_ok=True)

    def domains(self) -> set[str]:
        return {p.stem for p in (self.data_dir / "indexes").glob("*.npz")}

    def empty_index(self, domain: str, dimension: int) -> VectorIndex:
        return FaissIndex(dimension)

    def _load(self, domain: str) -> DomainIndex | None:
        path = npz_path(self.data_dir, domain)
        if path.parent.is_dir():
            remove_stale_temps(path.parent, time.time())
        try:
            index, meta = load_domain_index(path)
        except FileNotFoundError:
            return None
        except IndexStoreError as exc:
            log.warning("rebuilding %s: %s", domain, exc)
            return None
        if meta.get("settings") != index_settings(self.config):
            log.info("rebuilding %s: it was indexed with other model, chunking or loading settings", domain)
            return None
        try:
            passages = {p.id: p for p in (Passage.from_dict(raw) for raw in meta["passages"])}
            if len(index) != len(passages):
                vectors, held = len(index), len(passages)
                log.warning("rebuilding %s: stored index has %d vectors for %d passages", domain, vectors, held)
                return None
            return build_snapshot(self.config, domain, meta, passages, index)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("rebuilding %s: stored index metadata is malformed (%s)", domain, exc)
            return None

