"""Label placement without overlap, for the pictures of the pipeline view.

Labels are placed, not just printed at their anchor: each one goes to the free spot nearest its anchor on a
pixel grid of the plot, avoiding the labels already placed (always) and the dots and lines (when it can),
with a thin leader line when it had to move away. That keeps 40 file names legible on 800×600. What the
labels say and where they point is the picture's business (`embedding_map.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag_engine.explain.canvas import FONT_PT

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.text import Text

LEADER_COLOUR = "#8a8a8a"


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


def nearest_on_box(point: tuple[float, float], box: tuple[float, float, float, float]) -> tuple[float, float]:
    return min(max(point[0], box[0]), box[2]), min(max(point[1], box[1]), box[3])


@dataclass
class Label:
    """A text to place near `anchor`."""

    text: str
    anchor: tuple[float, float]  # display px
    colour: str
    bold: bool = False
    # What a leader line may point at when the label had to move away (display px); default: the anchor.
    targets: tuple[tuple[float, float], ...] = ()


def place_labels(axes: Axes, renderer: RendererBase, placer: LabelPlacer, labels: Sequence[Label]) -> int:
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
        target = min(label.targets or (label.anchor,), key=lambda point: math.dist(point, nearest_on_box(point, box)))
        touch = nearest_on_box(target, box)
        if math.dist(touch, target) > 10:
            (x0, y0), (x1, y1) = to_data.transform([target, touch])
            axes.plot([x0, x1], [y0, y1], color=LEADER_COLOUR, linewidth=0.6, zorder=1)
    return left_out
