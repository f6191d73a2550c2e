"""The pipeline view with fake models: each step's data checked against numpy on the raw vectors, the
pictures' layout (labels never overlap for 5–40 passages), the files written, and `ragscope pipeline`."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import RagError
from rag_engine.explain.figures import attention_figure, binned_attention, embedding_map_figure, short_label
from rag_engine.explain.view import (
    ANSI_GREEN,
    ANSI_RESET,
    PipelineView,
    build_pipeline,
    distances_markdown,
    pca_2d,
    write_pipeline,
)
from rag_engine.generate.grounding import words
from rag_engine.records import Answer, AnswerToken
from ragscope.cli import main
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder

QUESTION = "Who described the zorblat in 1887?"
TOPICS = [
    "apollo-11-moon-landing", "eiffel-tower", "gutenberg-printing-press", "magellan-elcano-circumnavigation",
    "panama-canal", "rosetta-stone", "suez-canal", "transatlantic-telegraph-cable", "transcontinental-railroad",
    "wright-brothers-first-flight",
]  # fmt: skip
WORDS = ["canal", "tower", "press", "ship", "cable", "railroad", "flight", "stone", "moon", "engine", "river"]


# -- helpers -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FakeMap:
    prompt_tokens: tuple[str, ...]
    answer_tokens: tuple[str, ...]
    weights: npt.NDArray[np.float32]
    layers: tuple[int, ...]
    heads: int
    spans: tuple[tuple[str, int, int], ...]


class RecordingAttention:
    """Stands in for `AttentionModel`: whitespace tokens, uniform attention, remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def attend(
        self, prompt: str, answer: str, contexts: Sequence[str] = (), question: str = "", last_layers: int = 4
    ) -> FakeMap:
        self.calls.append({"prompt": prompt, "answer": answer, "contexts": list(contexts), "question": question})
        prompt_tokens, answer_tokens = tuple(prompt.split()), tuple(answer.split())
        weights = np.full((len(answer_tokens), len(prompt_tokens)), 1 / len(prompt_tokens), np.float32)
        spans = (("[1]", 3, 10), ("question", 12, 15))
        return FakeMap(prompt_tokens, answer_tokens, weights, (26, 27, 28, 29), 9, spans)


class BrokenAttention:
    def attend(
        self, prompt: str, answer: str, contexts: Sequence[str] = (), question: str = "", last_layers: int = 4
    ) -> FakeMap:
        raise RagError("transformers cannot read this GGUF")


def fake_engine_for(config: Config) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


def topic_domain(root: Path, files: int, passages_per_file: int = 1, domain: str = "topics") -> Path:
    """`files` documents of one short paragraph each (one passage), or several well-separated paragraphs."""
    rng = np.random.default_rng(files * 100 + passages_per_file)
    for i in range(files):
        name = f"{TOPICS[i % len(TOPICS)]}-{i:02d}.md" if files > len(TOPICS) else f"{TOPICS[i]}.md"
        paragraphs = []
        for j in range(passages_per_file):
            chosen = " ".join(rng.choice(WORDS, 6))
            paragraphs.append(f"Paragraph {j} of {TOPICS[i % len(TOPICS)]} about the {chosen} in {1800 + i}. " * 6)
        write(root / domain / name, "\n\n".join(paragraphs) + "\n")
    return root


def topic_engine(tmp_path: Path, files: int, passages_per_file: int = 1) -> Engine:
    root = topic_domain(tmp_path / "topics-knowledge", files, passages_per_file)
    base = Config()
    config = dataclasses.replace(
        base.with_paths(knowledge_dir=root, data_dir=tmp_path / "topics-data"),
        retrieval=dataclasses.replace(base.retrieval, max_distance=1.6, mode="dense"),
    )
    return fake_engine_for(config)


def stored_vectors(engine: Engine, view: PipelineView) -> npt.NDArray[np.float64]:
    """The raw stored vectors of the view's passages, in the view's order, read from the index directly."""
    assert view.query is not None
    rows = []
    for point in view.query.points:
        index = engine.snapshot(point.domain).space.index
        rows.append(index.vectors([point.passage_id])[0])
    return np.vstack(rows).astype(np.float64)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def overlapping(boxes: Sequence[Any]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2)
        if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1
    ]


