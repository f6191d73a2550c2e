"""The pipeline view with the real models over the shipped knowledge (read, never modified): the data checked
against numpy on the 384-D vectors, the map's layout on real passages, and `ragscope pipeline` end to end with
the attention heatmap when `rag_engine.explain.attention` can give it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.explain.embedding_map import embedding_map_figure
from rag_engine.generate.grounding import words
from rag_engine.ingest.embedding import embedding_title
from rag_engine.records import Answer
from ragscope.cli import main
from tests.conftest import REPO
from tests.rag_engine.explain.helpers import highlighted_words

pytestmark = pytest.mark.real_models

QUESTION = "On what date did the canal between the Mediterranean and the Red Sea open?"


@pytest.fixture(scope="module")
def answer(real_engine: Engine) -> Answer:
    """One generated answer shared by the view tests (a generation costs seconds on a small CPU)."""
    return real_engine.answer(QUESTION, "history")


def test_history_view_matches_numpy_on_the_real_vectors(real_engine: Engine, answer: Answer) -> None:
    view = real_engine.explain(answer, attention=False)
    documents, query, retrieval = view.documents, view.query, view.retrieval
    assert documents is not None and query is not None and retrieval is not None
    assert documents.dimension == query.dimension == 384 and documents.files == 10
    assert documents.embedding_model == embedding_title(real_engine.config.embedding)  # the model and its backend

    index = real_engine.snapshot("history").space.index
    vectors = index.vectors([p.passage_id for p in query.points]).astype(np.float64)
    q = np.asarray(answer.query_vector, dtype=np.float64)
    # numpy's PCA: the covariance matrix's top two eigenvectors, signed like the view's.
    mean = vectors.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(vectors - mean, rowvar=False))
    top = np.argsort(eigenvalues)[::-1][:2]
    components = eigenvectors[:, top].T
    components *= np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])[:, None]
    np.testing.assert_allclose([(p.x, p.y) for p in query.points], (vectors - mean) @ components.T, atol=1e-5)
    np.testing.assert_allclose(query.query_xy, (q - mean) @ components.T, atol=1e-5)

    # Every distance is numpy's on the raw stored vectors, and FAISS's hits agree with it.
    by_id = {p.passage_id: vectors[i] for i, p in enumerate(query.points)}
    for row in retrieval.rows:
        assert row.distance == pytest.approx(float(np.linalg.norm(by_id[row.passage_id] - q)), abs=1e-9)
    assert [row.passage_id for row in retrieval.hits] == [hit.passage.id for hit in answer.hits]
    for hit, row in zip(answer.hits, retrieval.hits, strict=True):
        assert row.distance == pytest.approx(hit.distance, abs=1e-4)
    assert retrieval.complete == (retrieval.searched <= 40)
    assert retrieval.rows[0].path == "suez-canal.md" and retrieval.rows[0].hit_rank == 1

    # The green tokens belong to words of the context the model was given (the model's tokens are sub-words).
    assert view.prompt is not None
    context = view.prompt.text.split("Context:", 1)[1].rsplit("Question:", 1)[0]
    highlighted = highlighted_words(view.generation.tokens)
    assert highlighted and highlighted <= words(context)


def test_map_of_a_real_domain_has_one_label_per_file_and_no_overlaps(real_engine: Engine, answer: Answer) -> None:
    view = real_engine.explain(answer, attention=False)
    figure = embedding_map_figure(view)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = list(figure.axes[0].texts)
    assert len(texts) == 10 + 1 + 4  # files, "question", one distance per retrieved passage
    boxes = [t.get_window_extent(renderer) for t in texts]
    for a, b in itertools.combinations(boxes, 2):
        assert not (a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)


def test_cli_pipeline_with_real_models(real_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def same_engine(config: Config) -> Engine:
        # The session's models, already loaded; the attention model (a second copy of the generator) is this
        # engine's own, so it is freed after the test instead of staying in the session's engine.
        return Engine(real_engine.config, embedder=real_engine.embedder, generator=real_engine.generator,
                      sentence_embedder=real_engine.sentence_embedder)  # fmt: skip

    out = tmp_path / "out"
    args = ["pipeline", QUESTION, "--config", str(REPO / "config.toml"), "--domain", "history", "--out", str(out)]
    assert main(args, make_engine=same_engine) == 0
    stdout = capsys.readouterr().out
    assert "nearest history/suez-canal.md" in stdout
    for name in ("pipeline.json", "embedding_map.png", "distances.md", "prompt.txt", "answer.ansi"):
        assert (out / name).is_file(), name
    data = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    assert data["documents"]["dimension"] == 384 and data["query"]["dimension"] == 384
    assert "\x1b[32m" in (out / "answer.ansi").read_text(encoding="utf-8")

    if (out / "attention.txt").exists():
        note = (out / "attention.txt").read_text(encoding="utf-8").strip()
        pytest.skip(f"the attention model could not give attention here: {note}")
    assert (out / "attention.png").is_file()
    attention = data["generation"]["attention"]
    weights = np.array(attention["weights"])
    assert weights.shape == (len(attention["answer_tokens"]), len(attention["prompt_tokens"]))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    # The heatmap's spans name every passage of the prompt and the question.
    labels = {span["label"] for span in attention["spans"]}
    in_prompt = sum(1 for row in data["retrieval"]["rows"] if row["in_prompt"])
    assert labels == {f"[{i}]" for i in range(1, in_prompt + 1)} | {"question"}
