"""Pictures of the pipeline view as PNG bytes: the embedding map (step 2–3) and the attention heatmap (step 5).

Sized for Discord's inline preview: 800×600 px, no font under 9 pt. matplotlib is imported only when a
picture is drawn, and only its object-oriented API on an Agg canvas is used (no pyplot, so no global figure
state and no GUI backend). What is drawn comes from a `PipelineView` / attention map; nothing is computed
here beyond layout.

Labels are placed, not just printed at their anchor: each one goes to the free spot nearest its anchor on a
pixel grid of the plot, avoiding the labels already placed (always) and the dots and lines (when it can),
with a thin leader line when it had to move away. That keeps 40 file names legible on 800×600.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from rag_engine.explain.view import AttentionLike, PipelineView

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 6.0, 100
FONT_PT = 9
LABEL_CHARS = 24
BLUE = "#3b6fb6"
DARK_BLUE = "#1f3b73"
ORANGE = "#e8710a"
DARK_ORANGE = "#a34d00"
GREY = "#8a8a8a"
# Attention heatmap: at most this many rows (generated tokens) and columns (prompt tokens); more are binned.
MAX_ROWS = 24
MAX_COLUMNS = 160
SPAN_COLOURS = ("#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac")
QUESTION_COLOUR = "#e15759"


def _figure() -> tuple[Figure, RendererBase]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    return figure, canvas.get_renderer()  # type: ignore[no-untyped-call]  # untyped in matplotlib's stubs


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def short_label(path: str, limit: int = LABEL_CHARS) -> str:
    """A file's label on the map: its name without folder or extension, cut to `limit` characters."""
    name = PurePosixPath(path).stem or path
    return name if len(name) <= limit else name[: limit - 1].rstrip("-_ ") + "…"


# -- label placement -----------------------------------------------------------------------------------


