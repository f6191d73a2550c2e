"""The embedding cache: passage text → vector, on disk, so unchanged text is never embedded twice.

Keyed by the SHA-256 of the exact text the embedder saw, one folder per embedding model and backend (what
runs the model: torch, onnx, onnx-int8 with its kernels; `embedding.vector_backend`), so a vector is reused
across edits elsewhere in a file, renames, copies, other domains and restarts, and never by another backend.
Each `put` writes one new immutable segment file (temp file + `os.replace`, like every write of the project): a
process killed mid-write leaves at most a temp file behind, never a damaged segment, and several processes
(`ragscope watch` and `ragscope ask`) can add segments side by side; each picks up the others' segments on its
next lookup. When segments pile up they are merged into one. The cache is disposable: an unreadable segment is set
aside and its texts are simply embedded again. Choosing what to embed is the caller's job (`incremental.py`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rag_engine.ingest.storage import atomic_write_bytes, remove_stale_temps

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
SEGMENT_SUFFIX = ".npz"
# More segments than this are merged into one on the next write (each lookup lists the folder).
MAX_SEGMENTS = 32


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def model_folder_name(model: str) -> str:
    """A file-system-safe folder name for a model name or path, unique per model."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model)[:60]
    return f"{readable}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"


def cache_folder_name(model: str, backend: str) -> str:
    """The cache folder of one model run by one backend. torch keeps the model's own folder (the one every
    cache had before backends existed, so its vectors stay valid); another backend gets its own."""
    return model_folder_name(model if backend == "torch" else f"{model}@{backend}")


class EmbeddingCache:
    """Vectors of one embedding model run by one backend, looked up by text. Thread-safe."""

    def __init__(self, root: Path, model: str, backend: str = "torch") -> None:
        self.model = model
        self.backend = backend
        self.folder = root / cache_folder_name(model, backend)
        self._lock = threading.Lock()
        self._vectors: dict[bytes, Vector] = {}
        self._loaded: set[str] = set()

    def get(self, texts: Sequence[str], dimension: int | None = None) -> dict[int, Vector]:
        """Cached vectors by position in `texts`; a text that is missing (or of another dimension) is absent."""
        with self._lock:
            self._refresh()
            found: dict[int, Vector] = {}
            for position, text in enumerate(texts):
                vector = self._vectors.get(text_key(text))
                if vector is not None and (dimension is None or len(vector) == dimension):
                    found[position] = vector
            return found

    def put(self, texts: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Store one vector per text as a new segment (merging old segments when there are many)."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if not len(texts):
            return
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = [text_key(t) for t in texts]
        with self._lock:
            self._refresh()
            name = self._write_segment(keys, matrix)
            self._loaded.add(name)
            self._vectors.update(zip(keys, matrix, strict=True))
            if len(self._loaded) > MAX_SEGMENTS:
                self._merge()

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._vectors)

    # -- segments ------------------------------------------------------------------------------------
    def _segment_names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(n for n in os.listdir(self.folder) if n.endswith(SEGMENT_SUFFIX) and not n.startswith("."))

    def _refresh(self) -> None:
        """Load segments written since the last look (by this or another process)."""
        if not self._loaded and self.folder.is_dir():
            remove_stale_temps(self.folder, time.time())  # leftovers of a writer killed mid-segment
        for name in self._segment_names():
            if name in self._loaded:
                continue
            path = self.folder / name
            try:
                with np.load(path, allow_pickle=False) as segment:
                    keys, matrix = segment["keys"], segment["vectors"]
                if keys.ndim != 2 or keys.shape[1] != 32 or matrix.ndim != 2 or len(keys) != len(matrix):
                    raise ValueError(f"shapes {keys.shape} and {matrix.shape} do not fit")
            except FileNotFoundError:  # merged away by another process; its vectors are in the merged segment
                continue
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                log.warning("embedding cache segment %s is unreadable (%s); set aside", name, exc)
                path.replace(path.with_name(name + ".corrupt"))
                continue
            self._vectors.update(zip((bytes(k) for k in keys), matrix.astype(np.float32), strict=True))
            self._loaded.add(name)

    def _write_segment(self, keys: list[bytes], matrix: npt.NDArray[np.float32]) -> str:
        # Time first, so names sort by age; pid and a counter keep concurrent writers apart.
        name = f"{time.time_ns():020d}-{os.getpid()}-{len(self._loaded):05d}{SEGMENT_SUFFIX}"
        buffer = io.BytesIO()
        key_matrix = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        np.savez(buffer, keys=key_matrix, vectors=matrix)
        atomic_write_bytes(self.folder / name, buffer.getvalue())
        return name

    def _merge(self) -> None:
        """Write everything known as one segment, then delete the segments it replaces. A crash between the
        two leaves duplicates, never a loss."""
        merged_away = set(self._loaded)
        dimensions = {len(v) for v in self._vectors.values()}
        if len(dimensions) != 1:  # mixed dimensions (a model folder reused): keep the segments as they are
            return
        keys = list(self._vectors)
        name = self._write_segment(keys, np.vstack([self._vectors[k] for k in keys]))
        for old in merged_away:
            (self.folder / old).unlink(missing_ok=True)
        self._loaded = {name}
