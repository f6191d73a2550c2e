"""The FAISS store's files for one domain, as a base and a journal of updates: `Journal`.

The base, `indexes/<domain>.npz`, is a whole snapshot (the FAISS bytes, the metadata with every passage, and the
lexical statistics, so that loading analyses nothing), written with `os.replace`. Each later update writes only
what changed since the snapshot on disk, to `<domain>.npz.<generation>.<seq>.update`: the new and changed file
records, the added passages with their vectors and analysed terms, the removed ids, the version and times. An
update file is created once (a hard link, never a rename over another file) and its name says which base
(generation) and which place in the chain (seq) it has; its JSON also names the update before it (`parent`),
so a load applies exactly the chain 1, 2, … that belongs to the base it read and refuses anything else.

Crash safety: every file appears all at once (temp file, fsync, link or rename, fsync the folder), and a
snapshot is the base plus the chain of its generation: a crash leaves the old chain or the one with the new
update, a base replaced by a new generation leaves the old generation's updates unread, and they are deleted
(newest first, so a reader listing meanwhile still sees a prefix of the chain) only after the new base is in
place. When the journal grows past `MAX_UPDATES` files or `JOURNAL_SHARE` of the base's size, the next save
writes a new base instead (compaction), and so does a rebuild. One process owns the files (as before); if a
write finds that another process wrote meanwhile (the base changed, or its update file already exists) it raises
`JournalConflictError` and forgets what it knew, so that the sync starts again from the files.

Not here: what a snapshot is (`incremental.py`), the settings check and the `DomainStore` seam (`store.py`), the
file format of one file (`storage.py`).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.errors import IndexStoreError
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.ingest.storage import (
    Serialisable,
    load_domain_file,
    load_domain_update,
    save_domain_index,
    save_domain_update,
)
from rag_engine.records import Passage
from rag_engine.search.approximate import layout
from rag_engine.search.index import VectorIndex
from rag_engine.search.lexical import ANALYZER, Bm25Index

log = logging.getLogger(__name__)

# Compaction: after this many update files, or once they add up to this share of the base's size (plus a slack,
# so that a small domain, whose base costs little to write anyway, still keeps a journal), the next save writes
# a new base. Loading reads every update file, so their number bounds what a load pays extra.
MAX_UPDATES = 64
JOURNAL_SHARE = 0.25
JOURNAL_SLACK_BYTES = 1 << 20
UPDATE_NAME = re.compile(r"(?P<generation>[0-9a-f]{16})\.(?P<seq>[0-9]{6,})\.update")
# Prefixed to the lexical statistics' array names in the base file.
LEXICAL_PREFIX = "lexical."

Signature = tuple[int, int, int]


class JournalConflictError(IndexStoreError):
    """Another process wrote the domain's files since this one read them (`store.py` reports it as a
    `StoreConflictError`, which starts the sync again from the files)."""


@dataclass(frozen=True)
class Head:
    """What this process knows is on disk for a domain: the base (its generation, size and stat signature),
    the last update of the chain (its seq and token), and the snapshot they hold."""

    generation: str
    seq: int
    token: str
    signature: Signature
    base_bytes: int
    journal_bytes: int
    snapshot: DomainIndex


@dataclass(frozen=True)
class Stored:
    """A domain as its files hold it, the updates applied: `store.py` makes the snapshot of it (`adopt`)."""

    meta: dict[str, Any]
    passages: dict[int, Passage]
    index: VectorIndex
    lexical: Bm25Index | None
    generation: str
    seq: int
    token: str
    signature: Signature
    base_bytes: int
    journal_bytes: int


def update_path(folder: Path, domain: str, generation: str, seq: int) -> Path:
    return folder / f"{domain}.npz.{generation}.{seq:06d}.update"


def update_files(folder: Path, domain: str) -> list[tuple[str, int, Path]]:
    """(generation, seq, path) of the domain's update files, in name order."""
    prefix = f"{domain}.npz."
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith(prefix) and (match := UPDATE_NAME.fullmatch(entry.name[len(prefix) :])):
            found.append((match["generation"], int(match["seq"]), Path(entry.path)))
    return sorted(found)


