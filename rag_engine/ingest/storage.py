"""Crash-safe files: atomic writes (temp file, fsync, rename or link, fsync the folder), leftover temp files,
one domain's stored index (its FAISS bytes, the JSON that says what each passage is, and named arrays such as
the lexical statistics) in a single file, and the small update files written after it (the JSON of the change
and the new passages' vectors), each created once and never overwritten.

Not here: what goes into the metadata and which update files make a snapshot (`store.py`, `journal.py`), or
the index itself (`search/index.py`).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag_engine.errors import IndexStoreError
from rag_engine.search.approximate import StorableIndex, index_from_bytes

TEMP_SUFFIX = ".tmp"
# A temp file this old is the leftover of a killed writer, not another process's write in progress.
STALE_TEMP_SECONDS = 600.0


def atomic_write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write to a temp file in the same folder, fsync, `os.replace`, fsync the folder: a crash leaves the old
    file, and once this returns a power cut leaves the new one. `exclusive`: the file must not exist yet (it is
    hard-linked into place instead of renamed; `FileExistsError` if another writer made it first)."""
    created = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    if created:  # the new folder's own entry must survive too
        fsync_folder(path.parent.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            _link_new(tmp_name, path)
        else:
            os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # The rename lives in the folder: until the folder is synced, a power cut can bring back the old name
    # (or neither), whatever the file's own fsync did.
    fsync_folder(path.parent)


def _link_new(tmp_name: str, path: Path) -> None:
    """Put the temp file in place as `path`, which must not exist yet: a hard link is atomic and, unlike a
    rename, never replaces a file already there. Where hard links are not supported (some FUSE and network
    file systems), a rename after a check for the file (two writers may then both succeed; the last one wins)."""
    try:
        os.link(tmp_name, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from exc
        os.replace(tmp_name, path)
        return
    os.unlink(tmp_name)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames, new files) to disk. A file system that cannot sync a folder
    (EINVAL: some network and FUSE ones) is left as it is; any other failure is the caller's."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path, now: float) -> int:
    """Delete temp files left by writers that were killed before their `os.replace`."""
    removed = 0
    for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
        try:
            if now - leftover.stat().st_mtime > STALE_TEMP_SECONDS:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


Arrays = Mapping[str, npt.NDArray[Any]]


@runtime_checkable
class Serialisable(Protocol):
    """An index that turns itself into bytes (its class reads them back): what a domain's index file stores."""

    def to_bytes(self) -> bytes: ...


# Keys of the stored index file that are not named arrays of the caller's.
_OWN_KEYS = ("faiss", "meta")


@dataclass(frozen=True)
class StoredIndex:
    """One domain's stored index file as read back: the vectors, the metadata, and the named arrays."""

    index: StorableIndex
    meta: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def save_domain_index(path: Path, index: Serialisable, meta: dict[str, Any], arrays: Arrays | None = None) -> int:
    """One file per domain (vectors + JSON metadata + `arrays` in an .npz), so one `os.replace` swaps all of
    it. Returns its size in bytes."""
    entries: dict[str, Any] = dict(arrays or {})
    if clash := set(entries) & set(_OWN_KEYS):
        raise ValueError(f"array names {sorted(clash)} are the file's own")
    entries["faiss"] = np.frombuffer(index.to_bytes(), dtype=np.uint8)
    entries["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:  # disk full, file too large, no permission: the previous index stays in place
        raise IndexStoreError(f"could not write {path.name}: {exc.strerror or exc}") from exc
    return buffer.tell()


def load_domain_index(path: Path) -> tuple[StorableIndex, dict[str, Any]]:
    stored = load_domain_file(path)
    return stored.index, stored.meta


def load_domain_file(path: Path) -> StoredIndex:
    """The stored index file; `IndexStoreError` when it is damaged, `FileNotFoundError` when there is none."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Exact or approximate: FAISS's own header in the bytes says which (`approximate.index_from_bytes`).
            index = index_from_bytes(archive["faiss"].tobytes())
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            arrays = {key: archive[key] for key in archive.files if key not in _OWN_KEYS}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexStoreError(f"stored index {path.name} is unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise IndexStoreError(f"stored index {path.name} has no metadata")
    return StoredIndex(index, meta, arrays)


def save_domain_update(path: Path, meta: dict[str, Any], ids: npt.NDArray[np.int64], vectors: npt.NDArray[Any]) -> int:
    """One update file after a domain's stored index: the change (JSON) and the new passages' vectors. It is
    created, never replaced: `FileExistsError` when that file exists already (another writer's), and
    `IndexStoreError` when it cannot be written. Returns its size in bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), ids=ids, vectors=vectors)
    try:
        atomic_write_bytes(path, buffer.getvalue(), exclusive=True)
    except FileExistsError:
        raise
    except OSError as exc:
        # Named by the domain's index, which the update belongs to: what a user can look for on disk.
        name = path.name.split(".npz.", 1)[0] + ".npz"
        raise IndexStoreError(f"could not write {name}: {exc.strerror or exc}") from exc
    return buffer.tell()


def load_domain_update(path: Path) -> tuple[dict[str, Any], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(change, ids, vectors) of one update file; `IndexStoreError` when damaged, `FileNotFoundError` if gone."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
            ids = np.asarray(archive["ids"], np.int64)
            vectors = np.asarray(archive["vectors"], np.float32)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexStoreError(f"stored update {path.name} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or vectors.ndim != 2 or len(ids) != len(vectors):
        raise IndexStoreError(f"stored update {path.name} is malformed")
    return meta, ids, vectors
