"""The pipeline view's files: which are written for which answer, what each holds, the distance table as
Markdown, and stale files of an earlier run removed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import PipelineOutputError
from rag_engine.explain.build import build_view
from rag_engine.explain.files import distances_markdown, write_pipeline
from rag_engine.explain.view import PipelineView
from tests.conftest import write
from tests.fakes import UniformAttention
from tests.rag_engine.explain.helpers import QUESTION, fake_engine_for, png_size, strip_ansi, topic_engine


@pytest.fixture
def view(fake_engine: Engine) -> PipelineView:
    return fake_engine.explain(fake_engine.answer(QUESTION, k=3), attention=False)


def test_view_is_json_and_the_files_hold_each_step(view: PipelineView, tmp_path: Path) -> None:
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
    assert view.prompt is not None
    assert data["question"] == QUESTION and data["prompt"]["text"] == view.prompt.text
    assert len(data["query"]["points"]) == data["documents"]["passages"] == data["retrieval"]["searched"]
    assert [row["retrieved"] for row in data["retrieval"]["rows"]].count(True) == 3
    assert data["retrieval"]["mode"] == "dense" and data["retrieval"]["title"] == "Retrieve with kNN"
    assert png_size((out / "embedding_map.png").read_bytes()) == (800, 600)
    assert (out / "prompt.txt").read_text(encoding="utf-8") == view.prompt.text
    assert strip_ansi((out / "answer.ansi").read_text(encoding="utf-8")) == view.generation.text + "\n"
    table = (out / "distances.md").read_text(encoding="utf-8")
    assert "| 1 | " in table and "zoology/zorblat.md" in table and "hit 1" in table and "threshold 1.30" in table
    assert "The 3 nearest of 3 passages by Euclidean distance" in table


def test_attention_picture_replaces_the_note(config: Config, tmp_path: Path) -> None:
    engine = fake_engine_for(config, UniformAttention)
    view = engine.explain(engine.answer(QUESTION, k=3))
    paths = write_pipeline(view, tmp_path / "out")
    assert [p.name for p in paths][-1] == "attention.png" and not (tmp_path / "out" / "attention.txt").exists()
    assert png_size((tmp_path / "out" / "attention.png").read_bytes()) == (800, 600)


def test_failed_attention_is_explained_in_attention_txt(config: Config, tmp_path: Path) -> None:
    engine = fake_engine_for(config)  # its attention model cannot read the GGUF
    write_pipeline(engine.explain(engine.answer(QUESTION, k=3)), tmp_path / "out")
    note = (tmp_path / "out" / "attention.txt").read_text(encoding="utf-8")
    assert "transformers cannot read this GGUF" in note


def test_no_rag_answer_writes_no_map_and_no_table(fake_engine: Engine, tmp_path: Path) -> None:
    answer = fake_engine.answer(QUESTION, use_rag=False)
    view = build_view(answer, fake_engine.config, fake_engine.snapshot, None, attention_note="not asked")
    names = [path.name for path in write_pipeline(view, tmp_path / "out")]
    assert names == ["pipeline.json", "prompt.txt", "answer.ansi", "attention.txt"]
    assert (tmp_path / "out" / "attention.txt").read_text(encoding="utf-8") == "not asked\n"


def test_uncovered_answer_writes_no_prompt(config: Config, tmp_path: Path) -> None:
    strict = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, max_distance=0.01))
    engine = fake_engine_for(strict, UniformAttention)
    view = engine.explain(engine.answer("completely unrelated words here", "zoology"))
    names = [path.name for path in write_pipeline(view, tmp_path / "out")]
    assert names == ["pipeline.json", "embedding_map.png", "distances.md", "answer.ansi", "attention.txt"]


def test_empty_domain_still_draws_a_map(config: Config, knowledge_dir: Path, tmp_path: Path) -> None:
    (knowledge_dir / "astronomy").mkdir()
    engine = fake_engine_for(config)
    view = engine.explain(engine.answer("Where is the moon of Quenth?", "astronomy"), attention=False)
    assert png_size(write_pipeline(view, tmp_path / "out")[1].read_bytes()) == (800, 600)


def test_large_domains_table_lists_the_k_nearest_and_the_next_ten(tmp_path: Path) -> None:
    engine = topic_engine(tmp_path, files=50)
    retrieval = engine.explain(engine.answer("the canal and the railroad", "topics", k=4), attention=False).retrieval
    assert retrieval is not None
    table = distances_markdown(retrieval)
    assert "the 14 nearest of 50" in table and table.count("\n| ") == 15  # header + 14 rows


def test_the_table_names_a_passage_gone_from_the_index(fake_engine: Engine, knowledge_dir: Path) -> None:
    answer = fake_engine.answer("quillfish spines in the cold lakes", "zoology", k=1)
    (knowledge_dir / "zoology" / "quillfish.txt").unlink()
    retrieval = fake_engine.explain(answer, attention=False).retrieval
    assert retrieval is not None and retrieval.note
    assert retrieval.note in distances_markdown(retrieval)


def test_an_unwritable_folder_is_a_pipeline_output_error(view: PipelineView, tmp_path: Path) -> None:
    blocker = write(tmp_path / "a-file", "not a folder")
    with pytest.raises(PipelineOutputError, match="could not write the pipeline files to"):
        write_pipeline(view, blocker / "out")
