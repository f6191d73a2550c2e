"""Where an index update's time goes, for benchmarks/bench_incremental.py: the seconds spent in the folder walk,
loading the stored index, loading the embedding model, embedding, and writing the index, each measured by
wrapping the call that does it (the rest is reading, chunking and the in-memory update). Only measurement is
here; nothing in rag_engine knows about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rag_engine.config import EmbeddingConfig
from rag_engine.ingest.embedding import SentenceTransformerEmbedder
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.ingest.store import NpzStore
from rag_engine.seams import Embedder, Vectors


class Parts:
    """Seconds spent in the named parts of an update, measured by wrapping the calls that do them: the folder
    walk, loading the stored index, loading the model and embedding, writing the index. The rest is reading,
    chunking and the in-memory update (FAISS copy and remove/add, BM25 statistics, the new snapshot)."""

    NAMES = ("walk", "load", "model_load", "embed", "save")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.NAMES, 0.0)

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            clock = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - clock

        return timed

    @contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        """While inside: the store's and the knowledge base's calls are timed (restored on the way out)."""
        originals = [
            (KnowledgeBase, "_walk", "walk"), (NpzStore, "_load", "load"), (NpzStore, "save", "save"),
        ]  # fmt: skip
        saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in originals]
        for owner, attribute, name in originals:
            setattr(owner, attribute, self.wrap(name, getattr(owner, attribute)))
        self.seconds = dict.fromkeys(self.NAMES, 0.0)
        try:
            yield self.seconds
        finally:
            for owner, attribute, call in saved:
                setattr(owner, attribute, call)


class TimedEmbedder:
    """The real embedder, each `embed` call timed into `parts`."""

    def __init__(self, model: SentenceTransformerEmbedder, parts: Parts) -> None:
        self.model = model
        self.name = model.name
        self.dimension = model.dimension
        self._parts = parts

    def embed(self, texts: Sequence[str]) -> Vectors:
        result: Vectors = self._parts.wrap("embed", self.model.embed)(texts)
        return result


def timed_embedder(config: EmbeddingConfig, parts: Parts) -> Callable[[], Embedder]:
    """An embedder factory for `Engine`: the model is loaded on first use, and that loading is timed too."""
    held: list[TimedEmbedder] = []

    def factory() -> Embedder:
        if not held:
            clock = time.perf_counter()
            model = SentenceTransformerEmbedder(config)
            parts.seconds["model_load"] += time.perf_counter() - clock
            held.append(TimedEmbedder(model, parts))
        return held[0]

    return factory


def rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {f"{name}_seconds": round(value, 4) for name, value in seconds.items()}
