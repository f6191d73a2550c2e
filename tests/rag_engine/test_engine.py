"""The facade with fake models: the trace, persistence, staleness, the threshold, no-RAG and bad input."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from rag_engine.config import MAX_K, Config
from rag_engine.engine import Engine, generator_name
from rag_engine.errors import KnowledgeFolderError, QuestionError, UnknownDomainError
from rag_engine.ingest.embedding import embedding_title
from rag_engine.records import Query
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder


def test_answer_carries_the_whole_trace(fake_engine: Engine, generator: EchoGenerator) -> None:
    streamed: list[str] = []
    answer = fake_engine.answer("Who described the zorblat?", "zoology", on_token=streamed.append)
    assert answer.used_rag and answer.covered and answer.domain == "zoology"
    assert answer.hits[0].passage.path == "zorblat.md"
    assert [h.distance for h in answer.hits] == sorted(h.distance for h in answer.hits)
    assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    assert answer.prompt == generator.prompts[-1]
    assert "Who described the zorblat?" in answer.prompt and "Agatha Plimm" in answer.prompt
    assert "".join(streamed).strip() == answer.text
    assert "".join(t.text for t in answer.tokens).strip() == answer.text
    assert any(t.in_context for t in answer.tokens)
    assert answer.prompt_tokens == generator.count_tokens(answer.prompt)
    assert {"embed_query", "search", "build_prompt", "generate", "total"} <= set(answer.timings)
    embedding = embedding_title(fake_engine.config.embedding)  # the model and its backend
    assert embedding.startswith("all-MiniLM-L6-v2")
    assert answer.models == {"embedding": embedding, "generator": generator_name(fake_engine.config)}
    data = answer.to_dict()
    assert data["sources"][0]["text"] == answer.hits[0].passage.text
    assert {"answer", "used_rag", "domain", "sources", "prompt", "timings", "models"} <= set(data)


def test_without_a_domain_every_domain_is_searched(fake_engine: Engine) -> None:
    answer = fake_engine.answer("Varnholm basalt columns lava", k=3)
    assert {h.domain for h in answer.hits} == {"geology", "zoology"}
    assert answer.hits[0].domain == "geology"


def test_norag_has_no_sources_and_no_context(fake_engine: Engine, generator: EchoGenerator) -> None:
    answer = fake_engine.answer("Who described the zorblat?", "zoology", use_rag=False)
    assert not answer.used_rag and answer.hits == () and answer.to_dict()["sources"] == []
    assert "Agatha" not in answer.prompt and "Who described the zorblat?" in answer.prompt
    assert not any(t.in_context for t in answer.tokens)


def test_question_far_from_every_passage_is_not_answered(config: Config, embedder: HashingEmbedder) -> None:
    generator = EchoGenerator()
    strict = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, max_distance=0.2))
    engine = Engine(strict, embedder=lambda: embedder, generator=lambda: generator)
    answer = engine.answer("Completely unrelated question about stock markets", "zoology")
    assert not answer.covered and answer.text == ""  # facts only: each surface words them
    assert answer.closest_distance == min(hit.distance for hit in answer.hits) > answer.max_distance == 0.2
    assert answer.to_dict()["closest_distance"] == answer.closest_distance
    assert answer.hits and generator.prompts == []  # the model was never asked


def test_stored_index_is_reused_without_embedding_again(config: Config) -> None:
    # Whole passages in the prompt: evidence selection would embed the passages' sentences (not the index).
    config = dataclasses.replace(config, evidence=dataclasses.replace(config.evidence, sentences=False))
    first = HashingEmbedder()
    Engine(config, embedder=lambda: first, generator=EchoGenerator).answer("zorblat", "zoology")
    assert first.texts_embedded > 1
    second = HashingEmbedder()
    answer = Engine(config, embedder=lambda: second, generator=EchoGenerator).answer("zorblat", "zoology")
    assert second.texts_embedded == 1  # only the question
    assert answer.hits[0].passage.path == "zorblat.md"


def test_a_changed_file_rebuilds_its_domain(config: Config, knowledge_dir: Path) -> None:
    embedder = HashingEmbedder()
    engine = Engine(config, embedder=lambda: embedder, generator=EchoGenerator)
    engine.answer("zorblat", "zoology")
    path = write(knowledge_dir / "zoology" / "zorblat.md", "The zorblat now eats purple lichen.\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    answer = engine.answer("What does the zorblat eat?", "zoology")
    assert "purple lichen" in answer.hits[0].passage.text


def test_changed_embedding_model_setting_rebuilds_instead_of_mixing(config: Config) -> None:
    Engine(config, embedder=HashingEmbedder, generator=EchoGenerator).domain_stats("zoology")
    other = dataclasses.replace(config, embedding=dataclasses.replace(config.embedding, model="other-model"))
    embedder = HashingEmbedder(name="other-model")
    Engine(other, embedder=lambda: embedder, generator=EchoGenerator).domain_stats("zoology")
    assert embedder.texts_embedded > 0


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(fake_engine: Engine, knowledge_dir: Path) -> None:
    write(knowledge_dir / "zoology" / "broken.pdf", b"%PDF-1.4\ngarbage")
    write(knowledge_dir / "zoology" / "photo.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IHDR")
    write(knowledge_dir / "zoology" / "empty.md", "")
    update = fake_engine.index("zoology")
    assert (update.added, update.skipped, update.failed) == (2, 2, 1)
    stats = fake_engine.domain_stats("zoology")
    assert [s.path for s in stats.failed] == ["broken.pdf"]
    assert set(stats.files) == {"zorblat.md", "quillfish.txt"}
    reasons = {s.path: s.reason for s in stats.skipped}
    assert set(reasons) == {"broken.pdf", "photo.md", "empty.md"}
    assert "corrupt PDF" in reasons["broken.pdf"] and "binary" in reasons["photo.md"] and "empty" in reasons["empty.md"]
    assert fake_engine.answer("zorblat moss", "zoology").hits[0].passage.path == "zorblat.md"


def test_unknown_domain_lists_the_known_ones(fake_engine: Engine) -> None:
    with pytest.raises(UnknownDomainError, match="known: geology, zoology"):
        fake_engine.answer("anything", "astronomy")


def test_missing_knowledge_folder(config: Config, tmp_path: Path) -> None:
    engine = Engine(config.with_paths(knowledge_dir=tmp_path / "nowhere"), HashingEmbedder, EchoGenerator)
    with pytest.raises(KnowledgeFolderError, match="not found"):
        engine.answer("anything")


@pytest.mark.parametrize(("question", "k"), [("", None), ("x" * 5000, None), ("fine", 0), ("fine", MAX_K + 1)])
def test_bad_questions_raise_before_any_model_is_used(config: Config, question: str, k: int | None) -> None:
    def no_model() -> HashingEmbedder:
        raise AssertionError("a model was loaded for a bad question")

    engine = Engine(config, embedder=no_model, generator=no_model)  # type: ignore[arg-type,return-value]
    with pytest.raises(QuestionError):
        engine.answer(question, "zoology", k=k)


def test_empty_domain_answers_that_nothing_is_indexed(fake_engine: Engine, knowledge_dir: Path) -> None:
    (knowledge_dir / "empty").mkdir()
    answer = fake_engine.answer("zorblat", "empty")
    assert not answer.covered and answer.hits == () and answer.closest_distance is None


def test_check_is_the_one_check_and_answer_takes_its_query(fake_engine: Engine, generator: EchoGenerator) -> None:
    query = fake_engine.check("  Where does the zorblat live?  ", "zoology", 2, "bm25")
    assert query == Query("Where does the zorblat live?", "zoology", ("zoology",), 2, "bm25")
    everywhere = fake_engine.check("zorblat")
    assert everywhere.domain is None and everywhere.domains == tuple(fake_engine.domains())
    assert (everywhere.k, everywhere.mode) == (fake_engine.config.retrieval.top_k, fake_engine.config.retrieval.mode)
    answer = fake_engine.answer(query)
    assert (answer.question, answer.domain, answer.top_k, answer.mode) == (query.question, "zoology", 2, "bm25")
    assert len(answer.hits) <= 2


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (("   ",), "the question is empty"),
        (("x" * 5000,), "5,000 characters long; the limit is 1,000"),
        (("fine", None, 0), f"k must be between 1 and {MAX_K}, not 0"),
        (("fine", None, MAX_K + 1), f"k must be between 1 and {MAX_K}"),
        (("fine", None, None, "fuzzy"), "unknown retrieval mode 'fuzzy'"),
    ],
)
def test_check_refuses_bad_input_with_the_reason(fake_engine: Engine, arguments: tuple, reason: str) -> None:
    with pytest.raises(QuestionError, match=reason.replace("(", r"\(")):
        fake_engine.check(*arguments)


def test_check_refuses_an_unknown_domain_naming_the_known(fake_engine: Engine) -> None:
    with pytest.raises(UnknownDomainError, match="known: geology, zoology"):
        fake_engine.check("zorblat", "botany")
    assert fake_engine.domain_folder("zoology") == fake_engine.folder / "zoology"
    with pytest.raises(UnknownDomainError):
        fake_engine.domain_folder("../etc")


def test_a_shared_model_engine_loads_nothing_again(fake_engine: Engine, config: Config, tmp_path: Path) -> None:
    other = fake_engine.with_config(config.with_paths(data_dir=tmp_path / "other"))
    assert other.embedder() is fake_engine.embedder() and other.generator() is fake_engine.generator()