def highlighted_words(tokens: Sequence[AnswerToken]) -> set[str]:
    """The whole words (lower-cased) that the in-context tokens belong to: a token may be part of a word."""
    text = "".join(t.text for t in tokens)
    marked = []
    position = 0
    for token in tokens:
        if token.in_context:
            marked.append((position, position + len(token.text)))
        position += len(token.text)
    found = set()
    for match in re.finditer(r"[^\W_]+(?:[.,'’][^\W_]+)*", text):
        if any(start < match.end() and match.start() < end for start, end in marked):
            found.add(match.group(0).lower())
    return found


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def answer(fake_engine: Engine) -> Answer:
    return fake_engine.answer(QUESTION, k=3)


@pytest.fixture
def view(fake_engine: Engine, answer: Answer) -> PipelineView:
    return build_pipeline(fake_engine, answer, None)


# -- the data ------------------------------------------------------------------------------------------


def test_documents_step_describes_every_searched_domain(fake_engine: Engine, view: PipelineView) -> None:
    documents = view.documents
    assert documents is not None
    assert documents.domains == ("geology", "zoology")
    snapshots = [fake_engine.snapshot(name) for name in documents.domains]
    assert documents.passages == sum(len(s.space.passages) for s in snapshots)
    assert documents.files == 3 and documents.dimension == 64
    assert documents.embedding_model == "all-MiniLM-L6-v2"
    assert len(documents.examples) == 3
    assert len({(e.domain, e.path) for e in documents.examples}) == 3  # one per file while there are files
    for example in documents.examples:
        assert 0 < len(example.text) <= 160 and example.span.startswith("L")


def test_projection_equals_numpys_pca(tmp_path: Path) -> None:
    engine = topic_engine(tmp_path, files=6, passages_per_file=3)
    answer = engine.answer("When was the canal with the steam engine built?", "topics")
    view = build_pipeline(engine, answer, None)
    assert view.query is not None
    vectors = stored_vectors(engine, view)
    query = np.asarray(answer.query_vector, dtype=np.float64)
    # PCA the textbook way: eigenvectors of the covariance matrix, largest eigenvalues first.
    mean = vectors.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(vectors - mean, rowvar=False))
    top = np.argsort(eigenvalues)[::-1][:2]
    components = eigenvectors[:, top].T
    for component in components:  # the view's sign convention: the largest-magnitude loading is positive
        if component[np.argmax(np.abs(component))] < 0:
            component *= -1
    expected = (vectors - mean) @ components.T
    got = np.array([(p.x, p.y) for p in view.query.points])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(view.query.query_xy, (query - mean) @ components.T, atol=1e-6)
    ratios = eigenvalues[top] / eigenvalues.sum()
    np.testing.assert_allclose(view.query.explained_variance, ratios, atol=1e-9)
    assert view.query.dimension == 64 and view.query.vector == answer.query_vector
    assert len(view.query.points) == 18 and view.query.embed_seconds == answer.timings["embed_query"]


def test_pca_of_degenerate_inputs_stays_two_dimensional() -> None:
    empty_xy, empty_q, empty_ratio = pca_2d(np.zeros((0, 4)), np.ones(4))
    assert empty_xy.shape == (0, 2) and empty_q.tolist() == [0.0, 0.0] and empty_ratio == (0.0, 0.0)
    one_xy, one_q, one_ratio = pca_2d(np.ones((1, 4)), np.zeros(4))
    assert one_xy.tolist() == [[0.0, 0.0]] and one_q.tolist() == [0.0, 0.0] and one_ratio == (0.0, 0.0)
    two = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    two_xy, two_q, two_ratio = pca_2d(two, np.array([1.0, 0.0, 5.0]))
    assert two_xy.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and two_q.tolist() == [0.0, 0.0]
    assert two_ratio == (1.0, 0.0)


def test_distances_in_the_table_equal_numpys_on_the_raw_vectors(fake_engine: Engine, answer: Answer) -> None:
    view = build_pipeline(fake_engine, answer, None)
    retrieval = view.retrieval
    assert retrieval is not None and retrieval.complete
    assert retrieval.searched == len(retrieval.rows) == view.documents.passages  # type: ignore[union-attr]
    query = np.asarray(answer.query_vector, dtype=np.float64)
    for row in retrieval.rows:
        vector = fake_engine.snapshot(row.domain).space.index.vectors([row.passage_id])[0]
        assert row.distance == pytest.approx(float(np.linalg.norm(vector.astype(np.float64) - query)), abs=1e-9)
    distances = [row.distance for row in retrieval.rows]
    assert distances == sorted(distances) and [r.rank for r in retrieval.rows] == list(range(1, len(distances) + 1))
    # The hits' distances (from FAISS) agree with numpy's, and every hit is marked in the table.
    assert len(retrieval.hits) == len(answer.hits) == 3
    for hit, row in zip(answer.hits, retrieval.hits, strict=True):
        assert (row.domain, row.passage_id, row.hit_rank, row.in_prompt) == (
            hit.domain, hit.passage.id, hit.rank, hit.in_prompt,
        )  # fmt: skip
        assert row.distance == pytest.approx(hit.distance, abs=1e-5)
    assert retrieval.max_distance == 1.3 and retrieval.top_k == 3 and not retrieval.note


