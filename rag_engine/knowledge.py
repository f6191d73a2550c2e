"""The knowledge store: domains (subfolders of the knowledge folder), their current snapshots, persistence.

`sync(domain)` brings a domain's index up to date with its folder: it starts from the snapshot in memory
(else the one stored on disk, if it was made with the same model and chunking settings), lets
`incremental.py` apply only what changed, writes the result atomically, then swaps it in with one reference
assignment. Queries read whatever snapshot is current and never wait for, or see, an update in progress.
Syncs of one domain are serialised; different domains do not block each other. Watching the folder for
changes is `watcher.py`'s job; this module only reacts when asked.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rag_engine.config import Config
from rag_engine.embed_cache import EmbeddingCache
from rag_engine.embedding import Embedder
from rag_engine.errors import IndexStoreError, KnowledgeFolderError, UnknownDomainError
from rag_engine.incremental import DomainIndex, FileRecord, Progress, Scan, VectorSource, next_snapshot
from rag_engine.index import FaissIndex, load_domain_index, remove_stale_temps, save_domain_index
from rag_engine.lexical import Bm25Index
from rag_engine.loading import is_candidate
from rag_engine.records import DomainStats, IndexUpdate, Passage, SkippedFile
from rag_engine.retrieval import SearchSpace

log = logging.getLogger(__name__)

# Bumped whenever the stored layout changes; an index of another format is rebuilt, not misread.
INDEX_FORMAT = 2

__all__ = ["DomainIndex", "KnowledgeBase", "Progress"]


class KnowledgeBase:
    """Owns the domain snapshots of one knowledge folder; the embedder is created on first need.

    `watched` is set while a watcher keeps the snapshots fresh: queries then use the current snapshot as is.
    Without a watcher every `get` first syncs: one `stat` per file (about 20 ms per 1,000 files) when nothing
    changed.
    """

    def __init__(self, config: Config, embedder: Callable[[], Embedder]) -> None:
        self.config = config
        self.root = Path(config.paths.knowledge_dir)
        self.data_dir = Path(config.paths.data_dir)
        self.watched = False
        self._embedder = embedder
        self._loaded: dict[str, DomainIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._cache: EmbeddingCache | None = None

    # -- domains -------------------------------------------------------------------------------------
    def domain_names(self) -> list[str]:
        if not self.root.is_dir():
            raise KnowledgeFolderError(f"knowledge folder not found: {self.root}")
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def check_domain(self, domain: str) -> str:
        names = self.domain_names()
        if domain not in names:
            raise UnknownDomainError(domain, names)
        return domain

    def files(self, domain: str) -> Iterator[tuple[str, Path]]:
        """(relative posix path, absolute path) of every candidate file, hidden folders excluded."""
        for relative, path, _ in self._walk(domain):
            yield relative, path

    def _walk(self, domain: str) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Candidate files with one `stat` each (the directory listing already says what is a file)."""
        folder = self.root / domain
        for current, subfolders, names in os.walk(folder):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            base = Path(current)
            for name in sorted(names):
                path = base / name
                if not is_candidate(path, self.config.loading):
                    continue
                try:
                    info = path.stat()
                except (FileNotFoundError, NotADirectoryError):  # deleted between the listing and the stat
                    continue
                if stat.S_ISREG(info.st_mode):
                    yield path.relative_to(folder).as_posix(), path, info

    def index_path(self, domain: str) -> Path:
        return self.data_dir / "indexes" / f"{domain}.npz"

    def cache_path(self) -> Path:
        return self.data_dir / "cache"

    # -- access --------------------------------------------------------------------------------------
    def get(self, domain: str, progress: Progress | None = None) -> DomainIndex:
        """The domain's current snapshot (synced first unless a watcher keeps it fresh)."""
        self.check_domain(domain)
        current = self._loaded.get(domain)
        if current is not None and self.watched:
            return current
        self.sync(domain, progress)
        return self._loaded[domain]

    def stats(self, domain: str) -> DomainStats:
        return self.get(domain).stats

    def sync(self, domain: str, progress: Progress | None = None, full: bool = False) -> IndexUpdate:
        """Bring one domain's index up to date with its folder; `full` re-reads and re-embeds every file."""
        self.check_domain(domain)
        started = time.perf_counter()
        with self._lock_for(domain):
            previous = self._loaded.get(domain) or self._load_stored(domain)
            base = None if full else previous
            # A rebuild (forced, or because the stored index was made with other settings) continues the count.
            last_version = previous.stats.version if previous is not None else self._stored_version(domain)
            vectors = VectorSource(self._embedder, self.embedding_cache(), use_cache=not full)
            result = next_snapshot(self.config, domain, base, self._scan(domain), vectors, progress)
            if result is None:  # nothing changed since `base`
                assert base is not None
                self._loaded[domain] = base
                return IndexUpdate(domain, base.stats.version, passages=base.stats.passages)
            snapshot, update = result
            if update.rebuilt and last_version:
                version = last_version + 1
                snapshot = replace(snapshot, stats=replace(snapshot.stats, version=version))
                update = replace(update, version=version)
            self._save(snapshot)
            self._loaded[domain] = snapshot  # the swap: one reference assignment
        update = replace(update, seconds=time.perf_counter() - started)  # reading, embedding and writing
        log.info(
            "updated %s to v%d: +%d ~%d -%d files, %d embedded, %d reused, %.2fs",
            domain, update.version, update.added, update.changed, update.removed,
            update.embedded, update.reused, update.seconds,
        )  # fmt: skip
        return update

    def forget(self, domain: str) -> IndexUpdate:
        """Drop a domain whose folder is gone, from memory and from disk."""
        with self._lock_for(domain):
            dropped = self._loaded.pop(domain, None)
            self.index_path(domain).unlink(missing_ok=True)
        log.info("domain %s removed", domain)
        version = dropped.stats.version if dropped is not None else 0
        return IndexUpdate(domain, version, domain_removed=True)

    def known_domains(self) -> set[str]:
        """Domains with an index in memory or on disk (some may no longer have a folder)."""
        stored = {p.stem for p in (self.data_dir / "indexes").glob("*.npz")}
        return stored | set(self._loaded)

    def sync_all(self, progress: Callable[[str], Progress | None] | None = None) -> list[IndexUpdate]:
        """Sync every domain folder and forget the domains whose folder is gone."""
        names = self.domain_names()
        updates = [self.sync(name, progress(name) if progress else None) for name in names]
        updates.extend(self.forget(name) for name in sorted(self.known_domains() - set(names)))
        return updates

    # -- internals -----------------------------------------------------------------------------------
    def _lock_for(self, domain: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(domain, threading.Lock())

    def embedding_cache(self) -> EmbeddingCache:
        """The embedding cache under the data folder (one per knowledge base, shared by every domain)."""
        with self._locks_guard:
            if self._cache is None:
                self._cache = EmbeddingCache(self.cache_path(), self.config.embedding.model)
            return self._cache

    def _scan(self, domain: str) -> Scan:
        return {relative: (info.st_size, info.st_mtime_ns, path) for relative, path, info in self._walk(domain)}

    def _settings(self) -> dict[str, Any]:
        """Everything that changes the vectors or the passages; a stored index must match it exactly.
        The model is named by config, so checking a stored index never needs to load the model."""
        loading = asdict(self.config.loading)
        return {
            "format": INDEX_FORMAT,
            "embedding_model": self.config.embedding.model,
            "chunking": asdict(self.config.chunking),
            "loading": {key: list(value) if isinstance(value, tuple) else value for key, value in loading.items()},
        }

    def _save(self, snapshot: DomainIndex) -> None:
        stats = snapshot.stats
        meta = {
            "settings": self._settings(),
            "version": stats.version,
            "built_at": stats.built_at,
            "updated_at": stats.updated_at,
            "records": {rel: record.to_dict() for rel, record in snapshot.records.items()},
            "passages": [p.to_dict() for p in snapshot.space.passages.values()],
        }
        index = snapshot.space.index
        assert isinstance(index, FaissIndex)
        save_domain_index(self.index_path(stats.domain), index, meta)

    def _stored_version(self, domain: str) -> int:
        """The version of the stored index even if it cannot be used (other settings): 0 if there is none."""
        try:
            _, meta = load_domain_index(self.index_path(domain))
            return int(meta.get("version", 0))
        except (FileNotFoundError, IndexStoreError, TypeError, ValueError):
            return 0

    def _load_stored(self, domain: str) -> DomainIndex | None:
        path = self.index_path(domain)
        if path.parent.is_dir():
            remove_stale_temps(path.parent, time.time())
        try:
            index, meta = load_domain_index(path)
        except FileNotFoundError:
            return None
        except IndexStoreError as exc:
            log.warning("rebuilding %s: %s", domain, exc)
            return None
        if meta.get("settings") != self._settings():
            log.info("rebuilding %s: it was indexed with other model, chunking or loading settings", domain)
            return None
        try:
            records = {rel: FileRecord.from_dict(raw) for rel, raw in meta["records"].items()}
            passages = {p.id: p for p in (Passage.from_dict(raw) for raw in meta["passages"])}
            stats = DomainStats(
                domain=domain,
                files=tuple(sorted(rel for rel, rec in records.items() if rec.reason is None)),
                passages=len(passages),
                skipped=tuple(
                    SkippedFile(rel, rec.reason, rec.failed) for rel, rec in sorted(records.items()) if rec.reason
                ),
                built_at=float(meta["built_at"]),
                embedding_model=self.config.embedding.model,
                updated_at=float(meta["updated_at"]),
                version=int(meta["version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("rebuilding %s: stored index metadata is malformed (%s)", domain, exc)
            return None
        if len(index) != len(passages):
            log.warning("rebuilding %s: stored index has %d vectors for %d passages", domain, len(index), len(passages))
            return None
        # The lexical index is not stored: rebuilt from the passages (about 1 s for 14,000 on 2 cores), it cannot
        # disagree with them, and the BM25 settings can change without a re-embedding.
        retrieval = self.config.retrieval
        lexical = Bm25Index.build({i: p.text for i, p in passages.items()}, retrieval.bm25_k1, retrieval.bm25_b)
        return DomainIndex(stats, SearchSpace(domain, index, passages, lexical), records)
