"""In-memory search spaces for the lab: a domain's passages (plus made-up ones) under vectors of the lab's
choosing, searched with the project's own `search`, never written to disk.

The redundancy experiment adds near-copies to a domain (`with_passages`), the weak-retriever one re-embeds it
with another embedder (`reembedded`). Both build a fresh exact FAISS index and a BM25 index over the same ids,
so the temporary space is a `SearchSpace` like any other and every mode works on it. Not here: the
near-copies themselves (`redundancy.py`), the weak embedder (`retriever.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from rag_engine.config import Config
from rag_engine.records import Hit, Passage
from rag_engine.search.index import FaissIndex
from rag_engine.search.lexical import Bm25Index
from rag_engine.search.retrieval import SearchSpace

Vectors = npt.NDArray[np.float32]


def memory_space(domain: str, passages: Mapping[int, Passage], vectors: Vectors, config: Config) -> SearchSpace:
    """A space over `passages` (in their order) with `vectors` (one unit row each, same order): an exact FAISS
    index and a BM25 index of their texts, with the config's BM25 settings."""
    ids = list(passages)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} passages but {len(vectors)} vectors")
    index = FaissIndex(int(vectors.shape[1]))
    index.add(ids, vectors)
    retrieval = config.retrieval
    lexical = Bm25Index.build({i: passages[i].text for i in ids}, retrieval.bm25_k1, retrieval.bm25_b)
    return SearchSpace(domain, index, dict(passages), lexical)


def stored_vectors(space: SearchSpace) -> tuple[dict[int, Passage], Vectors]:
    """Every passage of `space` with the vector its index stores (same order): what a temporary copy starts
    from, so the real embeddings are reused rather than computed again."""
    passages = dict(sorted(space.passages.items()))
    return passages, space.index.vectors(list(passages))


def with_passages(
    space: SearchSpace, added: Mapping[int, Passage], added_vectors: Vectors, config: Config
) -> SearchSpace:
    """A copy of `space` in memory with `added` passages (ids not in it) and their vectors."""
    passages, vectors = stored_vectors(space)
    clash = set(added) & set(passages)
    if clash:
        raise ValueError(f"passage ids already in {space.domain}: {sorted(clash)[:3]}")
    merged = {**passages, **added}
    stacked = np.vstack([vectors, added_vectors]).astype(np.float32) if len(added) else vectors
    return memory_space(space.domain, merged, stacked, config)


def files_of(hits: tuple[Hit, ...] | list[Hit]) -> list[str]:
    """The files of `hits`, best first, each once."""
    return list(dict.fromkeys(hit.passage.path for hit in hits))