def test_large_domains_list_the_k_nearest_and_the_next_ten(tmp_path: Path) -> None:
    engine = topic_engine(tmp_path, files=50)
    answer = engine.answer("the canal and the railroad", "topics", k=4)
    retrieval = build_pipeline(engine, answer, None).retrieval
    assert retrieval is not None and not retrieval.complete and retrieval.searched == 50
    assert [row.rank for row in retrieval.rows] == list(range(1, 15))
    assert [row.hit_rank for row in retrieval.rows[:4]] == [1, 2, 3, 4]
    table = distances_markdown(retrieval)
    assert "the 14 nearest of 50" in table and table.count("\n| ") == 15  # header + 14 rows


def test_highlighted_tokens_occur_in_the_context(view: PipelineView, answer: Answer) -> None:
    generation, prompt = view.generation, view.prompt
    assert prompt is not None and generation.generated
    context = prompt.text.split("Context:", 1)[1].split("Question:", 1)[0]
    highlighted = [t.text for t in generation.tokens if t.in_context]
    assert highlighted, "the echo generator repeats the context, so something must be highlighted"
    assert highlighted_words(generation.tokens) <= words(context)
    # The ANSI rendering colours exactly those tokens, and says the same text as the answer.
    green = re.findall(re.escape(ANSI_GREEN) + "(.*?)" + re.escape(ANSI_RESET), generation.ansi)
    assert " ".join(green).split() == " ".join(highlighted).split()
    assert strip_ansi(generation.ansi) == answer.text == generation.text


def test_prompt_step_is_the_exact_prompt_with_its_share_of_the_window(
    fake_engine: Engine, view: PipelineView, answer: Answer
) -> None:
    prompt = view.prompt
    assert prompt is not None
    assert prompt.text == answer.prompt and prompt.tokens == answer.prompt_tokens
    assert prompt.context_window == 2048 and prompt.max_answer_tokens == 200
    assert prompt.fullness == pytest.approx(100 * answer.prompt_tokens / 2048)
    used = [hit for hit in answer.hits if hit.in_prompt]
    assert len(prompt.passages) == len(used) and prompt.passages[0].startswith("[1] zoology/zorblat.md L")


def test_no_rag_answer_has_no_steps_one_to_three(fake_engine: Engine, tmp_path: Path) -> None:
    answer = fake_engine.answer(QUESTION, use_rag=False)
    view = build_pipeline(fake_engine, answer, None, attention_note="not asked")
    assert view.documents is None and view.query is None and view.retrieval is None
    assert view.prompt is not None and view.generation.generated
    assert ANSI_GREEN not in view.generation.ansi and not any(t.in_context for t in view.generation.tokens)
    data = view.to_dict()
    assert data["documents"] is None and data["query"] is None and data["retrieval"] is None
    assert data["generation"]["attention_note"] == "not asked"
    names = [path.name for path in write_pipeline(view, tmp_path / "out")]
    assert names == ["pipeline.json", "prompt.txt", "answer.ansi", "attention.txt"]
    with pytest.raises(ValueError, match="did not use retrieval"):
        embedding_map_figure(view)


def test_uncovered_answer_has_retrieval_but_no_prompt(config: Config, tmp_path: Path) -> None:
    strict = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, max_distance=0.01))
    engine = fake_engine_for(strict)
    answer = engine.answer("completely unrelated words here", "zoology")
    assert not answer.covered
    view = build_pipeline(engine, answer, RecordingAttention())
    assert view.retrieval is not None and view.prompt is None
    assert not view.generation.generated and "nothing was generated" in view.generation.attention_note
    assert view.generation.ansi == answer.text
    names = [path.name for path in write_pipeline(view, tmp_path / "out")]
    assert names == ["pipeline.json", "embedding_map.png", "distances.md", "answer.ansi", "attention.txt"]


