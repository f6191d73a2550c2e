"""The pictures of the pipeline view as PNG bytes, 800×600: what the files and the surfaces call.

`embedding_map_png` draws steps 2–3 (`embedding_map.py`), `attention_png` step 5 (`attention_map.py`); the
canvas they share is `canvas.py`, the label placement `labels.py`.
"""

from __future__ import annotations

from rag_engine.explain.attention_map import attention_figure
from rag_engine.explain.canvas import png
from rag_engine.explain.embedding_map import embedding_map_figure
from rag_engine.explain.view import AttentionLike, PipelineView


def embedding_map_png(view: PipelineView) -> bytes:
    """The embedding map of a view with retrieval (a `ValueError` without)."""
    return png(embedding_map_figure(view))


def attention_png(attention: AttentionLike) -> bytes:
    return png(attention_figure(attention))
