"""The ranking metrics against cases worked out by hand (graded nDCG, recall, MRR, trec_eval's tie order)."""

from __future__ import annotations

import math

import pytest

from rag_engine.evaluation.metrics import evaluate, ndcg, query_metrics, ranking, recall, reciprocal_rank


def test_ranking_orders_by_score_then_by_document_id_descending_like_trec_eval() -> None:
    assert ranking({"a": 0.5, "b": 0.9, "c": 0.5, "d": 0.1}) == ["b", "c", "a", "d"]
    # The order the documents came in does not matter, only their scores and ids.
    assert ranking({"c": 0.5, "a": 0.5, "b": 0.5}) == ["c", "b", "a"]


def test_graded_ndcg_uses_the_relevance_as_gain_and_the_judgements_as_ideal() -> None:
    relevance = {"a": 2, "b": 1, "x": 1}  # x is never retrieved: it still counts in the ideal
    ranked = ["b", "z", "a"]
    dcg = 1 / math.log2(2) + 0 / math.log2(3) + 2 / math.log2(4)  # = 2.0
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # a, then b and x
    assert ndcg(ranked, relevance, 10) == pytest.approx(dcg / ideal)
    assert ndcg(ranked, relevance, 10) == pytest.approx(2.0 / (2.5 + 1 / math.log2(3)))
    # The cutoff applies to both the run and the ideal: at 1 only b (gain 1) against a (gain 2).
    assert ndcg(ranked, relevance, 1) == pytest.approx(0.5)
    assert ndcg(["a", "b", "x"], relevance, 10) == pytest.approx(1.0)


def test_ndcg_ignores_documents_judged_not_relevant_and_queries_without_relevant_ones() -> None:
    assert ndcg(["n", "r"], {"n": 0, "r": 1}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg(["n"], {"n": 0}, 10) == 0.0


def test_recall_counts_relevant_documents_within_the_cutoff() -> None:
    relevance = {"a": 1, "b": 2, "c": 1, "n": 0}
    ranked = ["a", "n", "x", "b", "y", "c"]
    assert recall(ranked, relevance, 1) == pytest.approx(1 / 3)
    assert recall(ranked, relevance, 4) == pytest.approx(2 / 3)
    assert recall(ranked, relevance, 100) == pytest.approx(1.0)
    assert recall(ranked, {"n": 0}, 10) == 0.0


def test_reciprocal_rank_is_the_first_relevant_rank_within_the_cutoff() -> None:
    relevance = {"b": 1, "d": 3}
    assert reciprocal_rank(["a", "b", "c", "d"], relevance, 10) == pytest.approx(1 / 2)
    assert reciprocal_rank(["a", "n", "c", "d"], {**relevance, "n": 0}, 10) == pytest.approx(1 / 4)
    assert reciprocal_rank(["a", "c", "d"], relevance, 2) == 0.0


def test_ties_are_broken_before_the_metrics_are_computed() -> None:
    # "r" and "s" tie; trec_eval puts "s" first (id descending), so the relevant "r" is at rank 2.
    scores = {"r": 0.7, "s": 0.7, "t": 0.2}
    metrics = query_metrics(scores, {"r": 1})
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert metrics["recall@10"] == metrics["recall@100"] == 1.0


def test_evaluate_averages_over_the_queries_that_have_judgements() -> None:
    run = {
        "q1": {"a": 0.9, "b": 0.1},  # a relevant at rank 1: all metrics 1
        "q2": {"c": 0.9, "d": 0.8},  # d relevant at rank 2
        "q3": {"e": 0.9},  # no judgements: not counted
    }
    qrels = {"q1": {"a": 1}, "q2": {"d": 1}, "q4": {"f": 1}}  # q4 was not run: not counted either
    metrics = evaluate(run, qrels)
    assert set(metrics) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert evaluate({"q3": {"e": 1.0}}, qrels) == dict.fromkeys(metrics, 0.0)


def test_recall_at_100_sees_what_recall_at_10_misses() -> None:
    scores = {f"d{i:03d}": 1.0 - i / 1000 for i in range(150)}
    metrics = query_metrics(scores, {"d005": 1, "d050": 1, "d120": 1})
    assert metrics["recall@10"] == pytest.approx(1 / 3)
    assert metrics["recall@100"] == pytest.approx(2 / 3)
    assert metrics["mrr@10"] == pytest.approx(1 / 6)
