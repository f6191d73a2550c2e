"""Multi-hop retrieval with the real models over the shipped knowledge: two hops retrieve both source files of
the multi-hop questions more often than one hop, the trace carries both rounds, and one hop builds exactly the
prompt the retrieval and the prompt builder give on their own (the default path is untouched).

The full measurement (right answers, every question, the shipped k = 4) is `ragscope eval answers --questions
multihop --hops N` (benchmarks/results/multihop.json). Here two domains' questions with short answers keep it
quick, at k = 2: the shipped domains are small (ten files each), so at k = 4 one round already brings both files
of most questions (19 of 21) and leaves the comparison almost no room.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rag_engine.engine import Engine
from rag_engine.generate.evidence import select_evidence
from rag_engine.generate.prompt import build_rag_prompt
from rag_engine.search.retrieval import within_threshold
from tests.conftest import SHIPPED_KNOWLEDGE

pytestmark = pytest.mark.real_models

# The measured subset: every multi-hop question of these domains (the choice of domains, not of questions).
MEASURED = ("history", "medicine")
# Passages per round in the comparison (see the module docstring).
K = 2


def multihop(domain: str) -> list[dict[str, Any]]:
    lines = (SHIPPED_KNOWLEDGE / domain / "multihop.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def short(real_engine: Engine) -> Iterator[Engine]:
    """The real models with answers cut to a few tokens: what is measured here is retrieval."""
    generation = dataclasses.replace(real_engine.config.generation, max_answer_tokens=8)
    yield real_engine.with_config(dataclasses.replace(real_engine.config, generation=generation))


def test_every_domain_has_multihop_questions_over_two_of_its_files() -> None:
    rows = [row | {"domain": d} for d in ("air-quality", "cooking", "history", "medicine") for row in multihop(d)]
    assert len(rows) >= 16
    for row in rows:
        assert row["kind"] == "multihop" and row["key"] and len(set(row["source"])) == 2
        assert all((SHIPPED_KNOWLEDGE / row["domain"] / name).is_file() for name in row["source"])


def test_two_hops_retrieve_both_sources_more_often_than_one(short: Engine) -> None:
    both = {1: 0, 2: 0}
    asked = 0
    for domain in MEASURED:
        for row in multihop(domain):
            asked += 1
            # One hop's passages are its one search (the same search `answer` runs first: no generation needed).
            one = short.retrieve(short.check(row["question"], domain, K, hops=1))
            two = short.answer(short.check(row["question"], domain, K, hops=2)).hits
            for hops, hits in ((1, one), (2, two)):
                both[hops] += set(row["source"]) <= {hit.passage.path for hit in hits}
    assert asked >= 8
    assert both[2] > both[1], both


def test_the_trace_has_both_rounds(short: Engine) -> None:
    row = multihop("history")[0]
    answer = short.answer(short.check(row["question"], "history", hops=2))
    first, second = answer.rounds
    assert first.query == row["question"] and first.origin == "question"
    assert second.origin in ("model", "fallback") and second.query and second.query != row["question"]
    seen = {(hit.domain, hit.passage.id) for hit in first.hits}
    assert second.hits and not seen & {(hit.domain, hit.passage.id) for hit in second.hits}
    assert {(h.domain, h.passage.id) for h in answer.hits} == seen | {(h.domain, h.passage.id) for h in second.hits}
    assert all(hit.distance >= 0 for found in answer.rounds for hit in found.hits)
    assert "follow_up" in answer.timings and "search_2" in answer.timings
    body = answer.to_dict()
    assert body["hops"] == 2 and [r["query"] for r in body["rounds"]] == [first.query, second.query]


def test_one_hop_builds_the_prompt_retrieval_and_the_prompt_builder_give(short: Engine) -> None:
    config = short.config
    for domain in MEASURED:
        row = multihop(domain)[0]
        query = short.check(row["question"], domain, hops=1)
        answer = short.answer(query)
        evidence = within_threshold(short.retrieve(query), config.retrieval.max_distance)
        vector = short.embedder().embed([query.question])[0]
        excerpts = select_evidence(query.question, vector, evidence, short.embedder(), config.evidence)
        budget = config.generation.max_context_tokens - config.generation.max_answer_tokens
        built = build_rag_prompt(query.question, evidence, short.generator(), config, budget, excerpts)
        assert answer.prompt == built.text
        assert answer.rounds == () and answer.hops == 1 and "follow_up" not in answer.timings
