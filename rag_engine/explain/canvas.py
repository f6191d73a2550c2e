"""The canvas every picture of the pipeline view is drawn on: one 800×600 px figure on an Agg canvas, its PNG
bytes, the font size and text shortening they share.

Sized for Discord's inline preview: 800×600 px, no font under 9 pt. matplotlib is imported only when a
picture is drawn, and only its object-oriented API on an Agg canvas is used (no pyplot, so no global figure
state and no GUI backend). The pictures themselves are `embedding_map.py` and `attention_map.py`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 100
FONT_PT = 9


def new_figure() -> tuple[Figure, RendererBase]:
    """An empty 800×600 figure and the renderer that measures its texts (for placing labels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    return figure, canvas.get_renderer()  # type: ignore[no-untyped-call]  # untyped in matplotlib's stubs


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def cut(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
