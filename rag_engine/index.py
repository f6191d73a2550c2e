"""The `VectorIndex` seam and its FAISS implementation, plus crash-safe persistence of one domain's index.

The index maps stable 63-bit passage ids to vectors and answers k-nearest-neighbour queries with the true
Euclidean distance (FAISS's flat L2 index returns squared distances; the square root is taken here, once).
What the passages say, and which files they came from, is stored beside the vectors by `save_domain_index`.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag_engine.errors import IndexStoreError

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    dimension: int

    def add(self, ids: Sequence[int] | Ids, vectors: Floats) -> None: ...

    def remove(self, ids: Sequence[int] | Ids) -> int: ...

    def search(self, queries: Floats, k: int) -> tuple[Floats, Ids]: ...

    def vectors(self, ids: Sequence[int] | Ids) -> Floats: ...

    def copy(self) -> VectorIndex: ...

    def __len__(self) -> int: ...

    def to_bytes(self) -> bytes: ...


class FaissIndex:
    """Exact search (IndexFlatL2) under an id map, so passages can be added and removed by id."""

    def __init__(self, dimension: int, _index: Any = None) -> None:
        import faiss

        self.dimension = dimension
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatL2(dimension))

    def add(self, ids: Sequence[int] | Ids, vectors: Floats) -> None:
        id_array = np.asarray(ids, dtype=np.int64)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension or len(id_array) != len(matrix):
            raise ValueError(f"expected {len(id_array)} vectors of dimension {self.dimension}, got {matrix.shape}")
        if len(id_array):
            self._index.add_with_ids(matrix, id_array)

    def remove(self, ids: Sequence[int] | Ids) -> int:
        import faiss

        id_array = np.asarray(ids, dtype=np.int64)
        if not len(id_array):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(id_array)))

    def search(self, queries: Floats, k: int) -> tuple[Floats, Ids]:
        """Nearest first. Returns (euclidean distances, ids), each [n_queries, min(k, len)]."""
        matrix = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        squared, ids = self._index.search(matrix, k)
        # Rounding can make a squared distance of identical vectors slightly negative.
        return np.sqrt(np.maximum(squared, 0.0)).astype(np.float32), ids.astype(np.int64)

    def vectors(self, ids: Sequence[int] | Ids) -> Floats:
        rows = [self._index.reconstruct(int(i)) for i in ids]
        if not rows:
            return np.zeros((0, self.dimension), np.float32)
        return np.vstack(rows).astype(np.float32)

    def copy(self) -> FaissIndex:
        """An independent copy: updates are applied to a copy while queries keep searching the original."""
        import faiss

        return FaissIndex(self.dimension, _index=faiss.clone_index(self._index))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def to_bytes(self) -> bytes:
        import faiss

        return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes) -> FaissIndex:
        import faiss

        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(int(index.d), _index=index)


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
