"""The arithmetic of benchmarks/compare_llamaindex.py (no llama-index needed): which queries a corpus slice can
answer, passages merged into documents, tokens cut at the model's limit, percentiles, the build ratios, and the
first-byte clock of a streaming child process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks.compare_common import (
    answerable_queries,
    build_ratios,
    count_tokens,
    doc_id,
    document_run,
    first_byte,
    latency_summary,
    read_qrels,
    read_queries,
)
from rag_engine.evaluation.metrics import evaluate


def test_only_queries_whose_relevant_documents_are_all_present_are_kept() -> None:
    queries = {"q1": "one", "q2": "two", "q3": "three", "q4": "four"}
    qrels = {"q1": {"a": 1}, "q2": {"a": 1, "z": 1}, "q4": {"a": 1, "z": 0}}
    # q2 needs z (absent), q3 has no judgement, q4's z is judged not relevant.
    assert answerable_queries(queries, qrels, ["a", "b"]) == {"q1": "one", "q4": "four"}


def test_beir_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n", encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a claim"}\n\n', encoding="utf-8")
    assert read_qrels(tmp_path / "qrels.tsv") == {"q1": {"d1": 1, "d2": 2}}
    assert read_queries(tmp_path / "queries.jsonl") == {"q1": "a claim"}


def test_a_document_ranks_where_its_best_passage_does() -> None:
    run = document_run(["dom/7.md", "/tmp/k/scifact/3.md", "dom/7.md", "9.md"])
    assert doc_id("/tmp/k/scifact/3.md") == "3"
    assert sorted(run, key=lambda doc: run[doc], reverse=True) == ["7", "3", "9"]
    # The scores order the documents as retrieved, so trec_eval-style metrics read the retrieval order.
    assert evaluate({"q": run}, {"q": {"3": 1}})["mrr@10"] == pytest.approx(0.5)


def test_tokens_past_the_model_limit_are_not_counted_as_embedded() -> None:
    counted = count_tokens([10, 300, 256, 257], max_seq_tokens=256)
    assert counted.texts == 4
    assert counted.tokens == 823
    assert counted.embedded_tokens == 10 + 256 + 256 + 256
    assert counted.truncated_texts == 2


def test_latency_percentiles_in_milliseconds() -> None:
    summary = latency_summary([i / 1000 for i in range(1, 101)])  # 1 … 100 ms
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)
    assert summary["queries"] == 100
    assert latency_summary([0.002])["p95_ms"] == pytest.approx(2.0)
    assert latency_summary([])["queries"] == 0


def test_build_ratios_per_document_and_per_embedded_token() -> None:
    # ragscope: 100 documents in 10 s, 1,000 tokens; LlamaIndex: the same in 25 s, 500 tokens.
    ratios = build_ratios(100, 10.0, 1000, 25.0, 500)
    assert ratios["per_document"] == pytest.approx(2.5)
    assert ratios["per_embedded_token"] == pytest.approx(5.0)  # 100 tokens/s against 20 tokens/s
    assert ratios["ragscope_docs_per_second"] == pytest.approx(10.0)


def test_first_byte_is_timed_after_the_marker_line() -> None:
    script = "import sys, time; print('header]', flush=True); time.sleep(0.4); sys.stdout.write('answer')"
    measured = first_byte([sys.executable, "-c", script], b"]\n")
    assert measured.returncode == 0
    assert measured.first_byte_seconds is not None
    assert 0.4 <= measured.first_byte_seconds <= measured.exit_seconds
    assert measured.stdout == "header]\nanswer"


def test_no_first_byte_when_nothing_follows_the_marker() -> None:
    measured = first_byte([sys.executable, "-c", "print('header]')"], b"]\n")
    assert measured.first_byte_seconds is None