@dataclass
class LabelPlacer:
    """Free-spot search on a pixel raster of one axes (display coordinates, origin bottom left).

    `hard` marks placed labels (never overlapped), `soft` marks dots and lines (avoided when possible).
    Each placement scans every grid position at once through summed-area tables, so it costs the same for
    5 labels or 40 and always finds a free spot if one exists.
    """

    x0: float
    y0: float
    width: int
    height: int
    pad: int = 3
    step: int = 2
    hard: npt.NDArray[np.bool_] = field(init=False)
    soft: npt.NDArray[np.bool_] = field(init=False)
    _soft_table: npt.NDArray[np.int64] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.hard = np.zeros((self.height, self.width), bool)
        self.soft = np.zeros((self.height, self.width), bool)

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return round(x - self.x0), round(y - self.y0)

    def mark_soft_disc(self, x: float, y: float, radius: float) -> None:
        cx, cy = self._cell(x, y)
        r = math.ceil(radius)
        self._soft_table = None
        self.soft[max(cy - r, 0) : max(cy + r + 1, 0), max(cx - r, 0) : max(cx + r + 1, 0)] = True

    def mark_soft_segment(self, start: tuple[float, float], end: tuple[float, float], width: float = 1.5) -> None:
        length = math.dist(start, end)
        for t in np.linspace(0.0, 1.0, max(2, int(length / 2))):
            self.mark_soft_disc(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]), width)

    def mark_hard(self, box: tuple[float, float, float, float]) -> None:
        left, bottom = self._cell(box[0], box[1])
        right, top = self._cell(box[2], box[3])
        p = self.pad
        self.hard[max(bottom - p, 0) : max(top + p, 0), max(left - p, 0) : max(right + p, 0)] = True

    def place(
        self, anchor: tuple[float, float], width: float, height: float
    ) -> tuple[float, float, float, float] | None:
        """The free box (x0, y0, x1, y1) of this size nearest the anchor, or None if the axes are full."""
        w, h = math.ceil(width) + 1, math.ceil(height) + 1
        if w >= self.width or h >= self.height:
            return None
        lefts = np.arange(0, self.width - w, self.step)
        bottoms = np.arange(0, self.height - h, self.step)
        left_grid, bottom_grid = np.meshgrid(lefts, bottoms)
        ax_, ay_ = anchor[0] - self.x0, anchor[1] - self.y0
        # How far the anchor is from the box (0 inside), plus a little of the centre's distance so that of
        # all boxes touching the anchor the one centred on it wins.
        gap_x = np.maximum(np.maximum(left_grid - ax_, ax_ - (left_grid + w)), 0)
        gap_y = np.maximum(np.maximum(bottom_grid - ay_, ay_ - (bottom_grid + h)), 0)
        centre = np.hypot(left_grid + w / 2 - ax_, bottom_grid + h / 2 - ay_)
        score = np.hypot(gap_x, gap_y) + 0.05 * centre
        if self._soft_table is None:  # the dots and lines are all marked before the first label
            self._soft_table = self._table(self.soft)
        hard_free = self._free(self._table(self.hard), left_grid, bottom_grid, w, h)
        for free in (hard_free & self._free(self._soft_table, left_grid, bottom_grid, w, h), hard_free):
            if free.any():
                best = np.unravel_index(int(np.argmin(np.where(free, score, np.inf))), score.shape)
                left, bottom = float(left_grid[best]) + self.x0, float(bottom_grid[best]) + self.y0
                box = (left, bottom, left + w, bottom + h)
                self.mark_hard(box)
                return box
        return None

    @staticmethod
    def _table(raster: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """The summed-area table: table[y, x] = how many cells below y and left of x are marked."""
        table = np.zeros((raster.shape[0] + 1, raster.shape[1] + 1), np.int64)
        table[1:, 1:] = raster.cumsum(axis=0).cumsum(axis=1)
        return table

    @staticmethod
    def _free(
        table: npt.NDArray[np.int64], lefts: npt.NDArray[np.int_], bottoms: npt.NDArray[np.int_], w: int, h: int
    ) -> npt.NDArray[np.bool_]:
        filled = (
            table[bottoms + h, lefts + w]
            - table[bottoms, lefts + w]
            - table[bottoms + h, lefts]
            + table[bottoms, lefts]
        )
        result: npt.NDArray[np.bool_] = filled == 0
        return result


def _nearest_on_box(point: tuple[float, float], box: tuple[float, float, float, float]) -> tuple[float, float]:
    return min(max(point[0], box[0]), box[2]), min(max(point[1], box[1]), box[3])


@dataclass
class _Label:
    text: str
    anchor: tuple[float, float]  # display px
    colour: str
    bold: bool = False
    # What a leader line may point at when the label had to move away (display px); default: the anchor.
    targets: tuple[tuple[float, float], ...] = ()


def _place_labels(axes: Axes, renderer: RendererBase, placer: LabelPlacer, labels: Sequence[_Label]) -> int:
    """Place labels in order (earlier ones get the better spots); returns how many found no room."""
    to_data = axes.transData.inverted()
    left_out = 0
    for label in labels:
        text: Text = axes.text(
            0, 0, label.text, fontsize=FONT_PT, color=label.colour, ha="center", va="center", zorder=6,
            fontweight="bold" if label.bold else "normal",
        )  # fmt: skip
        extent = text.get_window_extent(renderer)
        box = placer.place(label.anchor, extent.width, extent.height)
        if box is None:
            text.remove()
            left_out += 1
            continue
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        text.set_position(tuple(to_data.transform(centre)))
        # A leader line to the nearest thing the label names, when the label is not right beside it.
        target = min(label.targets or (label.anchor,), key=lambda point: math.dist(point, _nearest_on_box(point, box)))
        touch = _nearest_on_box(target, box)
        if math.dist(touch, target) > 10:
            (x0, y0), (x1, y1) = to_data.transform([target, touch])
            axes.plot([x0, x1], [y0, y1], color=GREY, linewidth=0.6, zorder=1)
    return left_out


# -- the embedding map ---------------------------------------------------------------------------------


def embedding_map_figure(view: PipelineView) -> Figure:
    """Passages as blue dots (one label per file), the question as an orange dot, lines to the retrieved
    passages labelled with their true distance. Needs a view with retrieval (steps 2 and 3)."""
    query, retrieval = view.query, view.retrieval
    if query is None or retrieval is None:
        raise ValueError("this answer did not use retrieval: there is no embedding map to draw")
    figure, renderer = _figure()
    axes = figure.add_axes((0.025, 0.13, 0.95, 0.76))
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_color("#cccccc")

    xy = np.array([(p.x, p.y) for p in query.points], dtype=np.float64).reshape(-1, 2)
    qx, qy = query.query_xy
    everything = np.vstack([xy, [[qx, qy]]])
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = np.where(high - low > 1e-9, high - low, 1.0)
    axes.set_xlim(low[0] - 0.08 * span[0], high[0] + 0.08 * span[0])
    axes.set_ylim(low[1] - 0.08 * span[1], high[1] + 0.08 * span[1])

    where = {(p.domain, p.passage_id): (p.x, p.y) for p in query.points}
    hits = [row for row in retrieval.hits if (row.domain, row.passage_id) in where]
    hit_keys = {(row.domain, row.passage_id) for row in hits}
    plain = [i for i, p in enumerate(query.points) if (p.domain, p.passage_id) not in hit_keys]
    retrieved = [i for i, p in enumerate(query.points) if (p.domain, p.passage_id) in hit_keys]
    retrieved_set = set(retrieved)
    axes.scatter(xy[plain, 0], xy[plain, 1], s=22, color=BLUE, alpha=0.75, linewidths=0, zorder=3)
    axes.scatter(xy[retrieved, 0], xy[retrieved, 1], s=40, color=BLUE, edgecolors=ORANGE, linewidths=1.6, zorder=4)
    for row in hits:
        x, y = where[(row.domain, row.passage_id)]
        style = "-" if row.in_prompt else "--"
        axes.plot([qx, x], [qy, y], style, color=ORANGE, linewidth=1.3, zorder=2)
    axes.scatter([qx], [qy], s=110, color=ORANGE, edgecolors="black", linewidths=0.8, zorder=5)

    # Everything below is in display pixels: where the dots and lines ended up, and room for the labels.
    axes_box = axes.get_window_extent(renderer)
    placer = LabelPlacer(axes_box.x0 + 2, axes_box.y0 + 2, int(axes_box.width) - 4, int(axes_box.height) - 4)
    to_px = axes.transData
    pixels = to_px.transform(xy) if len(xy) else np.zeros((0, 2))
    query_px = tuple(float(v) for v in to_px.transform((qx, qy)))
    for i, (px, py) in enumerate(pixels):
        placer.mark_soft_disc(float(px), float(py), 7 if i in retrieved_set else 5)
    placer.mark_soft_disc(query_px[0], query_px[1], 9)
    for row in hits:
        hit_px = to_px.transform(where[(row.domain, row.passage_id)])
        placer.mark_soft_segment((query_px[0], query_px[1]), (float(hit_px[0]), float(hit_px[1])))

    labels = [_Label("question", (query_px[0], query_px[1]), DARK_ORANGE, bold=True)]
    for row in hits:
        end = to_px.transform(where[(row.domain, row.passage_id)])
        middle = (query_px[0] + 0.55 * (end[0] - query_px[0]), query_px[1] + 0.55 * (end[1] - query_px[1]))
        labels.append(_Label(f"{row.distance:.2f}", (float(middle[0]), float(middle[1])), DARK_ORANGE))
    labels.extend(_file_labels(view, pixels, hit_keys))
    left_out = _place_labels(axes, renderer, placer, labels)

    names = view.documents.domains if view.documents else tuple(sorted({p.domain for p in query.points}))
    domains = ", ".join(names) if len(names) <= 2 else f"{len(names)} domains"
    figure.text(0.025, 0.975, f"Where the question lands among {len(query.points)} passages ({domains})",
                fontsize=12, fontweight="bold", va="top")  # fmt: skip
    figure.text(0.025, 0.925, f"“{_cut(view.question, 100)}”", fontsize=10, va="top", color="#333333")
    explained = sum(query.explained_variance) * 100
    figure.text(
        0.025, 0.085,
        f"2-D positions are a PCA projection ({explained:.0f}% of the variance); distances are the real "
        f"{query.dimension}-D Euclidean distances",
        fontsize=FONT_PT, va="top",
    )  # fmt: skip
    legend = (
        f"Orange lines: the {len(hits)} retrieved passages (solid: in the prompt, dashed: not used); "
        f"threshold {retrieval.max_distance:.2f}"
    )
    if left_out:
        legend += f"; {left_out} labels left out for room"
    figure.text(0.025, 0.045, legend, fontsize=FONT_PT, va="top", color="#444444")
    return figure


def _file_labels(view: PipelineView, pixels: npt.NDArray[np.float64], hit_keys: set[tuple[str, int]]) -> list[_Label]:
    """One label per file at its passages' centroid; files with retrieved passages first, then bigger ones."""
    assert view.query is not None
    groups: dict[tuple[str, str], list[int]] = {}
    for i, point in enumerate(view.query.points):
        groups.setdefault((point.domain, point.path), []).append(i)
    retrieved_files = {(p.domain, p.path) for p in view.query.points if (p.domain, p.passage_id) in hit_keys}
    order = sorted(groups, key=lambda key: (key not in retrieved_files, -len(groups[key]), key))
    labels = []
    for key in order:
        points = pixels[groups[key]]
        centre = points.mean(axis=0)
        hit = key in retrieved_files
        targets = tuple((float(x), float(y)) for x, y in points)
        colour = DARK_BLUE if hit else "#2d4f86"
        labels.append(_Label(short_label(key[1]), (float(centre[0]), float(centre[1])), colour, hit, targets))
    return labels


def embedding_map_png(view: PipelineView) -> bytes:
    return _png(embedding_map_figure(view))


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# -- the attention heatmap -----------------------------------------------------------------------------


def _token_label(text: str) -> str:
    shown = text.replace("\n", "\\n").strip()
    return _cut(shown, 14) if shown else "␣"


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
    figure, renderer = _figure()
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


def attention_png(attention: AttentionLike) -> bytes:
    return _png(attention_figure(attention))
