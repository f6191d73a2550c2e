"""`ragscope eval retrieval` on BEIR folders: reading the format, the report, the embedding cache, and (with the
real model, on a SciFact-train subset from ../shared) dense nDCG@10 equal to plain sentence-transformers +
numpy on the same subset."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import BeirDataError
from rag_engine.evaluation.beir import load_beir
from rag_engine.ingest.embedding import bundled_model_path
from ragscope.cli import main
from tests.conftest import REPO, write
from tests.fakes import EchoGenerator, HashingEmbedder

SCIFACT_TRAIN = REPO.parent / "shared" / "data" / "scifact-train"
SUBSET_QUERIES = 150
# Documents besides the 117 judged relevant to those queries: enough that most of the ranking is not trivial, few
# enough that the harness and the reference each embed the subset once within about half a minute on two cores.
SUBSET_DISTRACTORS = 200


def write_beir(
    folder: Path,
    corpus: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    qrels: list[tuple[str, str, int]],
    split: str = "test",
) -> Path:
    write(folder / "corpus.jsonl", "".join(json.dumps(row) + "\n" for row in corpus))
    write(folder / "queries.jsonl", "".join(json.dumps(row) + "\n" for row in queries))
    lines = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    write(folder / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\n" + lines)
    return folder


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    corpus = [
        {"_id": "d1", "title": "Zorblat diet", "text": "The zorblat eats blue moss."},
        {"_id": "d2", "title": "", "text": "The quillfish swims in cold lakes."},
        {"_id": "d3", "title": "Basalt", "text": "Columns formed from cooling lava."},
        {"_id": "d4", "title": "Moss", "text": "Blue moss grows in the valley of Quenth."},
    ]
    queries = [
        {"_id": "q1", "text": "What does the zorblat eat?"},
        {"_id": "q2", "text": "Where does the quillfish swim?"},
        {"_id": "q3", "text": "An unjudged question about lava."},
    ]
    return write_beir(tmp_path / "tiny", corpus, queries, [("q1", "d1", 2), ("q1", "d4", 1), ("q2", "d2", 1)])


def fake_engine_for(config: Config) -> Engine:
    """Fake models, ranking by embeddings by default (a test asks for another mode with `--mode`)."""
    model = HashingEmbedder()
    config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode="dense"))
    return Engine(config, embedder=lambda: model, generator=EchoGenerator)


def test_load_beir_keeps_judged_queries_and_joins_title_and_text(tiny_beir: Path) -> None:
    data = load_beir(tiny_beir, "test")
    assert list(data.queries) == ["q1", "q2"]  # q3 has no judgements
    assert data.documents["d1"] == "Zorblat diet The zorblat eats blue moss."
    assert data.documents["d2"] == "The quillfish swims in cold lakes."  # no title: no leading space
    assert data.qrels == {"q1": {"d1": 2, "d4": 1}, "q2": {"d2": 1}}
    assert list(load_beir(tiny_beir, "test", limit_queries=1).queries) == ["q1"]


def test_a_folder_that_is_not_beir_is_refused_with_a_reason(tiny_beir: Path, tmp_path: Path) -> None:
    with pytest.raises(BeirDataError, match=r"no qrels for split 'dev' \(found: test\)"):
        load_beir(tiny_beir, "dev")
    with pytest.raises(BeirDataError, match="is not a folder"):
        load_beir(tmp_path / "nowhere", "test")
    write(tmp_path / "only-qrels" / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(BeirDataError, match=r"corpus\.jsonl not found"):
        load_beir(tmp_path / "only-qrels", "test")
    broken = write_beir(
        tmp_path / "broken", [{"_id": "d1", "text": "t"}], [{"_id": "q1", "text": "t"}], [("q1", "d1", 1)]
    )
    write(broken / "queries.jsonl", "{not json\n")
    with pytest.raises(BeirDataError, match="line 1 is not JSON"):
        load_beir(broken, "test")


def test_eval_retrieval_json_report_and_a_second_run_embeds_nothing(
    tiny_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "retrieval", "--beir", str(tiny_beir), "--data-dir", str(tmp_path / "data"), "--json"]
    reports = {}
    for mode in ("dense", "bm25", "hybrid"):
        assert main([*args, "--mode", mode], make_engine=fake_engine_for) == 0
        reports[mode] = json.loads(capsys.readouterr().out)
    for mode, report in reports.items():
        assert {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "documents", "mode"} <= set(report)
        assert report["mode"] == mode and report["queries"] == 2 and report["documents"] == 4
        assert all(0.0 <= report[name] <= 1.0 for name in ("ndcg@10", "recall@10", "recall@100", "mrr@10"))
        # Four documents, all within 100 of dense; BM25 returns only documents sharing a word with the query.
        assert report["recall@100"] == (0.75 if mode == "bm25" else 1.0)
    assert reports["dense"]["embedded"] == 4 and reports["bm25"]["embedded"] == 0 == reports["hybrid"]["embedded"]
    assert reports["bm25"]["reused"] == 4
    # BM25 puts the document that says "zorblat" and "eat" first, and "quillfish swim" finds d2.
    assert reports["bm25"]["mrr@10"] == 1.0
    assert reports["hybrid"]["fusion"]["method"] == "blend" and reports["dense"]["fusion"] is None


def test_eval_retrieval_text_output_and_bad_options(
    tiny_beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "retrieval", "--beir", str(tiny_beir), "--data-dir", str(tmp_path / "data")]
    assert main([*args, "--mode", "hybrid", "--fusion", "rrf", "--rrf-k", "10"], make_engine=fake_engine_for) == 0
    out = capsys.readouterr().out
    assert "2 queries, 4 documents, hybrid (rrf, k 10)" in out and "ndcg@10" in out
    assert main([*args, "--limit-queries", "0"], make_engine=fake_engine_for) == 2
    assert main([*args, "--blend-weight", "2"], make_engine=fake_engine_for) == 2
    assert main([*args, "--split", "dev"], make_engine=fake_engine_for) == 2
    assert "no qrels for split 'dev'" in capsys.readouterr().err


def test_rerank_mmr_lets_a_different_document_past_near_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ten copies of one text fill the dense top 10; the judged document says something else and ranks 11th.
    copies = [{"_id": f"copy{i}", "title": "", "text": "The zorblat eats blue moss."} for i in range(10)]
    other = {"_id": "caves", "title": "", "text": "A zorblat lives in caves and eats moss at night."}
    folder = write_beir(
        tmp_path / "dupes", [*copies, other], [{"_id": "q1", "text": "zorblat eats blue moss"}], [("q1", "caves", 1)]
    )
    args = ["eval", "retrieval", "--beir", str(folder), "--data-dir", str(tmp_path / "data"), "--json"]
    reports = {}
    for rerank in ("none", "mmr"):
        assert main([*args, "--rerank", rerank, "--mmr-lambda", "0.5"], make_engine=fake_engine_for) == 0
        reports[rerank] = json.loads(capsys.readouterr().out)
    assert main([*args, "--rerank", "mmr"], make_engine=fake_engine_for) == 0
    assert json.loads(capsys.readouterr().out)["rerank"]["lambda"] == 0.7  # the config has MMR off: a default
    assert reports["none"]["ndcg@10"] == 0.0 and reports["none"]["recall@100"] == 1.0
    assert reports["none"]["rerank"] is None
    # MMR picks one copy, then the document unlike it: second of the ten MMR chooses, and ranked by distance
    # among them, behind all the copies it was chosen with.
    assert reports["mmr"]["rerank"] == {"method": "mmr", "lambda": 0.5, "candidates": 20}
    assert reports["mmr"]["recall@10"] == 1.0 and reports["mmr"]["ndcg@10"] > 0.0
    assert main([*args, "--mmr-lambda", "1.5"], make_engine=fake_engine_for) == 2


# -- the published protocol, with the real model -----------------------------------------------------------
def scifact_subset(folder: Path) -> Path:
    """The first judged train queries, their relevant documents and the first other documents, as a BEIR folder."""
    if not (SCIFACT_TRAIN / "qrels" / "train.tsv").is_file():
        pytest.skip(f"SciFact train data not found at {SCIFACT_TRAIN} (the shared data folder beside the repo)")
    qrels: dict[str, dict[str, int]] = {}
    for line in (SCIFACT_TRAIN / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, document, score = line.split("\t")
        qrels.setdefault(query, {})[document] = int(score)
    all_queries = [
        json.loads(line) for line in (SCIFACT_TRAIN / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    queries = [row for row in all_queries if row["_id"] in qrels][:SUBSET_QUERIES]
    relevant = {document for row in queries for document in qrels[row["_id"]]}
    corpus = [json.loads(line) for line in (SCIFACT_TRAIN / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    others = [row for row in corpus if row["_id"] not in relevant][:SUBSET_DISTRACTORS]
    kept = [row for row in corpus if row["_id"] in relevant] + others
    judgements = [(row["_id"], document, score) for row in queries for document, score in qrels[row["_id"]].items()]
    return write_beir(folder, kept, queries, judgements, split="train")


def reference_metrics(folder: Path) -> dict[str, float]:
    """nDCG@10 and recall@100 by plain sentence-transformers and numpy: exact cosine ranking of every document."""
    from sentence_transformers import SentenceTransformer

    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, document, score = line.split("\t")
        qrels.setdefault(query, {})[document] = int(score)

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    documents = model.encode([(row["title"] + " " + row["text"]).strip() for row in corpus], normalize_embeddings=True)
    questions = model.encode([row["text"] for row in queries], normalize_embeddings=True)
    similarity = questions @ documents.T
    ndcgs, recalls = [], []
    for row, scores in zip(queries, similarity, strict=True):
        ranked = [corpus[i]["_id"] for i in np.argsort(-scores, kind="stable")[:100]]
        relevance = qrels[row["_id"]]
        gains = [relevance.get(document, 0) for document in ranked[:10]]
        ideal = sorted(relevance.values(), reverse=True)[:10]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        ndcgs.append(dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal)))
        relevant = {document for document, score in relevance.items() if score > 0}
        recalls.append(len(relevant.intersection(ranked)) / len(relevant))
    return {"ndcg@10": float(np.mean(ndcgs)), "recall@100": float(np.mean(recalls))}


@pytest.mark.real_models
def test_dense_ndcg_equals_plain_sentence_transformers_and_numpy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scifact_subset(tmp_path / "scifact-subset")
    args = ["eval", "retrieval", "--beir", str(folder), "--split", "train", "--mode", "dense", "--json"]
    # The reference is plain sentence-transformers on torch, so the engine embeds with torch here too (the int8
    # backend's own quality is measured on the whole of SciFact by benchmarks/bench_encoder.py).
    args += ["--data-dir", str(tmp_path / "data"), "--knowledge", str(tmp_path), "--set", "embedding.backend=torch"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == SUBSET_QUERIES and report["documents"] > SUBSET_DISTRACTORS
    reference = reference_metrics(folder)
    assert report["ndcg@10"] == pytest.approx(reference["ndcg@10"], abs=5e-4), reference
    assert report["recall@100"] == pytest.approx(reference["recall@100"], abs=5e-4), reference

    # The same subset by words and by both (the corpus comes from the embedding cache now): hybrid beats each.
    others = {}
    for mode in ("bm25", "hybrid"):
        assert main([*args[:7], mode, *args[8:]]) == 0
        others[mode] = json.loads(capsys.readouterr().out)
        assert others[mode]["embedded"] == 0 and others[mode]["mode"] == mode
    assert others["hybrid"]["ndcg@10"] > max(report["ndcg@10"], others["bm25"]["ndcg@10"]), (report, others)