def test_empty_domain_gives_an_empty_map_and_table(config: Config, knowledge_dir: Path, tmp_path: Path) -> None:
    (knowledge_dir / "astronomy").mkdir()
    engine = fake_engine_for(config)
    answer = engine.answer("Where is the moon of Quenth?", "astronomy")
    view = build_pipeline(engine, answer, None)
    assert not view.covered and view.retrieval is not None and view.query is not None
    assert view.retrieval.rows == () and view.query.points == () and view.query.query_xy == (0.0, 0.0)
    assert view.documents is not None and view.documents.passages == 0 and view.documents.examples == ()
    assert png_size(write_pipeline(view, tmp_path / "out")[1].read_bytes()) == (800, 600)


def test_a_retrieved_passage_gone_from_the_index_is_named(fake_engine: Engine, knowledge_dir: Path) -> None:
    answer = fake_engine.answer("quillfish spines in the cold lakes", "zoology", k=1)
    assert answer.hits[0].passage.path == "quillfish.txt"
    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    retrieval = build_pipeline(fake_engine, answer, None).retrieval
    assert retrieval is not None and retrieval.hits == ()
    assert retrieval.note == "the index changed since this answer; no longer indexed: zoology/quillfish.txt L1-2"
    assert retrieval.note in distances_markdown(retrieval)


def test_attention_comes_from_the_source_with_the_prompt_passages_and_question(
    fake_engine: Engine, answer: Answer, tmp_path: Path
) -> None:
    source = RecordingAttention()
    view = build_pipeline(fake_engine, answer, source)
    assert len(source.calls) == 1
    call = source.calls[0]
    # The prompt's numbered context blocks, exactly as the prompt holds them.
    in_prompt = list(answer.contexts)
    assert in_prompt and all(text in answer.prompt for text in in_prompt)
    assert call == {
        "prompt": answer.prompt,
        "answer": "".join(t.text for t in answer.tokens),
        "contexts": in_prompt,
        "question": answer.question,
    }
    attention = view.generation.attention
    assert attention is not None and view.generation.attention_note == ""
    data = view.to_dict()["generation"]["attention"]
    assert data["spans"][0] == {"label": "[1]", "start": 3, "end": 10} and data["heads"] == 9
    assert np.allclose(np.array(data["weights"]).sum(axis=1), 1.0, atol=1e-4)
    paths = write_pipeline(view, tmp_path / "out")
    assert [p.name for p in paths][-1] == "attention.png"
    assert png_size((tmp_path / "out" / "attention.png").read_bytes()) == (800, 600)


def test_attention_failure_leaves_a_note_not_an_error(fake_engine: Engine, answer: Answer, tmp_path: Path) -> None:
    view = build_pipeline(fake_engine, answer, BrokenAttention())
    assert view.generation.attention is None
    assert view.generation.attention_note == "attention unavailable: transformers cannot read this GGUF"
    write_pipeline(view, tmp_path / "out")
    note = (tmp_path / "out" / "attention.txt").read_text(encoding="utf-8")
    assert "transformers cannot read this GGUF" in note


def test_view_is_json_and_the_files_hold_each_step(view: PipelineView, answer: Answer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "attention.png").parent.mkdir(parents=True)
    (out / "attention.png").write_bytes(b"from an earlier run")
    paths = write_pipeline(view, out)
    assert [p.name for p in paths] == [
        "pipeline.json", "embedding_map.png", "distances.md", "prompt.txt", "answer.ansi", "attention.txt",
    ]  # fmt: skip
    assert not (out / "attention.png").exists()  # a stale picture would contradict attention.txt
    data = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    assert set(data) == {
        "question", "domain", "used_rag", "covered", "models", "timings",
        "documents", "query", "retrieval", "prompt", "generation",
    }  # fmt: skip
    assert data["question"] == QUESTION and data["prompt"]["text"] == answer.prompt
    assert len(data["query"]["points"]) == data["documents"]["passages"] == data["retrieval"]["searched"]
    assert [row["retrieved"] for row in data["retrieval"]["rows"]].count(True) == 3
    assert png_size((out / "embedding_map.png").read_bytes()) == (800, 600)
    assert (out / "prompt.txt").read_text(encoding="utf-8") == answer.prompt
    assert strip_ansi((out / "answer.ansi").read_text(encoding="utf-8")) == answer.text + "\n"
    table = (out / "distances.md").read_text(encoding="utf-8")
    assert "| 1 | " in table and "zoology/zorblat.md" in table and "hit 1" in table and "threshold 1.30" in table


