"""The attention map (step 5 of the pipeline view): where each generated token looked in the prompt.

Rows are generated tokens, columns prompt tokens (binned when there are many), the context passages and the
question marked above; the colour is the share of each token's attention on that part of the prompt. The
weights come from an `AttentionLike` (`attention.py`); nothing is computed here beyond binning and layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag_engine.explain.canvas import FONT_PT, cut, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

    from rag_engine.explain.view import AttentionLike

# At most this many rows (generated tokens) and columns (prompt tokens); more are binned.
MAX_ROWS = 24
MAX_COLUMNS = 160
SPAN_COLOURS = ("#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac")
QUESTION_COLOUR = "#e15759"


def _token_label(text: str) -> str:
    shown = text.replace("\n", "\\n").strip()
    return cut(shown, 14) if shown else "␣"


def binned_attention(
    attention: AttentionLike,
) -> tuple[npt.NDArray[np.float64], list[str], int, int]:
    """(matrix [rows, columns], row labels, prompt tokens per column, answer tokens per row).

    Columns are summed (a cell is the share of attention on that run of prompt tokens, so rows still sum to
    1); rows are averaged (a row is the mean attention of that run of generated tokens).
    """
    weights = np.asarray(attention.weights, dtype=np.float64)
    n_answer, n_prompt = weights.shape
    per_column = max(1, math.ceil(n_prompt / MAX_COLUMNS))
    columns = math.ceil(n_prompt / per_column) if n_prompt else 0
    padded = np.zeros((n_answer, columns * per_column))
    padded[:, :n_prompt] = weights
    summed = padded.reshape(n_answer, columns, per_column).sum(axis=2)
    per_row = max(1, math.ceil(n_answer / MAX_ROWS))
    rows = math.ceil(n_answer / per_row) if n_answer else 0
    matrix = (
        np.vstack([summed[i * per_row : (i + 1) * per_row].mean(axis=0) for i in range(rows)])
        if rows
        else (np.zeros((0, columns)))
    )
    tokens = attention.answer_tokens
    labels = [_token_label("".join(tokens[i * per_row : (i + 1) * per_row])) for i in range(rows)]
    return matrix, labels, per_column, per_row


def attention_figure(attention: AttentionLike) -> Figure:
    """Rows: generated tokens; columns: prompt tokens (binned when many), the context passages and the
    question marked above; colour: the share of each generated token's attention on that part of the prompt."""
    from matplotlib.colors import PowerNorm
    from matplotlib.ticker import FuncFormatter

    matrix, row_labels, per_column, per_row = binned_attention(attention)
    n_prompt = len(attention.prompt_tokens)
    figure, renderer = new_figure()
    heat = figure.add_axes((0.2, 0.09, 0.66, 0.68))
    strip = figure.add_axes((0.2, 0.775, 0.66, 0.035), sharex=heat)
    bar = figure.add_axes((0.88, 0.09, 0.022, 0.68))
    width = matrix.shape[1] * per_column
    top = float(matrix.max()) if matrix.size else 0.0
    # Most models park much of their attention on the first prompt token (an "attention sink"); scaling the
    # colours to it would leave the rest dark, so the scale ends at the largest cell elsewhere and that
    # column saturates (the colour bar's arrow says so). A square-root scale brings out the small shares.
    rest = float(matrix[:, 1:].max()) if matrix.shape[1] > 1 else top
    clipped = 0 < rest < top
    vmax = rest if clipped else top if top > 0 else 1.0
    image = heat.imshow(
        matrix if matrix.size else np.zeros((1, 1)), aspect="auto", cmap="magma", interpolation="nearest",
        norm=PowerNorm(0.5, vmin=0.0, vmax=vmax), extent=(0, max(width, 1), max(len(row_labels), 1), 0),
    )  # fmt: skip
    heat.set_xlim(0, max(n_prompt, 1))
    heat.set_yticks([i + 0.5 for i in range(len(row_labels))])
    heat.set_yticklabels(row_labels, fontsize=FONT_PT)
    heat.tick_params(axis="x", labelsize=FONT_PT)
    unit = "token" if per_column == 1 else f"{per_column} tokens"
    heat.set_xlabel(f"prompt tokens ({n_prompt}; one column = {unit})", fontsize=FONT_PT)
    row_unit = "" if per_row == 1 else f" ({per_row} per row)"
    heat.set_ylabel(f"generated tokens{row_unit}", fontsize=FONT_PT)
    colour_bar = figure.colorbar(image, cax=bar, extend="max" if clipped else "neither")
    # Ticks evenly spaced on the square-root scale, not crowded at its top.
    colour_bar.set_ticks([vmax * f for f in (0.0, 1 / 16, 1 / 4, 9 / 16, 1.0)])
    colour_bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
    colour_bar.ax.tick_params(labelsize=FONT_PT)
    colour_bar.set_label("share of the token's attention (√ scale)", fontsize=FONT_PT)

    strip.set_yticks([])
    strip.tick_params(axis="x", labelbottom=False, bottom=False)
    strip.set_ylim(0, 1)
    _mark_spans(heat, strip, renderer, attention.spans)

    layers = attention.layers
    which = f"layers {layers[0]}–{layers[-1]}" if len(layers) > 1 else f"layer {layers[0]}" if layers else "layers"
    figure.text(0.02, 0.975, "Where each generated token looks in the prompt", fontsize=12, fontweight="bold",
                va="top")  # fmt: skip
    subtitle = f"Attention averaged over {attention.heads} heads and {which}, restricted to the prompt and renormalised"
    if clipped:
        subtitle += f"\nThe first column (the attention sink, up to {top:.2f}) is off the colour scale"
    figure.text(0.02, 0.93, subtitle, fontsize=FONT_PT, va="top", color="#444444", linespacing=1.4)
    return figure


def _mark_spans(heat: Axes, strip: Axes, renderer: RendererBase, spans: Sequence[tuple[str, int, int]]) -> None:
    """Coloured bars for the passages and the question above the heatmap, their edges as lines on it; a
    label that would run into the previous one on its level goes one level up."""
    level_ends: list[float] = []
    bounds = strip.get_window_extent(renderer)
    passage = 0
    for label, start, end in spans:
        if label == "question":
            colour = QUESTION_COLOUR
        else:
            colour = SPAN_COLOURS[passage % len(SPAN_COLOURS)]
            passage += 1
        strip.axvspan(start, end, color=colour, alpha=0.85)
        for edge in (start, end):
            heat.axvline(edge, color="white", linewidth=0.6, linestyle=":", alpha=0.8)
        text = strip.text((start + end) / 2, 0.5, label, fontsize=FONT_PT, ha="center", va="center",
                          color="black", clip_on=False)  # fmt: skip
        extent = text.get_window_extent(renderer)
        # A label wider than a span at the edge (the question, usually) stays over the strip, not the colour bar.
        shift = min(0.0, bounds.x1 - extent.x1) or max(0.0, bounds.x0 - extent.x0)
        if shift:
            x_px = strip.transData.transform(((start + end) / 2, 0.5))[0] + shift
            text.set_x(float(strip.transData.inverted().transform((x_px, 0.5))[0]))
            extent = text.get_window_extent(renderer)
        level = next((i for i, right in enumerate(level_ends) if extent.x0 > right + 3), len(level_ends))
        if level == len(level_ends):
            level_ends.append(extent.x1)
        else:
            level_ends[level] = extent.x1
        if level:
            text.set_y(0.5 + 1.15 * level)
