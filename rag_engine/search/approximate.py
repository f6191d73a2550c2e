"""Approximate search for big domains: `IvfIndex` (FAISS IndexIVFFlat), and when a domain's index is exact or
approximate (`fitted`).

A domain below `[index] approximate_above_passages` keeps the exact `FaissIndex` (index.py). At or above it, its
vectors move to an inverted-file index: k-means splits the space into about 4·√n lists, a query scans only the
lists nearest to it, and the vectors are stored as they are (flat), so the hits found carry their exact squared
distance (the square root is taken once, as `FaissIndex` does). A hashtable direct map lets it remove and
reconstruct by passage id, so updates work as on the exact index. Why IVF and not HNSW, measured on the same
embedding-like vectors (benchmarks/bench_ann.py, 2 cores): at 1M passages IVF builds in 123 s against HNSW's
383 s (M=32, efConstruction=40) and reaches recall@10 0.994 at 4.3 ms per question, where HNSW stops at 0.987
(efSearch 512, 3.0 ms); at 100k both reach 0.99 under 1 ms. And FAISS's HNSW cannot remove: deletions would be
tombstones, and compacting them a rebuild of the whole graph (those 383 s), while IVF removes 1,000 ids in 2 ms.

The lists are trained on the domain's own vectors when it crosses the threshold, and trained again when the
domain has grown so much that it should have twice the lists (4× the passages); a domain falls back to exact below
half the threshold, so one that hovers around it does not switch at every update.

Not here: the exact index and the `VectorIndex` seam (index.py), where indexes are stored (ingest/storage.py).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag_engine.search.index import FaissIndex, Floats, Ids, VectorIndex, reconstructed

# Lists ≈ LISTS_PER_ROOT · √passages: FAISS's guidance for IVF is 4·√n to 16·√n; the low end trains fastest (the
# share of the passages a query must scan for a given recall hardly depends on how finely they are split).
LISTS_PER_ROOT = 4
# k-means needs this many training points per list (FAISS warns below 39) ...
MIN_POINTS_PER_LIST = 39
# ... and is trained on at most this many per list (a sample: more costs time and barely moves the centroids) ...
TRAIN_POINTS_PER_LIST = 64
# ... for this many iterations.
TRAIN_ITERATIONS = 10
# A query scans this share of the lists, and at least MIN_PROBES: recall@10 ≥ 0.99 at 100k and 1M passages of
# embedding-like vectors (0.992 and 0.994; 1/32 gave 0.983 and 0.988; benchmarks/results/bench_ann.json).
PROBE_SHARE = 1 / 20
MIN_PROBES = 16
# One question is searched on one thread (FAISS's default parallel_mode 0 splits only a batch's queries). Sharing
# its lists among both cores (parallel_mode 2) took ~35% off on an idle machine, but with another process busy
# (the generator, the embedder, another question) a thread waiting at the barrier for a descheduled one made
# single searches take 20 ms instead of 1: not worth it on a machine that also runs the model.
# An approximate domain goes back to exact below this share of the threshold (hysteresis).
EXACT_BELOW_SHARE = 0.5
# Trained again when the lists wanted for its size are this many times more than it has.
RETRAIN_LIST_RATIO = 2.0
# The sample of vectors the lists are trained on is drawn with this seed, so a rebuild makes the same index.
TRAIN_SEED = 0


def lists_for(passages: int) -> int:
    """How many lists an IVF index of this many passages has."""
    wanted = round(LISTS_PER_ROOT * math.sqrt(passages))
    return max(1, min(wanted, passages // MIN_POINTS_PER_LIST))


def probes_for(lists: int) -> int:
    """How many lists a query scans."""
    return min(lists, max(MIN_PROBES, math.ceil(lists * PROBE_SHARE)))


class IvfIndex:
    """Approximate search (IndexIVFFlat: inverted lists of flat vectors) with add, remove and reconstruct by id."""

    kind = "ivf"

    def __init__(self, dimension: int, _index: Any, _layout: str | None = None) -> None:
        self.dimension = dimension
        self._index = _index
        self._layout = _layout if _layout is not None else _centroids_layout(_index)

    @classmethod
    def build(cls, ids: Sequence[int] | Ids, vectors: Floats) -> IvfIndex:
        """Train the lists on (a seeded sample of) these vectors, then add them all."""
        import faiss

        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or not len(matrix):
            raise ValueError("an IVF index is trained on at least one vector")
        count, dimension = matrix.shape
        lists = lists_for(count)
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dimension), dimension, lists, faiss.METRIC_L2)
        index.cp.niter = TRAIN_ITERATIONS
        # The sample is ours (seeded), so FAISS must not subsample it again with its own random draw.
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        # `lists_for` keeps 39 points per list where the domain has them; a smaller one needs no warning.
        index.cp.min_points_per_centroid = 1
        sample_size = min(count, lists * TRAIN_POINTS_PER_LIST)
        if sample_size < count:
            rows = np.sort(np.random.default_rng(TRAIN_SEED).choice(count, sample_size, replace=False))
            index.train(matrix[rows])
        else:
            index.train(matrix)
        # A hashtable, not an array: passage ids are arbitrary 63-bit numbers, and removal must find them.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # not in faiss's stubs
        index.nprobe = probes_for(lists)
        built = cls(dimension, _index=index)
        built.add(ids, matrix)
        return built

    @property
    def lists(self) -> int:
        return int(self._index.nlist)

    @property
    def probes(self) -> int:
        """How many lists a query scans (`probes_for`; stored with the index)."""
        return int(self._index.nprobe)

    @probes.setter
    def probes(self, probes: int) -> None:
        if not 1 <= probes <= self.lists:
            raise ValueError(f"probes must be between 1 and {self.lists}")
        self._index.nprobe = probes

    @property
    def layout(self) -> str:
        """Names the trained lists (a hash of the centroids, which adding and removing never change): an update
        that retrains changes it."""
        return self._layout

    def add(self, ids: Sequence[int] | Ids, vectors: Floats) -> None:
        id_array = np.asarray(ids, dtype=np.int64)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension or len(id_array) != len(matrix):
            raise ValueError(f"expected {len(id_array)} vectors of dimension {self.dimension}, got {matrix.shape}")
        if len(id_array):
            self._index.add_with_ids(matrix, id_array)

    def remove(self, ids: Sequence[int] | Ids) -> int:
        import faiss

        # Duplicates would be counted once by FAISS anyway; unique ids keep the selector small.
        id_array = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(id_array):
            return 0
        # The hashtable direct map only removes through an IDSelectorArray (it looks each id up).
        selector = faiss.IDSelectorArray(len(id_array), faiss.swig_ptr(id_array))
        return int(self._index.remove_ids(selector))

    def search(self, queries: Floats, k: int) -> tuple[Floats, Ids]:
        """Nearest first. Returns (euclidean distances, ids), each [n_queries, min(k, len)]; when the lists
        scanned hold fewer than k passages, the row ends in ids -1 at distance infinity."""
        matrix = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        squared, ids = self._index.search(matrix, k)
        distances = np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
        distances[ids < 0] = np.inf
        return distances, ids.astype(np.int64)

    def vectors(self, ids: Sequence[int] | Ids) -> Floats:
        return reconstructed(self._index, ids, self.dimension)

    def items(self) -> tuple[Ids, Floats]:
        """Every (id, vector) held, list by list: what a retraining or a move back to exact starts from."""
        import faiss

        invlists = self._index.invlists
        id_parts, vector_parts = [], []
        for number in range(self.lists):
            size = int(invlists.list_size(number))
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(invlists.get_ids(number), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(number), size * self._index.code_size).copy()
            vector_parts.append(codes.view(np.float32).reshape(size, self.dimension))
        if not id_parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        return np.concatenate(id_parts).astype(np.int64), np.vstack(vector_parts)

    def copy(self) -> IvfIndex:
        """An independent copy: updates are applied to a copy while queries keep searching the original."""
        import faiss

        return IvfIndex(self.dimension, _index=faiss.clone_index(self._index), _layout=self._layout)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def to_bytes(self) -> bytes:
        """FAISS's own serialisation: its header names the class ("IwFl"), the lists, the direct map and nprobe."""
        import faiss

        return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes) -> IvfIndex:
        loaded = index_from_bytes(data)
        if not isinstance(loaded, IvfIndex):
            raise ValueError(f"not an IVF index: {type(loaded).__name__}")
        return loaded


