"""The pictures of the pipeline view: the embedding map's labels never overlap for 5–40 files, each file is
labelled once, and the attention map bins long prompts and marks every span."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rag_engine.engine import Engine
from rag_engine.explain.attention import AttentionMap
from rag_engine.explain.attention_map import attention_figure, binned_attention
from rag_engine.explain.embedding_map import embedding_map_figure, short_label
from rag_engine.explain.figures import attention_png, embedding_map_png
from tests.rag_engine.explain.helpers import QUESTION, TOPICS, overlapping, png_size, topic_engine


@pytest.mark.parametrize("files", [5, 20, 40])
def test_map_labels_never_overlap(tmp_path: Path, files: int) -> None:
    engine = topic_engine(tmp_path, files)
    answer = engine.answer("Which canal opened with the steam ship?", "topics", k=4)
    view = engine.explain(answer, attention=False)
    figure = embedding_map_figure(view)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    assert (figure.bbox.width, figure.bbox.height) == (800, 600)
    (axes,) = figure.axes
    labels = [text for text in axes.texts if text.get_text()]
    texts = [text.get_text() for text in labels]
    # One label per file, the question, and a distance per retrieved passage: none left out.
    expected_files = {short_label(p.path) for p in view.query.points}  # type: ignore[union-attr]
    assert set(texts) == expected_files | {"question"} | {f"{h.distance:.2f}" for h in answer.hits}
    assert len(texts) == files + 1 + 4
    boxes = [text.get_window_extent(renderer) for text in labels]
    assert overlapping(boxes) == []
    inside = axes.get_window_extent(renderer)
    for box in boxes:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    all_text = labels + list(figure.texts)
    assert min(text.get_fontsize() for text in all_text) >= 9
    figure_boxes = [text.get_window_extent(renderer) for text in figure.texts]
    assert overlapping([*figure_boxes, inside]) == []
    assert all(b.x0 >= 0 and b.x1 <= 800 and b.y0 >= 0 and b.y1 <= 600 for b in figure_boxes)


def test_map_of_files_with_several_passages_labels_each_file_once(tmp_path: Path) -> None:
    engine = topic_engine(tmp_path, files=8, passages_per_file=4)
    view = engine.explain(engine.answer("the press and the tower", "topics"), attention=False)
    figure = embedding_map_figure(view)
    figure.canvas.draw()
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert sorted(t for t in texts if not re.fullmatch(r"\d\.\d\d|question", t)) == sorted(
        short_label(name) for name in TOPICS[:8]
    )
    assert len(view.query.points) == 32  # type: ignore[union-attr]


def test_no_map_without_retrieval(fake_engine: Engine) -> None:
    view = fake_engine.explain(fake_engine.answer(QUESTION, use_rag=False), attention=False)
    with pytest.raises(ValueError, match="did not use retrieval"):
        embedding_map_png(view)


def fake_map(answer_tokens: int, prompt_tokens: int) -> AttentionMap:
    rng = np.random.default_rng(0)
    weights = rng.random((answer_tokens, prompt_tokens)).astype(np.float32)
    weights[:, 0] += 40  # an attention sink
    weights /= weights.sum(axis=1, keepdims=True)
    spans = (("[1]", 40, 300), ("[2]", 305, 560), ("[3]", 566, 840), ("question", 850, 866))
    return AttentionMap(
        prompt_tokens=tuple(f"p{i}" for i in range(prompt_tokens)),
        answer_tokens=tuple(f" w{i}" for i in range(answer_tokens)),
        weights=weights,
        layers=(26, 27, 28, 29),
        heads=9,
        spans=spans,
    )


def test_attention_is_binned_but_keeps_rows_summing_to_one() -> None:
    attention = fake_map(answer_tokens=61, prompt_tokens=901)
    matrix, labels, per_column, per_row = binned_attention(attention)
    assert per_column == 6 and matrix.shape == (21, 151) and per_row == 3 and len(labels) == 21
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    # A cell is the summed attention over its run of prompt tokens, averaged over its run of answer tokens.
    weights = attention.weights.astype(np.float64)
    assert matrix[0, 1] == pytest.approx(weights[0:3, 6:12].sum(axis=1).mean())
    assert labels[0] == "w0 w1 w2" and labels[-1] == "w60"


def test_attention_picture_marks_every_span_without_overlapping_labels() -> None:
    figure = attention_figure(fake_map(answer_tokens=12, prompt_tokens=870))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    assert (figure.bbox.width, figure.bbox.height) == (800, 600)
    strip = figure.axes[1]
    span_texts = list(strip.texts)
    assert [t.get_text() for t in span_texts] == ["[1]", "[2]", "[3]", "question"]
    assert overlapping([t.get_window_extent(renderer) for t in span_texts]) == []
    heat = figure.axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == [f"w{i}" for i in range(12)]
    assert "off the colour scale" in " ".join(t.get_text() for t in figure.texts)
    assert png_size(attention_png(fake_map(answer_tokens=3, prompt_tokens=50))) == (800, 600)
