"""Drawing pieces the lab's pictures share: a title, grouped bars with their values, and a panel of text lines.

Every lab picture is one 800×600 figure on the pipeline view's canvas (`explain/canvas.py`): a chart on top
and, below it, the answers or lists it is about, as plain text. What each experiment draws is its own module's
`png()`; nothing here knows an experiment.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rag_engine.explain.canvas import FONT_PT

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour per compared series (the pipeline view's palette), in order.
SERIES_COLOURS = ("#4e79a7", "#e15759", "#59a14f", "#b07aa1", "#edc948", "#76b7b2")
# Characters per line of a text panel at FONT_PT on the 800 px wide figure.
PANEL_CHARS = 104


def titled(figure: Figure, title: str, subtitle: str) -> None:
    figure.text(0.02, 0.975, title, fontsize=12, fontweight="bold", va="top")
    figure.text(0.02, 0.93, subtitle, fontsize=FONT_PT, va="top", color="#444444", linespacing=1.4)


def grouped_bars(
    axes: Axes,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    value_format: str = "{:g}",
) -> None:
    """One cluster of bars per group, one bar per series (each series has a value per group), values on top."""
    count = max(len(series), 1)
    width = 0.8 / count
    for number, (name, values) in enumerate(series.items()):
        offsets = [i - 0.4 + width * (number + 0.5) for i in range(len(groups))]
        bars = axes.bar(offsets, values, width, label=name, color=SERIES_COLOURS[number % len(SERIES_COLOURS)])
        axes.bar_label(bars, labels=[value_format.format(v) for v in values], fontsize=FONT_PT, padding=2)
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels(groups, fontsize=FONT_PT)
    axes.tick_params(axis="y", labelsize=FONT_PT)
    # Room above the tallest bar for its value and the legend, which sits over the bars in one row.
    top = max((max(values, default=0.0) for values in series.values()), default=0.0)
    axes.set_ylim(0, top * 1.35 if top > 0 else 1.0)
    axes.legend(fontsize=FONT_PT, frameon=False, loc="upper center", ncols=count)
    axes.spines[["top", "right"]].set_visible(False)


def text_panel(figure: Figure, rect: tuple[float, float, float, float], heading: str, rows: Sequence[str]) -> None:
    """Lines of text in `rect` (figure fractions): each row wrapped to the panel's width (an answer is read
    whole, not cut at the edge), as many lines as fit, the last one marked when more did not fit."""
    panel = figure.add_axes(rect)
    panel.axis("off")
    line_height = 0.03 / rect[3]  # 18 px a line, in the panel's own 0..1 height
    panel.text(0.0, 1.0, heading, fontsize=FONT_PT, fontweight="bold", va="top", transform=panel.transAxes)
    fitting = max(0, int((1.0 - line_height) / line_height))
    chars = int(PANEL_CHARS * rect[2] / 0.96)
    lines = [line for row in rows for line in (textwrap.wrap(row, chars, subsequent_indent="   ") or [""])]
    if len(lines) > fitting:
        lines = [*lines[: max(0, fitting - 1)], "…"] if fitting else []
    for number, line in enumerate(lines, start=1):
        panel.text(0.0, 1.0 - number * line_height, line, fontsize=FONT_PT, va="top", transform=panel.transAxes)
