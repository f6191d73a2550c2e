"""The `VectorIndex` seam and its exact FAISS implementation (the approximate one, for big domains, is
`approximate.py`; the PostgreSQL one is `pgvector_index.py`).

The index maps stable 63-bit passage ids to vectors and answers k-nearest-neighbour queries with the true
Euclidean distance (FAISS's flat L2 index returns squared distances; the square root is taken here, once).
Writing an index to disk (atomically, beside what the passages say) is `ingest/storage.py`'s job; here an index
only turns itself into bytes and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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


class FaissIndex:
    """Exact search (IndexFlatL2) under an id map, so passages can be added and removed by id. A big domain's
    index is approximate instead (`approximate.py`)."""

    kind = "exact"

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
        return reconstructed(self._index, ids, self.dimension)

    def items(self) -> tuple[Ids, Floats]:
        """Every (id, vector) held, in insertion order: what a move to an approximate index starts from."""
        import faiss

        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if not len(ids):
            return ids, np.zeros((0, self.dimension), np.float32)
        return ids, np.asarray(self._index.index.reconstruct_n(0, len(ids)), dtype=np.float32)

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
        if not isinstance(index, faiss.IndexIDMap2):  # an approximate one: `approximate.index_from_bytes`
            raise ValueError(f"not an exact index: {type(index).__name__}")
        return cls(int(index.d), _index=index)


def reconstructed(faiss_index: Any, ids: Sequence[int] | Ids, dimension: int) -> Floats:
    """The stored vectors of `ids` (each must be held) from a FAISS index that maps ids to vectors, in one call
    into FAISS: a search asks for ~200 of them, and a Python loop of `reconstruct` cost milliseconds."""
    wanted = np.asarray(ids, np.int64)
    if not len(wanted):
        return np.zeros((0, dimension), np.float32)
    return np.asarray(faiss_index.reconstruct_batch(wanted), np.float32).reshape(len(wanted), dimension)
