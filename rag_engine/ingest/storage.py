"""Crash-safe files: atomic writes (temp file, fsync, rename, fsync the folder), leftover temp files, and one
domain's stored index (its FAISS bytes and the JSON that says what each passage is) in a single file.

Not here: what goes into the metadata (`knowledge.py`) or the index itself (`search/index.py`).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.errors import IndexStoreError
from rag_engine.search.index import FaissIndex

TEMP_SUFFIX = ".tmp"
# A temp file this old is the leftover of a killed writer, not another process's write in progress.
STALE_TEMP_SECONDS = 600.0


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, `os.replace`, fsync the folder: a crash leaves the old
    file, and once this returns a power cut leaves the new one."""
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
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # The rename lives in the folder: until the folder is synced, a power cut can bring back the old name
    # (or neither), whatever the file's own fsync did.
    fsync_folder(path.parent)


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


def save_domain_index(path: Path, index: FaissIndex, meta: dict[str, Any]) -> None:
    """One file per domain (vectors + JSON metadata in an .npz), so one `os.replace` swaps all of it."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        faiss=np.frombuffer(index.to_bytes(), dtype=np.uint8),
        meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
    )
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:  # disk full, file too large, no permission: the previous index stays in place
        raise IndexStoreError(f"could not write {path.name}: {exc.strerror or exc}") from exc


def load_domain_index(path: Path) -> tuple[FaissIndex, dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            index = FaissIndex.from_bytes(archive["faiss"].tobytes())
            meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexStoreError(f"stored index {path.name} is unreadable: {exc}") from exc
    if not isinstance(meta, dict):
        raise IndexStoreError(f"stored index {path.name} has no metadata")
    return index, meta
