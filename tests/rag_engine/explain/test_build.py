"""Building the pipeline view with fake models: each step's data checked against numpy on the raw vectors,
step 3 saying what ranked the passages in each retrieval mode, and `Engine.explain` making the attention
model once, only when asked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from rag_engine.config import Config, RetrievalConfig
from rag_engine.engine import Engine
from rag_engine.errors import AttentionUnavailable
from rag_engine.explain.build import ANSI_GREEN, ANSI_RESET, NOT_ASKED_NOTE, build_view, pca_2d, ranking
from rag_engine.explain.view import PipelineView
from rag_engine.generate.grounding import words
from rag_engine.ingest.embedding import embedding_title
from rag_engine.records import Answer
from tests.fakes import EchoGenerator, HashingEmbedder, UniformAttention
from tests.rag_engine.explain.helpers import (
    QUESTION,
    BrokenAttention,
    fake_engine_for,
    highlighted_words,
    strip_ansi,
    topic_engine,
)


def stored_vectors(engine: Engine, view: PipelineView) -> npt.NDArray[np.float64]:
    """The raw stored vectors of the view's passages, in the view's order, read from the index directly."""
    assert view.query is not None
    rows = []
    for point in view.query.points:
        index = engine.snapshot(point.domain).space.index
        rows.append(index.vectors([point.passage_id])[0])
    return np.vstack(rows).astype(np.float64)


@pytest.fixture
def answer(fake_engine: Engine) -> Answer:
    return fake_engine.answer(QUESTION, k=3)


@pytest.fixture
def view(fake_engine: Engine, answer: Answer) -> PipelineView:
    return fake_engine.explain(answer, attention=False)


# -- the data ------------------------------------------------------------------------------------------


def test_documents_step_describes_every_searched_domain(fake_engine: Engine, view: PipelineView) -> None:
    documents = view.documents
    assert documents is not None
    assert documents.domains == ("geology", "zoology")
    snapshots = [fake_engine.snapshot(name) for name in documents.domains]
    assert documents.passages == sum(len(s.space.passages) for s in snapshots)
    assert documents.files == 3 and documents.dimension == 64
    assert documents.embedding_model == embedding_title(fake_engine.config.embedding)  # the model and its backend
    assert len(documents.examples) == 3
    assert len({(e.domain, e.path) for e in documents.examples}) == 3  # one per file while there are files
    for example in documents.examples:
        assert 0 < len(example.text) <= 160 and example.span.startswith("L")


def test_projection_equals_numpys_pca(tmp_path: Path) -> None:
    engine = topic_engine(tmp_path, files=6, passages_per_file=3)
    answer = engine.answer("When was the canal with the steam engine built?", "topics")
    view = engine.explain(answer, attention=False)
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
    view = fake_engine.explain(answer, attention=False)
    retrieval = view.retrieval
    assert retrieval is not None and retrieval.complete and view.documents is not None
    assert retrieval.searched == len(retrieval.rows) == view.documents.passages
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
    retrieval = engine.explain(answer, attention=False).retrieval
    assert retrieval is not None and not retrieval.complete and retrieval.searched == 50
    assert [row.rank for row in retrieval.rows] == list(range(1, 15))
    assert [row.hit_rank for row in retrieval.rows[:4]] == [1, 2, 3, 4]


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


def test_prompt_step_is_the_exact_prompt_with_its_share_of_the_window(view: PipelineView, answer: Answer) -> None:
    prompt = view.prompt
    assert prompt is not None
    assert prompt.text == answer.prompt and prompt.tokens == answer.prompt_tokens
    assert prompt.context_window == 2048 and prompt.max_answer_tokens == 200
    assert prompt.fullness == pytest.approx(100 * answer.prompt_tokens / 2048)
    used = [hit for hit in answer.hits if hit.in_prompt]
    assert len(prompt.passages) == len(used) and prompt.passages[0].startswith("[1] zoology/zorblat.md L")


def test_no_rag_answer_has_no_steps_one_to_three(fake_engine: Engine) -> None:
    answer = fake_engine.answer(QUESTION, use_rag=False)
    view = build_view(answer, fake_engine.config, fake_engine.snapshot, None, attention_note="not asked")
    assert view.documents is None and view.query is None and view.retrieval is None
    assert view.prompt is not None and view.generation.generated
    assert ANSI_GREEN not in view.generation.ansi and not any(t.in_context for t in view.generation.tokens)
    data = view.to_dict()
    assert data["documents"] is None and data["query"] is None and data["retrieval"] is None
    assert data["generation"]["attention_note"] == "not asked"


def test_uncovered_answer_has_retrieval_but_no_prompt(config: Config) -> None:
    strict = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, max_distance=0.01))
    made: list[int] = []

    def make() -> UniformAttention:
        made.append(1)
        return UniformAttention()

    engine = fake_engine_for(strict, make)
    answer = engine.answer("completely unrelated words here", "zoology")
    assert not answer.covered
    view = engine.explain(answer)
    assert view.retrieval is not None and view.prompt is None
    assert not view.generation.generated and "nothing was generated" in view.generation.attention_note
    assert view.generation.ansi == answer.text
    assert made == []  # nothing to attend over: the attention model is not even made


def test_empty_domain_gives_an_empty_map_and_table(config: Config, knowledge_dir: Path) -> None:
    (knowledge_dir / "astronomy").mkdir()
    engine = fake_engine_for(config)
    view = engine.explain(engine.answer("Where is the moon of Quenth?", "astronomy"))
    assert not view.covered and view.retrieval is not None and view.query is not None
    assert view.retrieval.rows == () and view.query.points == () and view.query.query_xy == (0.0, 0.0)
    assert view.documents is not None and view.documents.passages == 0 and view.documents.examples == ()


def test_a_retrieved_passage_gone_from_the_index_is_named(fake_engine: Engine, knowledge_dir: Path) -> None:
    answer = fake_engine.answer("quillfish spines in the cold lakes", "zoology", k=1)
    assert answer.hits[0].passage.path == "quillfish.txt"
    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    retrieval = fake_engine.explain(answer, attention=False).retrieval
    assert retrieval is not None and retrieval.hits == ()
    assert retrieval.note == "the index changed since this answer; no longer indexed: zoology/quillfish.txt L1-2"


# -- what ranked the passages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "title", "says", "never"),
    [
        ("dense", "Retrieve with kNN", ["3 nearest of 3 passages by Euclidean distance"], ["BM25", "fused"]),
        ("bm25", "Retrieve with BM25", ["3 best of 3 passages by BM25 word scores", "did not rank"], ["nearest"]),
        ("hybrid", "Retrieve with kNN + BM25, fused", ["kNN list", "BM25 list", "0.55 kNN, 0.45 BM25"], ["nearest"]),
    ],
)
def test_step_three_says_what_ranked_the_passages_in_each_mode(
    fake_engine: Engine, mode: str, title: str, says: list[str], never: list[str]
) -> None:
    answer = fake_engine.answer(QUESTION, k=3, mode=mode)
    retrieval = fake_engine.explain(answer, attention=False).retrieval
    assert retrieval is not None and answer.mode == mode
    assert (retrieval.mode, retrieval.title) == (mode, title)
    assert all(part in retrieval.ranking for part in says), retrieval.ranking
    assert not any(part in retrieval.ranking for part in never), retrieval.ranking
    data = retrieval.to_dict()
    assert (data["mode"], data["title"], data["ranking"]) == (mode, title, retrieval.ranking)
    # Whatever ranked them, the hits are the answer's and the table stays in distance order.
    assert [row.hit_rank for row in retrieval.hits] == [hit.rank for hit in answer.hits]
    assert [row.distance for row in retrieval.rows] == sorted(row.distance for row in retrieval.rows)


def test_the_ranking_names_the_fusion_and_mmr_settings() -> None:
    rrf = RetrievalConfig(fusion="rrf", rrf_k=30.0)
    assert "reciprocal rank fusion, 1 / (30 + rank)" in ranking("hybrid", rrf, 4, 100)
    assert "blend" in ranking("hybrid", RetrievalConfig(blend_weight=0.7), 4, 100)
    assert "(0.70 kNN, 0.30 BM25)" in ranking("hybrid", RetrievalConfig(blend_weight=0.7), 4, 100)
    # The fusion does not concern the single-list modes.
    dense = ranking("dense", rrf, 4, 100)
    assert dense == "The 4 nearest of 100 passages by Euclidean distance (k nearest neighbours)."
    diverse = RetrievalConfig(mmr_lambda=0.5)
    assert ranking("bm25", diverse, 2, 9).endswith("by maximal marginal relevance (λ = 0.50).")


# -- attention -----------------------------------------------------------------------------------------


def test_attention_comes_from_the_source_with_the_prompt_passages_and_question(config: Config) -> None:
    source = UniformAttention()
    engine = fake_engine_for(config, lambda: source)
    answer = engine.answer(QUESTION, k=3)
    view = engine.explain(answer)
    assert len(source.calls) == 1
    # The prompt's numbered context blocks, exactly as the prompt holds them.
    in_prompt = list(answer.contexts)
    assert in_prompt and all(text in answer.prompt for text in in_prompt)
    assert source.calls[0] == {
        "prompt": answer.prompt,
        "answer": "".join(t.text for t in answer.tokens),
        "contexts": in_prompt,
        "question": answer.question,
    }
    assert view.generation.attention is not None and view.generation.attention_note == ""
    data = view.to_dict()["generation"]["attention"]
    assert data["spans"][0] == {"label": "[1]", "start": 3, "end": 10} and data["heads"] == 9
    assert np.allclose(np.array(data["weights"]).sum(axis=1), 1.0, atol=1e-4)


def test_explain_makes_the_attention_model_once_and_only_when_asked(config: Config) -> None:
    made: list[UniformAttention] = []

    def make() -> UniformAttention:
        made.append(UniformAttention())
        return made[-1]

    engine = fake_engine_for(config, make)
    answer = engine.answer(QUESTION, k=3)
    skipped = engine.explain(answer, attention=False)
    assert made == [] and skipped.generation.attention is None
    assert skipped.generation.attention_note == NOT_ASKED_NOTE == "attention was not computed (--no-attention)"
    first, second = engine.explain(answer), engine.explain(engine.answer(QUESTION, use_rag=False))
    assert first.generation.attention is not None and second.generation.attention is not None
    # An engine for another config (the SQuAD harness's) shares the models, the attention model too.
    engine.with_config(config).explain(answer)
    assert len(made) == 1 and len(made[0].calls) == 3


def test_attention_failure_leaves_a_note_not_an_error(config: Config) -> None:
    engine = fake_engine_for(config, BrokenAttention)
    view = engine.explain(engine.answer(QUESTION, k=3))
    assert view.generation.attention is None
    assert view.generation.attention_note == "attention unavailable: transformers cannot read this GGUF"


def test_an_attention_model_that_cannot_be_made_leaves_a_note_and_is_asked_again(config: Config) -> None:
    tries: list[int] = []

    def refuse() -> UniformAttention:
        tries.append(1)
        raise AttentionUnavailable("attention needs torch, transformers and gguf: no module named 'torch'")

    engine = fake_engine_for(config, refuse)
    answer = engine.answer(QUESTION, k=3)
    for _ in range(2):
        note = engine.explain(answer).generation.attention_note
        assert note == "attention unavailable: attention needs torch, transformers and gguf: no module named 'torch'"
    assert len(tries) == 2  # a failed factory is not remembered as made


def test_the_default_attention_model_reads_the_configured_gguf(config: Config, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    elsewhere = dataclasses.replace(config, generation=dataclasses.replace(config.generation, model_path=str(missing)))
    engine = Engine(elsewhere, embedder=HashingEmbedder, generator=EchoGenerator)  # the attention model by default
    note = engine.explain(engine.answer(QUESTION, k=3)).generation.attention_note
    assert note.startswith("attention unavailable: ") and "no-such-model.gguf" in note