def _centroids_layout(index: Any) -> str:
    centroids = index.quantizer.reconstruct_n(0, int(index.nlist))
    digest = hashlib.sha256(np.ascontiguousarray(centroids, dtype=np.float32).tobytes()).hexdigest()
    return f"ivf-{int(index.nlist)}-{digest[:16]}"


# What a domain's index file holds: the FAISS kinds (the pgvector index lives in PostgreSQL).
StorableIndex = FaissIndex | IvfIndex


def index_from_bytes(data: bytes) -> StorableIndex:
    """The index `to_bytes` made, of whichever kind it is: FAISS's header says which (exact, or IVF). A file
    written before approximate indexes existed holds an exact index and loads as one. ValueError or RuntimeError
    when the bytes are no index of a domain."""
    import faiss

    index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    if isinstance(index, faiss.IndexIVFFlat):
        if index.direct_map.type != faiss.DirectMap.Hashtable:  # type: ignore[attr-defined]
            raise ValueError("an IVF index without its id hashtable cannot remove or reconstruct by id")
        return IvfIndex(int(index.d), _index=index)
    if isinstance(index, faiss.IndexIDMap2):
        return FaissIndex(int(index.d), _index=index)
    raise ValueError(f"not an index of a domain: {type(index).__name__}")


def layout(index: VectorIndex) -> str:
    """What a stored copy of the index must share with it for an update file to apply to it: the kind, and for IVF
    the trained lists. A store writes the whole index again when this changes."""
    if isinstance(index, IvfIndex):
        return index.layout
    return getattr(index, "kind", type(index).__name__)


def fitted(index: VectorIndex, approximate_above_passages: int) -> VectorIndex:
    """The index a domain of this size uses: `index` itself, or its vectors moved to the other kind (exact ↔
    IVF) or retrained. Only the FAISS kinds change; any other index (pgvector's) is returned as it is."""
    if isinstance(index, FaissIndex):
        if len(index) >= approximate_above_passages:
            return IvfIndex.build(*index.items())
        return index
    if isinstance(index, IvfIndex):
        count = len(index)
        if count < approximate_above_passages * EXACT_BELOW_SHARE or not count:
            exact = FaissIndex(index.dimension)
            exact.add(*index.items())
            return exact
        # Only growth calls for more lists: a domain that shrank has shorter lists, which are only faster.
        if lists_for(count) >= RETRAIN_LIST_RATIO * index.lists:
            return IvfIndex.build(*index.items())
    return index
