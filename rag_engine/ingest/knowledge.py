"""The knowledge store: domains (subfolders of the knowledge folder), their current snapshots, persistence.

`sync(domain)` brings a domain's index up to date with its folder: it starts from the snapshot in memory
(else the stored one, if it was made with the same model and chunking settings), lets `incremental.py` apply
only what changed, stores the result all at once, then swaps it in with one reference assignment. Where
snapshots are stored is the `DomainStore`'s business (`store.py`: FAISS files, or PostgreSQL, by `[index]
backend`); with PostgreSQL the store also says when another process (the indexer) wrote a newer snapshot,
and a `read_only` knowledge base only ever reads the table, with no knowledge folder at all. Queries read
whatever snapshot is current and never wait for, or see, an update in progress. Syncs of one domain are
serialised; different domains do not block each other. Watching the folder for changes is `watcher.py`'s
job; this module only reacts when asked.

Listing the domains and walking a domain's folder go through the folder boundary (`folder.py`: nothing outside
the resolved knowledge folder is listed or read); this module logs, once each, what the boundary refused or
skipped, and a folder that cannot be listed fails the sync, keeping the last good index.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

from rag_engine.config import Config
from rag_engine.errors import IndexStoreError, KnowledgeFolderReadError, UnknownDomainError
from rag_engine.ingest.embed_cache import EmbeddingCache
from rag_engine.ingest.embedding import vector_backend
from rag_engine.ingest.folder import Scandir, Walk, domain_folders, walk_domain
from rag_engine.ingest.incremental import DomainIndex, Progress, VectorSource, next_snapshot
from rag_engine.ingest.store import DomainStore, NpzStore, StoreConflictError, npz_path
from rag_engine.records import DomainStats, IndexUpdate, SkippedFile
from rag_engine.seams import Embedder

log = logging.getLogger(__name__)

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
        self.store: DomainStore = open_store(config)
        # An answer process that only reads the store (`index.read_only`): the domains are the stored ones.
        self.read_only = config.index.read_only
        self.watched = False
        # How folders are listed: `os.scandir`. The seam tests use to make a folder fail as the OS would (root
        # reads folders that `chmod 000` closes to everyone else).
        self.scandir: Scandir = os.scandir
        self._embedder = embedder
        self._loaded: dict[str, DomainIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._cache: EmbeddingCache | None = None
        self._refused: dict[str, str] = {}
        # (where, reason) pairs already logged: a link that stays is reported once, not at every sync.
        self._announced: set[tuple[str, str]] = set()

    # -- domains -------------------------------------------------------------------------------------
    def domain_names(self) -> list[str]:
        """The domain folders: subfolders of the knowledge folder, neither hidden (`.x`) nor set aside (`_x`). A
        symlink counts only if it resolves to a folder inside the knowledge folder; the others are logged once
        and listed by `refused_domains`. Read-only: the domains the store holds."""
        if self.read_only:
            return sorted(self.store.domains())
        names, refused = domain_folders(self.root, self.scandir)
        self._refused = refused
        for name, reason in refused.items():
            self._announce(name, reason, "%s is not a domain: %s")
        return names

    def refused_domains(self) -> dict[str, str]:
        """Entries of the knowledge folder that look like domains but are not (links leading outside, nowhere or
        in a loop), with why, as of the last `domain_names`."""
        return dict(self._refused)

    def check_domain(self, domain: str) -> str:
        names = self.domain_names()
        if domain not in names:
            raise UnknownDomainError(domain, names)
        return domain

    def files(self, domain: str) -> Iterator[tuple[str, Path]]:
        """(relative posix path, absolute path) of every candidate file, hidden folders excluded."""
        for relative, where, _ in self._walk(domain).files:
            yield relative, where()

    def _walk(self, domain: str) -> Walk:
        """Candidate files with one `stat` each, and what was not followed (logged once each). Raises
        `KnowledgeFolderReadError` when a folder cannot be listed."""
        walk = walk_domain(self.root, domain, self.config.loading, self.scandir)
        for relative, reason in walk.skipped.items():
            self._announce(f"{domain}/{relative}", reason, "skipped %s: %s")
        return walk

    def _announce(self, where: str, reason: str, message: str) -> None:
        if (where, reason) not in self._announced:
            self._announced.add((where, reason))
            log.warning(message, where, reason)

    def index_path(self, domain: str) -> Path:
        """Where the FAISS store keeps the domain's index."""
        return npz_path(self.data_dir, domain)

    def cache_path(self) -> Path:
        return self.data_dir / "cache"

    # -- access --------------------------------------------------------------------------------------
    def get(self, domain: str, progress: Progress | None = None) -> DomainIndex:
        """The domain's current snapshot (synced first unless a watcher keeps it fresh; read-only: the newest
        stored one)."""
        self.check_domain(domain)
        current = self._loaded.get(domain)
        if current is not None and self.watched:
            return current
        if self.read_only:
            return self.latest(domain)
        try:
            self.sync(domain, progress)
        except (KnowledgeFolderReadError, IndexStoreError) as exc:
            # An unreadable folder or a full disk: answer from the last good index rather than not at all.
            kept = self._loaded.get(domain)
            if kept is None:
                raise
            log.warning("answering from v%d of %s, not up to date: %s", kept.stats.version, domain, exc)
            return kept
        return self._loaded[domain]

    def stats(self, domain: str) -> DomainStats:
        return self.get(domain).stats

    def sync(self, domain: str, progress: Progress | None = None, full: bool = False) -> IndexUpdate:
        """Bring one domain's index up to date with its folder; `full` re-reads and re-embeds every file."""
        self.check_domain(domain)
        if self.read_only:
            raise IndexStoreError(f"cannot index {domain}: this process only reads the index (index.read_only)")
        started = time.perf_counter()
        with self._lock_for(domain):
            try:
                update = self._sync(domain, progress, full)
            except StoreConflictError as exc:  # another writer was first: start again from what it stored
                log.warning("indexing %s again: %s", domain, exc)
                update = self._sync(domain, progress, full)
            if update is None:  # nothing changed
                stats = self._loaded[domain].stats
                return IndexUpdate(domain, stats.version, passages=stats.passages)
        update = replace(update, seconds=time.perf_counter() - started)  # reading, embedding and writing
        log.info(
            "updated %s to v%d: +%d ~%d -%d files, %d embedded, %d reused, %.2fs",
            domain, update.version, update.added, update.changed, update.removed,
            update.embedded, update.reused, update.seconds,
        )  # fmt: skip
        return update

    def _sync(self, domain: str, progress: Progress | None, full: bool) -> IndexUpdate | None:
        """One attempt of `sync`, under the domain's lock: the update stored and swapped in, or None when
        nothing changed since the current snapshot."""
        previous = self.store.current(domain, self._loaded.get(domain))
        if previous is not None:  # what queries get until a new snapshot is swapped in, even if this sync fails
            self._loaded[domain] = previous
        # A folder that cannot be listed raises here, before anything is read: the caller reports it, and
        # the previous snapshot stays (a partial listing would read as deleted files).
        walk = self._walk(domain)
        base = None if full else previous
        # A rebuild (forced, or because the stored index was made with other settings) continues the count.
        last_version = previous.stats.version if previous is not None else self.store.stored_version(domain)
        vectors = VectorSource(self._embedder, self.embedding_cache(), use_cache=not full)
        empty = partial(self.store.empty_index, domain)
        result = next_snapshot(self.config, domain, base, walk.scan(), vectors, progress, empty)
        if result is None:  # nothing changed since `base`
            assert base is not None
            self._loaded[domain] = _with_walk_skips(base, walk.skipped)
            return None
        snapshot, update = result
        if update.rebuilt and last_version:
            version = last_version + 1
            snapshot = replace(snapshot, stats=replace(snapshot.stats, version=version))
            update = replace(update, version=version)
        # A failed write (a full disk, a database gone) raises before the swap: the previous snapshot stays, in
        # memory and in the store, and `get` answers from it.
        self.store.save(snapshot)
        self._loaded[domain] = _with_walk_skips(snapshot, walk.skipped)  # the swap: one reference assignment
        return update

    def latest(self, domain: str) -> DomainIndex:
        """The newest stored snapshot, swapped in if it is newer than the one in memory (one revision check
        when it is not), even while a watcher keeps this one: what a read-only `get` is, and what a search
        whose snapshot another process replaced asks for. When the store cannot be read, the snapshot in
        memory answers, as a sync that fails leaves it."""
        with self._lock_for(domain):
            kept = self._loaded.get(domain)
            try:
                current = self.store.current(domain, kept)
            except IndexStoreError as exc:
                if kept is None:
                    raise
                log.warning("answering from v%d of %s, not up to date: %s", kept.stats.version, domain, exc)
                return kept
            if current is None:
                raise IndexStoreError(f"{domain} has no index made with these settings yet: the indexer makes it")
            self._loaded[domain] = current
            return current

    def forget(self, domain: str) -> IndexUpdate:
        """Drop a domain whose folder is gone, from memory and from the store."""
        with self._lock_for(domain):
            dropped = self._loaded.pop(domain, None)
            self.store.forget(domain)
        log.info("domain %s removed", domain)
        version = dropped.stats.version if dropped is not None else 0
        return IndexUpdate(domain, version, domain_removed=True)

    def known_domains(self) -> set[str]:
        """Domains with an index in memory or in the store (some may no longer have a folder)."""
        return self.store.domains() | set(self._loaded)

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
                embedding = self.config.embedding
                self._cache = EmbeddingCache(self.cache_path(), embedding.model, vector_backend(embedding))
            return self._cache


def open_store(config: Config) -> DomainStore:
    """The store `[index] backend` names; psycopg is imported only for "pgvector"."""
    if config.index.backend == "pgvector":
        from rag_engine.ingest.pg_store import PgStore

        return PgStore(config)
    return NpzStore(config)


def _with_walk_skips(snapshot: DomainIndex, skipped: dict[str, str]) -> DomainIndex:
    """The snapshot with the walk's skips (links and folders not followed) in its stats, beside the files' own.
    They describe the folder as it is now, not the index (nothing behind them was read), so they are not
    stored and bump no version: every sync walks again."""
    own = [entry for entry in snapshot.stats.skipped if entry.path in snapshot.records]
    listed = tuple(sorted([*own, *(SkippedFile(rel, reason) for rel, reason in skipped.items())], key=_by_path))
    if listed == snapshot.stats.skipped:
        return snapshot
    return replace(snapshot, stats=replace(snapshot.stats, skipped=listed))


def _by_path(entry: SkippedFile) -> str:
    return entry.path
