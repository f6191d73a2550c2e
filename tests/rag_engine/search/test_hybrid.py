"""Hybrid retrieval with fake models: the fusion arithmetic, the lexical index kept in step with every snapshot
(add, edit, delete, restart), true distances for every hit whatever the mode, and the per-question mode."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rag_engine.config import Config, ConfigError, load_config
from rag_engine.engine import Engine
from rag_engine.errors import QuestionError
from rag_engine.ingest.incremental import DomainIndex
from rag_engine.search.fusion import Fusion, blend, min_max, reciprocal_rank
from rag_engine.search.retrieval import search
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.rag_engine.ingest.test_incremental import edit


# -- fusion ----------------------------------------------------------------------------------------------
def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank_per_list() -> None:
    fused = reciprocal_rank([["a", "b", "c"], ["c", "a"]], k=60)
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert sorted(fused, key=lambda key: -fused[key]) == ["a", "c", "b"]
    assert reciprocal_rank([["x"], []], k=0) == {"x": 1.0}
    with pytest.raises(ValueError):
        reciprocal_rank([["x"]], k=-1)


def test_blend_mixes_min_max_normalised_scores() -> None:
    dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    lexical = {"a": 0.0, "b": 10.0, "c": 5.0}
    assert min_max(dense) == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})
    fused = blend(dense, lexical, 0.25)
    assert fused == pytest.approx({"a": 0.25, "b": 0.25 * 0.5 + 0.75, "c": 0.75 * 0.5})
    assert blend(dense, lexical, 1.0) == pytest.approx(min_max(dense))
    assert blend(dense, lexical, 0.0) == pytest.approx(min_max(lexical))
    # All equal: no score stands out, so none gets credit.
    assert min_max({"a": 3.0, "b": 3.0}) == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError):
        blend(dense, lexical, 1.5)


def test_fusion_settings_come_from_the_config(tmp_path: Path) -> None:
    config_file = write(
        tmp_path / "config.toml",
        '[retrieval]\nmode = "hybrid"\nfusion = "rrf"\nrrf_k = 10\nblend_weight = 0.3\nfusion_candidates = 7\n',
    )
    config = load_config(config_file)
    assert config.retrieval.mode == "hybrid"
    assert Fusion.from_config(config.retrieval) == Fusion(method="rrf", weight=0.3, rrf_k=10.0, candidates=7)
    assert Fusion.from_config(Config().retrieval) == Fusion()  # one set of defaults


@pytest.mark.parametrize(
    "line", ['mode = "sparse"', 'fusion = "max"', "blend_weight = 1.5", "rrf_k = -1", "fusion_candidates = 0"]
)
def test_bad_retrieval_settings_are_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path / "config.toml", f"[retrieval]\n{line}\n"))


# -- the lexical index beside every snapshot ------------------------------------------------------------
def assert_in_step(snapshot: DomainIndex) -> None:
    """The FAISS index, the BM25 index and the passages hold exactly the same ids."""
    space = snapshot.space
    assert space.lexical.ids() == frozenset(space.passages)
    assert len(space.index) == len(space.passages) == len(space.lexical)
    assert space.index.vectors(list(space.passages)).shape == (len(space.passages), space.index.dimension)


def lexical_paths(engine: Engine, question: str, domain: str = "zoology") -> list[str]:
    return [hit.passage.path for hit in engine.retrieve(question, domain, k=10, mode="bm25")]


def test_the_lexical_index_follows_adds_edits_and_deletes(fake_engine: Engine, knowledge_dir: Path) -> None:
    fake_engine.index("zoology")
    first = fake_engine.snapshot("zoology")
    assert_in_step(first)
    assert lexical_paths(fake_engine, "Agatha Plimm") == ["zorblat.md"]

    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    fake_engine.index("zoology")
    assert_in_step(fake_engine.snapshot("zoology"))
    assert lexical_paths(fake_engine, "glass newt") == ["newt.md"]

    edit(knowledge_dir / "zoology" / "zorblat.md", "# The zorblat\n\nThe zorblat eats purple lichen.\n")
    fake_engine.index("zoology")
    assert_in_step(fake_engine.snapshot("zoology"))
    assert lexical_paths(fake_engine, "Agatha Plimm") == []  # the old text is gone from BM25 too
    assert lexical_paths(fake_engine, "purple lichen") == ["zorblat.md"]

    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    fake_engine.index("zoology")
    latest = fake_engine.snapshot("zoology")
    assert_in_step(latest)
    assert lexical_paths(fake_engine, "quillfish spines") == []
    # The first snapshot was never touched: queries still using it see what they saw.
    assert_in_step(first)
    assert first.space.lexical.search("Agatha Plimm", 5)[1].tolist() != []
    assert first.space.lexical is not latest.space.lexical


def test_a_restart_rebuilds_the_same_lexical_index(config: Config, fake_engine: Engine) -> None:
    before = lexical_paths(fake_engine, "valley of Quenth blue moss lakes")
    hits_before = fake_engine.retrieve("valley of Quenth blue moss lakes", "zoology", k=3, mode="hybrid")
    model = HashingEmbedder()
    restarted = Engine(config, embedder=lambda: model, generator=EchoGenerator)
    snapshot = restarted.snapshot("zoology")
    assert model.texts_embedded == 0  # loaded from disk, not re-embedded
    assert_in_step(snapshot)
    assert lexical_paths(restarted, "valley of Quenth blue moss lakes") == before
    hits_after = restarted.retrieve("valley of Quenth blue moss lakes", "zoology", k=3, mode="hybrid")
    assert [h.passage.id for h in hits_after] == [h.passage.id for h in hits_before]
    assert [h.score for h in hits_after] == pytest.approx([h.score for h in hits_before])


# -- hits: true distances, ranks and scores in every mode ------------------------------------------------
ANIMALS = ["newt", "heron", "otter", "lynx", "marten", "vole", "stoat", "badger", "wren", "pike"]


@pytest.fixture
def more_animals(knowledge_dir: Path) -> Path:
    """Ten more small zoology files, so that rankings have something to rank."""
    for n, animal in enumerate(ANIMALS):
        lake = "the cold lakes of Varnholm" if n % 2 else "the valley of Quenth"
        write(
            knowledge_dir / "zoology" / f"{animal}.md", f"The {animal} lives near {lake} and eats {ANIMALS[n - 1]}s.\n"
        )
    return knowledge_dir


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_hit_reports_its_true_euclidean_distance(
    fake_engine: Engine, embedder: HashingEmbedder, more_animals: Path, mode: str
) -> None:
    question = "Which lakes does the quillfish swim in, and what does the zorblat eat?"
    hits = fake_engine.retrieve(question, k=6, mode=mode)
    assert len(hits) == 6
    assert hits and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    query = embedder.embed([question])[0]
    for hit in hits:
        vector = fake_engine.snapshot(hit.domain).space.index.vectors([hit.passage.id])[0]
        assert hit.distance == pytest.approx(float(np.linalg.norm(vector - query)), abs=1e-5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)  # rank 1 is the best of the mode
    if mode == "dense":
        assert [h.dense_rank for h in hits] == list(range(1, len(hits) + 1)) and all(
            h.lexical_rank is None for h in hits
        )
        assert scores == pytest.approx([1 - h.distance**2 / 2 for h in hits], abs=1e-5)  # the cosine
    if mode == "bm25":
        assert [h.lexical_rank for h in hits] == list(range(1, len(hits) + 1))
    if mode == "hybrid":
        assert all(h.dense_rank is not None or h.lexical_rank is not None for h in hits)


def test_bm25_finds_a_rare_word_the_dense_side_misses(fake_engine: Engine, knowledge_dir: Path) -> None:
    # Many passages share every word of the question but one; only one passage has that rare word.
    for n in range(12):
        write(knowledge_dir / "zoology" / f"moss{n}.md", f"The blue moss of the Quenth valley, note {n}.\n")
    write(knowledge_dir / "zoology" / "rare.md", "Snorkelwort.\n")
    question = "blue moss Quenth valley snorkelwort"
    assert fake_engine.retrieve(question, "zoology", k=1, mode="bm25")[0].passage.path == "rare.md"
    hybrid = fake_engine.retrieve(question, "zoology", k=3, mode="hybrid")
    assert "rare.md" in [h.passage.path for h in hybrid]


def test_hybrid_with_all_weight_on_one_side_is_that_side(
    fake_engine: Engine, embedder: HashingEmbedder, more_animals: Path
) -> None:
    fake_engine.index("zoology")
    fake_engine.index("geology")
    spaces = [fake_engine.snapshot(name).space for name in ("geology", "zoology")]
    question = "Varnholm lakes and the valley of Quenth"
    query = embedder.embed([question])[0]

    def ids(mode: str, fusion: Fusion | None = None, k: int = 3) -> list[int]:
        return [h.passage.id for h in search(query, spaces, k, text=question, mode=mode, fusion=fusion)]

    assert ids("dense", k=5) != ids("bm25", k=5)  # the two sides disagree, so the checks below mean something
    assert ids("hybrid", Fusion(weight=1.0), k=5) == ids("dense", k=5)
    assert ids("hybrid", Fusion(weight=0.0), k=5) == ids("bm25", k=5)
    rrf = search(query, spaces, 6, text=question, mode="hybrid", fusion=Fusion(method="rrf", rrf_k=60))
    for hit in rrf:
        expected = sum(1 / (60 + rank) for rank in (hit.dense_rank, hit.lexical_rank) if rank is not None)
        assert hit.score == pytest.approx(expected)


def test_mmr_works_in_the_fused_modes(fake_engine: Engine, config: Config, embedder: HashingEmbedder) -> None:
    diverse = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mmr_lambda=0.5))
    engine = Engine(diverse, embedder=lambda: embedder, generator=EchoGenerator)
    for mode in ("bm25", "hybrid"):
        hits = engine.retrieve("zorblat quillfish basalt Varnholm Quenth", k=2, mode=mode)
        assert len(hits) == 2 and hits[0].score >= hits[1].score


# -- the mode of a question ------------------------------------------------------------------------------
def test_the_mode_is_per_question_with_the_config_as_default(
    config: Config, embedder: HashingEmbedder, generator: EchoGenerator
) -> None:
    hybrid_config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode="hybrid"))
    engine = Engine(hybrid_config, embedder=lambda: embedder, generator=lambda: generator)
    answer = engine.answer("Who described the zorblat?", "zoology")
    assert answer.mode == "hybrid" and answer.to_dict()["mode"] == "hybrid"
    assert "Agatha Plimm" in answer.prompt
    assert engine.answer("Who described the zorblat?", "zoology", mode="bm25").mode == "bm25"
    source = engine.answer("Who described the zorblat?", "zoology", mode="dense").to_dict()["sources"][0]
    assert {"distance", "score", "dense_rank", "lexical_rank"} <= set(source)
    with pytest.raises(QuestionError, match="retrieval mode"):
        engine.retrieve("Who described the zorblat?", "zoology", mode="sparse")


def test_bm25_with_no_shared_word_says_so(fake_engine: Engine) -> None:
    answer = fake_engine.answer("xylophone", "zoology", mode="bm25")
    assert not answer.covered and not answer.hits and answer.mode == "bm25"
    from ragscope.render import not_covered

    assert not_covered(answer) == (
        "I can't answer that from the zoology documents: no passage shares a word with the question."
    )


def test_the_terminal_shows_each_hybrid_source_in_both_candidate_lists(fake_engine: Engine) -> None:
    from ragscope.render import sources

    answer = fake_engine.answer("Who described the zorblat in 1887?", "zoology", mode="hybrid")
    first = answer.hits[0]
    assert first.dense_rank is not None or first.lexical_rank is not None
    expected = "dense {}, bm25 {}".format(
        *(f"#{rank}" if rank is not None else "–" for rank in (first.dense_rank, first.lexical_rank))
    )
    assert first.retriever_ranks() == expected
    assert f"[{expected}]" in sources(answer) and "ranked by hybrid" in sources(answer)
    assert "[dense" not in sources(fake_engine.answer("Who described the zorblat in 1887?", "zoology"))
