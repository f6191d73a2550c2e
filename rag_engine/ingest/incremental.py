"""Incremental indexing: from the last snapshot of a domain and a scan of its folder, the next snapshot.

Only files whose size or mtime differ from the snapshot's record are read again; of those, only passages
whose text was never embedded by this model go through the embedder (the rest come from the embedding
cache); a removed file's passages are taken out by id. The new index is a copy of the old one with those
changes applied, and the lexical (BM25) index beside it takes the same changes (only the new passages are
analysed, and only the statistics of the terms they and the removed ones hold are remade: a few milliseconds
at 13,400 passages), so the old snapshot stays intact for the queries still using it. Where the snapshot is
kept, persisted and swapped is `knowledge.py`'s business.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_engine.config import Config
from rag_engine.errors import DocumentError, DocumentReadError, FileAccessError
from rag_engine.ingest.chunking import chunk
from rag_engine.ingest.embed_cache import EmbeddingCache
from rag_engine.ingest.loading import load_document
from rag_engine.records import DomainStats, IndexUpdate, Passage, SkippedFile
from rag_engine.safe_names import display_name
from rag_engine.seams import Embedder
from rag_engine.search.approximate import fitted
from rag_engine.search.index import FaissIndex, VectorIndex
from rag_engine.search.lexical import Bm25Index
from rag_engine.search.retrieval import SearchSpace

log = logging.getLogger(__name__)

# Texts handed to the embedder per call: large enough for its own length-sorted batching, small enough
# for a progress bar that moves.
EMBED_GROUP_SIZE = 256

Progress = Callable[[int, int], None]
# relative path -> (size, mtime_ns, where) of every candidate file in a domain folder; `where()` makes the
# file's path (checked against the folder's boundary each time it is opened) for the files a sync reads.
Scan = dict[str, tuple[int, int, Callable[[], Path]]]


@dataclass(frozen=True)
class FileRecord:
    """What the index knows of one file: the stat it was read at, its content hash and its passages, or why
    it is not indexed (`reason`; `failed` when it should have been readable)."""

    size: int
    mtime_ns: int
    content_hash: str = ""
    passage_ids: tuple[int, ...] = ()
    reason: str | None = None
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "content_hash": self.content_hash,
            "passage_ids": list(self.passage_ids),
            "reason": self.reason,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FileRecord:
        return cls(
            size=int(raw["size"]),
            mtime_ns=int(raw["mtime_ns"]),
            content_hash=str(raw["content_hash"]),
            passage_ids=tuple(int(i) for i in raw["passage_ids"]),
            reason=raw["reason"],
            failed=bool(raw["failed"]),
        )


@dataclass(frozen=True)
class DomainIndex:
    """An immutable snapshot of one domain: replaced as a whole, never mutated."""

    stats: DomainStats
    space: SearchSpace
    records: dict[str, FileRecord] = field(default_factory=dict)


@dataclass
class _Changes:
    """The passages to add and the ids to drop, and the per-file counts for the `IndexUpdate`."""

    records: dict[str, FileRecord]
    new_passages: dict[int, Passage] = field(default_factory=dict)
    old_ids: set[int] = field(default_factory=set)
    added: int = 0
    changed: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.skipped or self.failed)


def stale_files(records: dict[str, FileRecord], scan: Scan) -> tuple[list[str], list[str]]:
    """(files to read again: new or with another size/mtime, files gone from the folder)."""
    to_read = [
        rel
        for rel, (size, mtime_ns, _) in scan.items()
        if rel not in records or (records[rel].size, records[rel].mtime_ns) != (size, mtime_ns)
    ]
    gone = [rel for rel in records if rel not in scan]
    return to_read, gone


def _read_changes(
    config: Config, domain: str, base: dict[str, FileRecord], scan: Scan, to_read: list[str], gone: list[str]
) -> _Changes:
    changes = _Changes(records={rel: rec for rel, rec in base.items() if rel not in gone})
    for rel in gone:
        changes.old_ids.update(base[rel].passage_ids)
        changes.removed += base[rel].reason is None
    for rel in to_read:
        size, mtime_ns, where = scan[rel]
        path = where()
        prior = base.get(rel)
        was_indexed = prior is not None and prior.reason is None
        try:
            document = load_document(path, rel, config.loading)
            touched = prior is not None and was_indexed and prior.content_hash == document.content_hash
            passages = [] if touched else chunk(document, config.chunking)
        except DocumentError as exc:
            failed = isinstance(exc, DocumentReadError)
            if isinstance(exc, FileAccessError) and was_indexed and os.path.lexists(path):
                # An indexed file that turned unreadable (a chmod) keeps its last good passages, and its old
                # stamp, so that it is tried again at every sync until it can be read.
                assert prior is not None
                log.warning("failed %s/%s: %s (keeping its last good passages)", domain, display_name(rel), exc)
                continue
            _refuse(changes, domain, rel, FileRecord(size, mtime_ns, reason=str(exc), failed=failed), prior)
            continue
        except Exception as exc:  # the sync's boundary: one file's bug never stops the domain
            # Loading turns every parser error into a DocumentError; this is for a bug past it (chunking, say).
            log.exception("indexing %s/%s raised", domain, display_name(rel))
            reason = f"could not be indexed: {type(exc).__name__}"
            _refuse(changes, domain, rel, FileRecord(size, mtime_ns, reason=reason, failed=True), prior)
            continue
        if touched:
            assert prior is not None
            changes.records[rel] = replace(prior, size=size, mtime_ns=mtime_ns)  # touched, not changed
            continue
        changes.records[rel] = FileRecord(size, mtime_ns, document.content_hash, tuple(p.id for p in passages))
        changes.new_passages.update((p.id, p) for p in passages)
        if prior is not None:
            changes.old_ids.update(prior.passage_ids)
        if was_indexed:
            changes.changed += 1
        else:
            changes.added += 1
    return changes


def _refuse(changes: _Changes, domain: str, rel: str, record: FileRecord, prior: FileRecord | None) -> None:
    """Record a file that is not indexed (skipped, or failed) and take out what it had in the index."""
    log.warning("%s %s/%s: %s", "failed" if record.failed else "skipped", domain, display_name(rel), record.reason)
    changes.records[rel] = record
    if prior is None or prior.reason != record.reason:  # a file that keeps failing the same way is old news
        changes.failed += record.failed
        changes.skipped += not record.failed
    if prior is not None:
        changes.old_ids.update(prior.passage_ids)
        changes.changed += prior.reason is None


class VectorSource:
    """Vectors for passage texts: from the cache when this model embedded the text before, else embedded
    now (longest first, in groups) and written to the cache. Counts what it embedded and reused."""

    def __init__(self, embedder: Callable[[], Embedder], cache: EmbeddingCache | None, use_cache: bool) -> None:
        self._embedder = embedder
        self._cache = cache
        self._use_cache = use_cache
        self.embedded = 0
        self.reused = 0

    def vectors(self, texts: list[str], dimension: int | None, progress: Progress | None) -> npt.NDArray[np.float32]:
        found = self._cache.get(texts, dimension) if self._cache is not None and self._use_cache else {}
        self.reused += len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            embedder = self._embedder()
            dimension = embedder.dimension
        elif found:
            dimension = len(next(iter(found.values())))
        if dimension is None:
            raise ValueError("no dimension: nothing embedded and nothing indexed")
        matrix = np.zeros((len(texts), dimension), np.float32)
        for position, vector in found.items():
            matrix[position] = vector
        # Longest first, so each batch pads to similar lengths across groups (as one big encode call would);
        # the id map makes the insertion order irrelevant to search.
        missing.sort(key=lambda i: len(texts[i]), reverse=True)
        if progress:
            progress(0, len(missing))
        for start in range(0, len(missing), EMBED_GROUP_SIZE):
            group = missing[start : start + EMBED_GROUP_SIZE]
            group_texts = [texts[i] for i in group]
            group_vectors = embedder.embed(group_texts)
            matrix[group] = group_vectors
            self.embedded += len(group)
            self._remember(group_texts, group_vectors)
            if progress:
                progress(min(start + EMBED_GROUP_SIZE, len(missing)), len(missing))
        return matrix

    def dimension(self) -> int:
        """The model's dimension, for an index that starts empty (a domain with no readable file yet)."""
        return self._embedder().dimension

    def _remember(self, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
        if self._cache is None:
            return
        try:
            self._cache.put(texts, vectors)
        except OSError as exc:
            # The index is still right without the cache; only a later re-embedding is lost.
            log.warning("could not write the embedding cache: %s", exc)


def next_snapshot(
    config: Config,
    domain: str,
    base: DomainIndex | None,
    scan: Scan,
    vectors: VectorSource,
    progress: Progress | None = None,
    empty_index: Callable[[int], VectorIndex] = FaissIndex,
) -> tuple[DomainIndex, IndexUpdate] | None:
    """Apply the folder's changes since `base` (None: index everything). None when nothing changed at all.
    `empty_index(dimension)` makes the index of a domain indexed from nothing (the store's kind)."""
    started = time.perf_counter()
    base_records = base.records if base is not None else {}
    to_read, gone = stale_files(base_records, scan)
    if base is not None and not to_read and not gone:
        return None
    changes = _read_changes(config, domain, base_records, scan, to_read, gone)

    # An unchanged paragraph of a changed file keeps its id (same path, line and text): neither dropped nor added.
    keep_ids = {i for record in changes.records.values() for i in record.passage_ids}
    base_passages = base.space.passages if base is not None else {}
    drop_ids = {i for i in changes.old_ids if i in base_passages and i not in keep_ids}
    to_add = [p for i, p in changes.new_passages.items() if i not in base_passages]

    dimension = base.space.index.dimension if base is not None and len(base.space.index) else None
    matrix = vectors.vectors([p.text for p in to_add], dimension, progress) if to_add else None
    index: VectorIndex
    if base is not None and (len(base.space.index) or matrix is None):
        index = base.space.index.copy()
    else:  # nothing indexed yet: the dimension is the model's
        index = empty_index(matrix.shape[1] if matrix is not None else vectors.dimension())
    index.remove(sorted(drop_ids))
    if matrix is not None:
        index.add([p.id for p in to_add], matrix)
    # A domain that crossed `[index] approximate_above_passages` (either way) moves to the other kind of index.
    sized = fitted(index, config.index.approximate_above_passages)
    if sized is not index:
        log.info("%s: %d passages, now on an index of kind %s", domain, len(sized), getattr(sized, "kind", "?"))
        index = sized

    passages = {i: p for i, p in base_passages.items() if i not in drop_ids}
    passages.update((p.id, p) for p in to_add)
    # The lexical index takes exactly the same changes as the vector index, so both hold the same ids.
    added_texts = {p.id: p.text for p in to_add}
    retrieval = config.retrieval
    lexical = (
        base.space.lexical.updated(added_texts, drop_ids)
        if base is not None
        else Bm25Index.build(added_texts, retrieval.bm25_k1, retrieval.bm25_b)
    )
    now = time.time()
    previous = base.stats if base is not None else None
    # Only touched files (same content, new mtime): new records, same index, same version.
    bumped = previous is None or changes.any or bool(to_add or drop_ids)
    stats = DomainStats(
        domain=domain,
        files=tuple(sorted(rel for rel, rec in changes.records.items() if rec.reason is None)),
        passages=len(passages),
        skipped=tuple(
            SkippedFile(rel, rec.reason, rec.failed)
            for rel, rec in sorted(changes.records.items())
            if rec.reason is not None
        ),
        built_at=previous.built_at if previous is not None else now,
        embedding_model=config.embedding.model,
        updated_at=now if bumped or previous is None else previous.updated_at,
        version=(previous.version if previous is not None else 0) + bumped,
    )
    update = IndexUpdate(
        domain=domain,
        version=stats.version,
        added=changes.added,
        changed=changes.changed,
        removed=changes.removed,
        skipped=changes.skipped,
        failed=changes.failed,
        embedded=vectors.embedded,
        reused=vectors.reused,
        dropped=len(drop_ids),
        passages=len(passages),
        seconds=time.perf_counter() - started,
        rebuilt=base is None,
    )
    return DomainIndex(stats, SearchSpace(domain, index, passages, lexical), changes.records), update
