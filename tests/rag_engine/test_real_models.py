"""Integration with the real parts: all-MiniLM-L6-v2, SmolLM2 through llama-cpp-python, FAISS, and the
shipped knowledge. Slower than the unit tests (models load once per session), so marked `real_models`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_engine.config import Config, load_config
from rag_engine.engine import Engine, generator_name
from rag_engine.generate.generation import LlamaGenerator
from rag_engine.generate.prompt import build_prompt
from ragscope.cli import main
from tests.conftest import REPO, SHIPPED_KNOWLEDGE, write
from tests.pdf import make_pdf

pytestmark = pytest.mark.real_models

DOMAINS = ["air-quality", "cooking", "history", "medicine"]


def all_questions(domain: str) -> list[dict[str, Any]]:
    lines = (SHIPPED_KNOWLEDGE / domain / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def questions(domain: str) -> list[dict[str, Any]]:
    """The single-file questions: one source each, what retrieval is checked against."""
    return [row for row in all_questions(domain) if row["kind"] == "single"]


def test_the_shipped_domains_are_there() -> None:
    assert sorted(p.name for p in SHIPPED_KNOWLEDGE.iterdir() if p.is_dir()) == DOMAINS


@pytest.mark.parametrize("domain", DOMAINS)
def test_shipped_questions_are_well_formed(domain: str) -> None:
    rows = all_questions(domain)
    documents = list((SHIPPED_KNOWLEDGE / domain).glob("*.md"))
    kinds = [row["kind"] for row in rows]
    assert len(documents) >= 8 and kinds.count("single") >= 10
    assert kinds.count("two-doc") >= 3 and kinds.count("unanswerable") >= 3
    for row in rows:
        assert row["question"].strip()
        if row["kind"] == "unanswerable":
            assert "source" not in row and row["key"] == [], row
            continue
        sources = [row["source"]] if isinstance(row["source"], str) else row["source"]
        assert len(sources) == (2 if row["kind"] == "two-doc" else 1), row
        texts = [(SHIPPED_KNOWLEDGE / domain / name).read_text(encoding="utf-8").lower() for name in sources]
        assert row["answer"].strip() and row["key"], row
        # Every key is in one of the answering documents (a key nobody could copy would be unfair).
        for key in row["key"]:
            assert any(key.lower() in text for text in texts), (row["question"], key)


@pytest.mark.parametrize("domain", DOMAINS)
def test_expected_file_is_in_the_top_3_for_80_percent_of_questions(real_engine: Engine, domain: str) -> None:
    rows = questions(domain)
    found = 0
    misses = []
    for row in rows:
        hits = real_engine.retrieve(row["question"], domain, k=3)
        paths = [hit.passage.path for hit in hits]
        if row["source"] in paths:
            found += 1
        else:
            misses.append((row["question"], paths))
    assert found / len(rows) >= 0.8, misses


def test_off_topic_question_is_not_answered_from_the_documents(real_engine: Engine) -> None:
    answer = real_engine.answer("Which football club won the 1998 Champions League final?", "cooking")
    assert not answer.covered, [h.distance for h in answer.hits]
    assert answer.text == "" and answer.prompt == ""  # nothing generated; the surfaces word the facts
    assert answer.closest_distance is not None and answer.closest_distance > answer.max_distance


def test_answers_are_deterministic_and_grounded(real_engine: Engine) -> None:
    row = questions("history")[0]
    first = real_engine.answer(row["question"], "history")
    real_engine.answer("Something else entirely, to change the model's cache?", "history", use_rag=False)
    second = real_engine.answer(row["question"], "history")
    assert first.text and first.text == second.text
    assert first.covered and first.hits[0].in_prompt
    assert first.tokens and any(token.in_context for token in first.tokens)
    assert first.prompt.startswith("<|im_start|>system")
    assert first.prompt_tokens <= real_engine.config.generation.max_context_tokens


def test_prompt_budget_is_counted_with_the_model_tokenizer(real_engine: Engine, shipped_config: Config) -> None:
    hits = real_engine.retrieve("What does the WHO guideline say about PM2.5?", "air-quality", k=4)
    generator = LlamaGenerator(shipped_config.generation)
    full = build_prompt("question?", hits, generator, shipped_config.prompt, 100_000)
    assert full.tokens == len(generator._llm.tokenize(full.text.encode(), add_bos=False, special=True))
    tight = build_prompt("question?", hits, generator, shipped_config.prompt, full.tokens - 1)
    assert len(tight.passage_ids) == len(full.passage_ids) - 1 and tight.tokens < full.tokens


def ragscope(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (falls back to the module if not on PATH)."""
    executable = shutil.which("ragscope", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-c", "from ragscope.cli import main; main()"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [*command, *args, "--data-dir", str(data_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_cli_ask_json_names_the_expected_file_first_and_no_rag_has_no_sources(tmp_path: Path) -> None:
    row = questions("medicine")[0]
    # --mode dense: nearest first (the shipped hybrid mode ranks by the fused score).
    result = ragscope("ask", row["question"], "--json", "--mode", "dense", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["used_rag"] and data["sources"][0]["path"] == row["source"]
    distances = [source["distance"] for source in data["sources"]]
    assert distances == sorted(distances) and all(0.0 <= d <= 2.0 for d in distances)
    assert data["answer"] and data["models"]["generator"] == generator_name(load_config(REPO / "config.toml"))

    plain = ragscope("ask", row["question"], "--no-rag", "--json", data_dir=tmp_path)
    assert plain.returncode == 0, plain.stderr
    data = json.loads(plain.stdout)
    assert not data["used_rag"] and data["sources"] == [] and data["answer"]


def test_bad_files_are_skipped_and_the_rest_indexed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(SHIPPED_KNOWLEDGE / "cooking", knowledge / "cooking")
    write(knowledge / "cooking" / "scan.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> garbage")
    write(knowledge / "cooking" / "photo.md", bytes(range(256)) * 64)
    write(knowledge / "cooking" / "empty.md", "")
    write(knowledge / "cooking" / "zorblat-stew.pdf", make_pdf(["Zorblat stew simmers for exactly 19 minutes."]))
    good = len(list((SHIPPED_KNOWLEDGE / "cooking").glob("*.md")))

    assert main(["index", "--knowledge", str(knowledge), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    (stats,) = json.loads(capsys.readouterr().out)["domains"]
    assert {s["path"] for s in stats["skipped"]} == {"photo.md", "empty.md"}
    assert [s["path"] for s in stats["failed"]] == ["scan.pdf"]
    assert all(s["reason"] for s in stats["skipped"])
    assert stats["files"] == good + 1

    args = ["ask", "How long does zorblat stew simmer?", "--knowledge", str(knowledge)]
    assert main([*args, "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["sources"][0]
    assert top["path"] == "zorblat-stew.pdf" and "19 minutes" in top["text"]