def _signature(path: Path) -> Signature:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class Journal:
    """Reads and writes the base-and-updates files of the domains under `folder` (see the module docstring)."""

    def __init__(self, folder: Path, k1: float, b: float) -> None:
        self.folder = folder
        self.k1 = k1
        self.b = b
        self._heads: dict[str, Head] = {}

    def base_path(self, domain: str) -> Path:
        return self.folder / f"{domain}.npz"

    def knows(self, domain: str) -> bool:
        """Whether this process knows what the files of the domain hold (it read or wrote them last)."""
        return domain in self._heads

    def adopt(self, stored: Stored, snapshot: DomainIndex) -> None:
        """`snapshot` (made of `stored`) is what the files hold: the next save writes only what differs."""
        self._heads[snapshot.stats.domain] = Head(
            stored.generation, stored.seq, stored.token, stored.signature, stored.base_bytes,
            stored.journal_bytes, snapshot,
        )  # fmt: skip

    # -- reading ------------------------------------------------------------------------------------------------
    def load(self, domain: str, settings: dict[str, Any]) -> Stored | None:
        """The domain with its updates applied; None when its base was made with other `settings`.
        `FileNotFoundError` when there is no base, `IndexStoreError` when the files are damaged or the chain of
        updates is broken, ValueError/KeyError/TypeError when the metadata is malformed."""
        path = self.base_path(domain)
        signature = _signature(path)
        base = load_domain_file(path)
        if base.meta.get("settings") != settings:
            return None
        generation = str(base.meta.get("journal", {}).get("generation", ""))
        chain = self._chain(domain, generation)
        passages = {p.id: p for p in (Passage.from_dict(raw) for raw in base.meta["passages"])}
        if len(base.index) != len(passages):
            raise IndexStoreError(f"stored index has {len(base.index)} vectors for {len(passages)} passages")
        meta = {key: value for key, value in base.meta.items() if key != "passages"}
        records = dict(meta["records"])
        current = dict(passages)
        vectors: dict[int, np.ndarray[Any, Any]] = {}
        counts: dict[int, dict[str, int] | None] = {}
        journal_bytes = 0
        token = generation
        for update, ids, rows, size in chain:
            journal_bytes += size
            token = str(update["token"])
            for passage_id in update["removed"]:
                current.pop(int(passage_id), None)
            added = [Passage.from_dict(raw) for raw in update["passages"]]
            terms = update.get("terms") if update.get("analyzer") == ANALYZER else None
            if [p.id for p in added] != ids.tolist() or (terms is not None and len(terms) != len(added)):
                raise IndexStoreError(f"a stored update of {domain} does not match its vectors")
            for n, passage in enumerate(added):
                current[passage.id] = passage
                vectors[passage.id] = rows[n]
                counts[passage.id] = {str(t): int(c) for t, c in terms[n].items()} if terms is not None else None
            records.update(update["records"])
            for rel in update["records_removed"]:
                records.pop(rel, None)
            meta.update(version=update["version"], built_at=update["built_at"], updated_at=update["updated_at"])
        meta["records"] = records
        # The net change from the base, applied once: FAISS removes by rewriting its arrays, once per call.
        gone = sorted(passages.keys() - current.keys())
        new = [i for i in current if i not in passages]
        index = base.index
        index.remove(gone)
        if new:
            index.add(new, np.stack([vectors[i] for i in new]))
        lexical = self._lexical(base.meta, base.arrays)
        if lexical is not None and (len(lexical) != len(passages) or lexical.ids() != passages.keys()):
            log.warning("analysing the passages of %s again: the stored lexical statistics hold other ids", domain)
            lexical = None
        if lexical is not None:
            if any(counts[i] is None for i in new):
                lexical = None  # an update made by another analyzer: analyse every passage again
            else:
                lexical = lexical.with_counts({i: counts[i] or {} for i in new}, gone)
        return Stored(
            meta, current, index, lexical, generation, len(chain), token, signature, signature[1], journal_bytes
        )

    def _lexical(self, meta: dict[str, Any], arrays: dict[str, Any]) -> Bm25Index | None:
        """The stored lexical statistics, or None when there are none of this analyzer's (or they are damaged:
        then the passages are analysed again, which needs no rebuild)."""
        if meta.get("lexical", {}).get("analyzer") != ANALYZER:
            return None
        named = {key[len(LEXICAL_PREFIX) :]: a for key, a in arrays.items() if key.startswith(LEXICAL_PREFIX)}
        try:
            return Bm25Index.from_arrays(named, self.k1, self.b)
        except (KeyError, ValueError) as exc:
            log.warning("analysing the passages again: the stored lexical statistics are damaged (%s)", exc)
            return None

    def _chain(self, domain: str, generation: str) -> list[tuple[dict[str, Any], Any, Any, int]]:
        """The base's updates in order: 1, 2, … each naming the one before; `IndexStoreError` otherwise."""
        chain = []
        token = generation
        for seq, (_, number, path) in enumerate(
            (f for f in update_files(self.folder, domain) if f[0] == generation), start=1
        ):
            try:
                update, ids, rows = load_domain_update(path)
                size = path.stat().st_size
            except FileNotFoundError:
                break  # deleted by a writer that compacted meanwhile (newest first): what came before stands
            if number != seq or update.get("parent") != token or update.get("generation") != generation:
                raise IndexStoreError(f"the stored updates of {domain} do not follow one another at {path.name}")
            token = str(update.get("token"))
            chain.append((update, ids, rows, size))
        return chain

    def stored_version(self, domain: str) -> int:
        """The version the files hold (the base's, or its last update's), whatever settings made them."""
        base = load_domain_file(self.base_path(domain))
        version = int(base.meta.get("version", 0))
        generation = str(base.meta.get("journal", {}).get("generation", ""))
        for update, _, _, _ in self._chain(domain, generation):
            version = max(version, int(update["version"]))
        return version

    # -- writing ------------------------------------------------------------------------------------------------
    def save(self, snapshot: DomainIndex, meta: Callable[[], dict[str, Any]]) -> None:
        """Store the snapshot: as an update of the files when this process knows what they hold and the
        journal is still short, else as a new base, whose metadata `meta()` makes (`store.snapshot_meta`: an
        update needs only the changed files' records). `IndexStoreError` when it cannot be written,
        `JournalConflictError` when another process wrote meanwhile."""
        domain = snapshot.stats.domain
        head = self._heads.get(domain)
        if (
            head is None
            or head.snapshot.stats.built_at != snapshot.stats.built_at  # rebuilt: every vector is new
            # Moved to the other kind of index, or retrained (`approximate.fitted`): the base holds the old one.
            or layout(head.snapshot.space.index) != layout(snapshot.space.index)
            or head.seq >= MAX_UPDATES
            or head.journal_bytes > JOURNAL_SHARE * head.base_bytes + JOURNAL_SLACK_BYTES
        ):
            self._write_base(snapshot, meta())
        else:
            self._append(head, snapshot)

    def _write_base(self, snapshot: DomainIndex, meta: dict[str, Any]) -> None:
        domain = snapshot.stats.domain
        index = snapshot.space.index
        if not isinstance(index, Serialisable):
            raise TypeError(f"a {type(index).__name__} cannot be stored in a file")
        generation = secrets.token_hex(8)
        meta = {**meta, "passages": [p.to_dict() for p in snapshot.space.passages.values()]}
        meta["journal"] = {"generation": generation}
        arrays = {}
        lexical = snapshot.space.lexical
        if isinstance(lexical, Bm25Index):
            meta["lexical"] = {"analyzer": ANALYZER}
            arrays = {LEXICAL_PREFIX + key: array for key, array in lexical.to_arrays().items()}
        path = self.base_path(domain)
        self._heads.pop(domain, None)  # until the write is known to have landed
        size = save_domain_index(path, index, meta, arrays)
        self._heads[domain] = Head(generation, 0, generation, _signature(path), size, 0, snapshot)
        self._remove_updates(domain, keep=generation)

    def _append(self, head: Head, snapshot: DomainIndex) -> None:
        domain = snapshot.stats.domain
        path = self.base_path(domain)
        try:
            replaced = _signature(path) != head.signature
        except FileNotFoundError:
            replaced = True
        if replaced:
            self._heads.pop(domain, None)
            raise JournalConflictError(f"{path.name} was replaced by another process since this one read it")
        change, ids, vectors = _change(head.snapshot, snapshot)
        token = secrets.token_hex(8)
        change.update(generation=head.generation, seq=head.seq + 1, parent=head.token, token=token)
        target = update_path(self.folder, domain, head.generation, head.seq + 1)
        try:
            size = save_domain_update(target, change, ids, vectors)
        except FileExistsError:
            self._heads.pop(domain, None)
            raise JournalConflictError(f"{target.name} was written by another process") from None
        except IndexStoreError:
            # The update may have landed before the error (a failed folder sync): the files are read again.
            self._heads.pop(domain, None)
            raise
        self._heads[domain] = replace(
            head, seq=head.seq + 1, token=token, journal_bytes=head.journal_bytes + size, snapshot=snapshot
        )

    def forget(self, domain: str) -> None:
        """Delete the domain's files: the base first, so that no snapshot is left half-deleted."""
        self._heads.pop(domain, None)
        self.base_path(domain).unlink(missing_ok=True)
        self._remove_updates(domain, keep=None)

    def _remove_updates(self, domain: str, keep: str | None) -> None:
        """Delete the update files of other generations than `keep`, newest first (see the module docstring).
        One that cannot be deleted is left: no load reads it, and the next new base tries again."""
        for generation, _, path in reversed(update_files(self.folder, domain)):
            if generation == keep:
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not delete the old update file %s: %s", path.name, exc)


def _change(
    before: DomainIndex, after: DomainIndex
) -> tuple[dict[str, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """What an update file holds to turn `before` into `after`: (JSON, ids, vectors of the added passages). An
    id always stands for the same passage (its path, line and text), so comparing ids finds every change."""
    old, new = before.space.passages, after.space.passages
    added = [i for i in new if i not in old]
    removed = sorted(i for i in old if i not in new)
    old_records = before.records
    records = {
        rel: record.to_dict()
        for rel, record in after.records.items()
        if (previous := old_records.get(rel)) is not record and previous != record
    }
    change: dict[str, Any] = {
        "version": after.stats.version,
        "built_at": after.stats.built_at,
        "updated_at": after.stats.updated_at,
        "records": records,
        "records_removed": sorted(rel for rel in old_records if rel not in after.records),
        "passages": [new[i].to_dict() for i in added],
        "removed": removed,
    }
    lexical = after.space.lexical
    if isinstance(lexical, Bm25Index):
        change["analyzer"] = ANALYZER
        change["terms"] = [lexical.counts(i) for i in added]
    ids = np.asarray(added, np.int64)
    index = after.space.index
    vectors = index.vectors(added) if added else np.zeros((0, index.dimension), np.float32)
    return change, ids, vectors
