"""Ranking metrics as trec_eval computes them: nDCG@k, recall@k and MRR@k over graded relevance judgements.

A run gives each query a score per document; `ranking` orders it as trec_eval does (score descending, ties by
document id descending), so a run and its metrics do not depend on the order the documents were found in.
Relevance is graded: the nDCG gain of a document is its judged relevance (not 2^rel − 1), discounted by
log2(rank + 1), and the ideal ranking comes from the judgements themselves, not from what was retrieved.
Recall and MRR count a document as relevant when its judgement is at least 1. A query is evaluated only if it
has judgements; the reported numbers are means over those queries.

Nothing here retrieves or reads files: `beir.py` builds the runs and loads the judgements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# query id -> document id -> judged relevance (0 = judged not relevant).
Qrels = Mapping[str, Mapping[str, int]]
# query id -> document id -> retrieval score (higher is better).
Run = Mapping[str, Mapping[str, float]]

METRIC_NAMES = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Document ids best first, as trec_eval orders them: by score descending, then by id descending."""
    return sorted(scores, key=lambda doc: (scores[doc], doc), reverse=True)


def _discounted(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """Graded nDCG@k: gain = judged relevance, discount log2(rank + 1), ideal from the judgements."""
    ideal = _discounted(sorted((rel for rel in relevance.values() if rel > 0), reverse=True)[:k])
    if ideal == 0.0:
        return 0.0
    return _discounted(max(relevance.get(doc, 0), 0) for doc in ranked[:k]) / ideal


def recall(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """The share of the relevant documents (judgement >= 1) found in the top k."""
    relevant = {doc for doc, rel in relevance.items() if rel >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """1 / the rank of the first relevant document within the top k, else 0."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevance.get(doc, 0) >= 1:
            return 1.0 / rank
    return 0.0


def query_metrics(scores: Mapping[str, float], relevance: Mapping[str, int]) -> dict[str, float]:
    """The four reported metrics of one query."""
    ranked = ranking(scores)
    return {
        "ndcg@10": ndcg(ranked, relevance, 10),
        "recall@10": recall(ranked, relevance, 10),
        "recall@100": recall(ranked, relevance, 100),
        "mrr@10": reciprocal_rank(ranked, relevance, 10),
    }


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the queries that have judgements and were run (as trec_eval without -c).

    An empty evaluation (no such query) gives zeros rather than a division by zero."""
    queries = [query for query in run if query in qrels]
    totals = dict.fromkeys(METRIC_NAMES, 0.0)
    for query in queries:
        for name, value in query_metrics(run[query], qrels[query]).items():
            totals[name] += value
    return {name: total / len(queries) if queries else 0.0 for name, total in totals.items()}
