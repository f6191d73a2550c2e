"""The `Embedder` seam, shared by the steps that embed: documents (`ingest/`), questions (`engine.py`) and
evidence sentences (`generate/evidence.py`). It lives above the sub-packages so that none of them has to import
another for it; the sentence-transformers implementation is `ingest/embedding.py`.

The other seams sit with their step: `VectorIndex` in `search/index.py`, `Generator` in `generate/generation.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Anything that embeds a batch of texts into unit-length rows of a float32 matrix."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...