# -- the pictures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("files", [5, 20, 40])
def test_map_labels_never_overlap(tmp_path: Path, files: int) -> None:
    engine = topic_engine(tmp_path, files)
    answer = engine.answer("Which canal opened with the steam ship?", "topics", k=4)
    view = build_pipeline(engine, answer, None)
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
    view = build_pipeline(engine, engine.answer("the press and the tower", "topics"), None)
    figure = embedding_map_figure(view)
    figure.canvas.draw()
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert sorted(t for t in texts if not re.fullmatch(r"\d\.\d\d|question", t)) == sorted(
        short_label(name) for name in TOPICS[:8]
    )
    assert len(view.query.points) == 32  # type: ignore[union-attr]


def fake_map(answer_tokens: int, prompt_tokens: int) -> FakeMap:
    rng = np.random.default_rng(0)
    weights = rng.random((answer_tokens, prompt_tokens)).astype(np.float32)
    weights[:, 0] += 40  # an attention sink
    weights /= weights.sum(axis=1, keepdims=True)
    spans = (("[1]", 40, 300), ("[2]", 305, 560), ("[3]", 566, 840), ("question", 850, 866))
    return FakeMap(
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


# -- the command ---------------------------------------------------------------------------------------


def run(args: list[str], knowledge: Path, data: Path) -> int:
    return main(
        [*args[:1], "--knowledge", str(knowledge), "--data-dir", str(data), *args[1:]], make_engine=fake_engine_for
    )


def test_cli_writes_every_file_and_notes_why_there_is_no_attention(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragscope.pipeline as cli_pipeline

    monkeypatch.setattr(cli_pipeline, "load_attention", lambda config: (BrokenAttention(), ""))
    out = tmp_path / "out"
    args = ["pipeline", QUESTION, "--domain", "zoology", "--k", "2", "--out", str(out)]
    assert run(args, knowledge_dir, tmp_path) == 0
    stdout = capsys.readouterr().out
    assert "passages searched; nearest zoology/zorblat.md" in stdout
    assert "attention unavailable: transformers cannot read this GGUF" in stdout
    assert f"wrote 6 files to {out}" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["pipeline.json", "embedding_map.png", "distances.md", "prompt.txt", "answer.ansi",
                            "attention.txt"])  # fmt: skip
    data = json.loads((out / "pipeline.json").read_text(encoding="utf-8"))
    assert data["domain"] == "zoology" and data["documents"]["domains"] == ["zoology"]
    assert [row["hit_rank"] for row in data["retrieval"]["rows"]][:2] == [1, 2]
    assert data["generation"]["attention"] is None
    assert "transformers cannot read this GGUF" in (out / "attention.txt").read_text(encoding="utf-8")


def test_cli_attention_picture_and_no_attention_flag(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragscope.pipeline as cli_pipeline

    monkeypatch.setattr(cli_pipeline, "load_attention", lambda config: (RecordingAttention(), ""))
    out = tmp_path / "out"
    assert run(["pipeline", QUESTION, "--out", str(out)], knowledge_dir, tmp_path / "data") == 0
    assert (out / "attention.png").is_file() and not (out / "attention.txt").exists()
    assert run(["pipeline", QUESTION, "--no-attention", "--out", str(out)], knowledge_dir, tmp_path / "data") == 0
    assert not (out / "attention.png").exists()
    assert (out / "attention.txt").read_text(encoding="utf-8").strip() == "attention was not computed (--no-attention)"
    assert run(["pipeline", QUESTION, "--no-rag", "--no-attention", "--out", str(out)], knowledge_dir, tmp_path) == 0
    assert "steps 1–3 are empty" in capsys.readouterr().out
    assert not (out / "embedding_map.png").exists() and not (out / "distances.md").exists()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["pipeline", "anything", "--domain", "astronomy"], "unknown domain 'astronomy'"),
        (["pipeline", "   "], "the question is empty"),
        (["pipeline", "fine", "--k", "0"], "k must be between 1 and 20, not 0"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    assert run([*args, "--no-attention", "--out", str(tmp_path / "out")], knowledge_dir, tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and reason in captured.err
    assert not (tmp_path / "out").exists()


def test_cli_unwritable_output_is_one_line_and_exit_2(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = write(tmp_path / "a-file", "not a folder")
    assert run(["pipeline", QUESTION, "--no-attention", "--out", str(blocker / "out")], knowledge_dir, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not write the pipeline files to" in err


def test_cli_needs_an_output_folder(knowledge_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["pipeline", QUESTION], knowledge_dir, tmp_path)
    assert exit_info.value.code == 2
