"""The `Embedder` seam, shared by the steps that embed: documents (`ingest/`), questions (`engine.py`) and
evidence sentences (`generate/evidence.py`). It lives above the sub-packages so that none of them has to import
another for it; the sentence-transformers implementation is `ingest/embedding.py`.

The other seams sit with their step: `VectorIndex` in `search/index.py`, `Generator` in `generate/generation.py`.
`Lazy` is how the engine holds the models it is handed (or makes): created once, on first use, or started in
the background ahead of that use (`start`), the use then waiting for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
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
    """Create a heavy object once, on first use, from any thread (a factory that fails is asked again).

    `start()` begins creating it in a background thread, so that the caller can do other work meanwhile; the
    first call then waits for that thread, and if the factory failed there, the call raises the very error the
    factory raised (once: the call after that asks the factory again)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        # Held while the factory runs (callers wait on it); `_state` guards the two fields below only briefly,
        # so that `start` never waits for a factory. Taken in that order, when both are.
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._loading: threading.Thread | None = None
        self._failure: Exception | None = None

    def start(self) -> None:
        """Create the object in a background thread, unless it is made or being made already."""
        with self._state:
            if self._value is not None or self._loading is not None:
                return
            # Not a daemon: a process that ends while a model is still loading waits for the load rather than
            # stopping a thread inside native code (llama.cpp) while the interpreter shuts down.
            self._loading = threading.Thread(target=self._create, name="lazy-load", daemon=False)
            self._loading.start()

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        """`start()`, then the caller's work; at its end (returned or raised) wait for the background creation
        to finish, without raising its failure (that stays for the call that needs the object). A factory may
        silence the whole process's output while it runs (llama-cpp-python's load points stdout and stderr at
        /dev/null): what the caller prints after its work, such as an answer that needed no model or an error,
        must not fall into that moment."""
        self.start()
        try:
            yield
        finally:
            loading = self._loading
            if loading is not None:
                loading.join()

    def _create(self) -> None:
        with self._lock:
            if self._value is not None:
                return
            try:
                self._value = self._factory()
            except Exception as exc:  # handed to the caller that needs the object (a thread has no one to tell)
                with self._state:
                    self._failure = exc

    def made(self) -> T | None:
        """The object if it has been created, without creating it or waiting for it."""
        return self._value

    def __call__(self) -> T:
        loading = self._loading
        if loading is not None:
            loading.join()
        with self._lock:
            with self._state:
                if self._loading is loading:
                    self._loading = None
                failure, self._failure = self._failure, None
            if failure is not None:
                raise failure
            if self._value is None:
                self._value = self._factory()
            return self._value
