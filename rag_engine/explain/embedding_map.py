"""The embedding map (steps 2–3 of the pipeline view): where the question lands among the searched passages.

Passages are blue dots at their PCA coordinates (from `QueryStep`), one label per file; the question is an
orange dot with lines to the retrieved passages, each labelled with its true distance. Labels are placed by
`labels.py`; nothing is computed here beyond layout.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rag_engine.explain.canvas import FONT_PT, cut, new_figure
from rag_engine.explain.labels import Label, LabelPlacer, place_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rag_engine.explain.view import PipelineView

LABEL_CHARS = 24
BLUE = "#3b6fb6"
DARK_BLUE = "#1f3b73"
ORANGE = "#e8710a"
DARK_ORANGE = "#a34d00"


def short_label(path: str, limit: int = LABEL_CHARS) -> str:
    """A file's label on the map: its name without folder or extension, cut to `limit` characters."""
    name = PurePosixPath(path).stem or path
    return name if len(name) <= limit else name[: limit - 1].rstrip("-_ ") + "…"


def embedding_map_figure(view: PipelineView) -> Figure:
    """Passages as blue dots (one label per file), the question as an orange dot, lines to the retrieved
    passages labelled with their true distance. Needs a view with retrieval (steps 2 and 3)."""
    query, retrieval = view.query, view.retrieval
    if query is None or retrieval is None:
        raise ValueError("this answer did not use retrieval: there is no embedding map to draw")
    figure, renderer = new_figure()
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

    labels = [Label("question", (query_px[0], query_px[1]), DARK_ORANGE, bold=True)]
    for row in hits:
        end = to_px.transform(where[(row.domain, row.passage_id)])
        middle = (query_px[0] + 0.55 * (end[0] - query_px[0]), query_px[1] + 0.55 * (end[1] - query_px[1]))
        labels.append(Label(f"{row.distance:.2f}", (float(middle[0]), float(middle[1])), DARK_ORANGE))
    labels.extend(_file_labels(view, pixels, hit_keys))
    left_out = place_labels(axes, renderer, placer, labels)

    names = view.documents.domains if view.documents else tuple(sorted({p.domain for p in query.points}))
    domains = ", ".join(names) if len(names) <= 2 else f"{len(names)} domains"
    figure.text(0.025, 0.975, f"Where the question lands among {len(query.points)} passages ({domains})",
                fontsize=12, fontweight="bold", va="top")  # fmt: skip
    figure.text(0.025, 0.925, f"“{cut(view.question, 100)}”", fontsize=10, va="top", color="#333333")
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


def _file_labels(view: PipelineView, pixels: npt.NDArray[np.float64], hit_keys: set[tuple[str, int]]) -> list[Label]:
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
        labels.append(Label(short_label(key[1]), (float(centre[0]), float(centre[1])), colour, hit, targets))
    return labels
