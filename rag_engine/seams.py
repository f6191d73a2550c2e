"""The `Embedder` seam, shared by the steps that embed: documents (`ingest/`), questions (`engine.py`) and
evidence sentences (`generate/evidence.py`). It lives above the sub-packages so that none of them has to import
another for it; the sentence-transformers implementation is `ingest/embedding.py`.

The other seams sit with their step: `VectorIndex` in `search/index.py`, `Generator` in `generate/generation.py`.
`Lazy` is how the engine holds the models it is handed (or makes): created once, on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
T = TypeVar("T")


class Embedder(Protocol):
    """Anything that embeds a batch of texts into unit-length rows of a float32 matrix."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class Lazy(Generic[T]):
    """Create a heavy object once, on first use, from any thread (a factory that fails is asked again)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value
