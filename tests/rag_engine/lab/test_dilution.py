"""Lab experiment "k" (context dilution): the attention shares and the top-passage check on hand-made inputs,
the k loop (skips, the context window) on the fake models, and one run with the real models on the shipped
knowledge (k = 1, 2), where the answer's attention is measured by the real attention model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rag_engine.config import MAX_K, Config
from rag_engine.engine import Engine
from rag_engine.explain.attention import AttentionMap
from rag_engine.lab import run_experiment
from rag_engine.lab.dilution import (
    TOP_OVERLAP,
    DilutionReport,
    attention_shares,
    prompt_passages,
    run_dilution,
    top_passage_check,
)
from rag_engine.records import Answer, Claim, Hit, Passage
from rag_engine.search.lexical import Analyzer
from tests.fakes import EchoGenerator, HashingEmbedder, UniformAttention

SUEZ = "On what date did the canal between the Mediterranean and the Red Sea open?"


def _map(weights: list[list[float]], spans: tuple[tuple[str, int, int], ...]) -> AttentionMap:
    matrix = np.asarray(weights, dtype=np.float32)
    prompt = tuple(f"p{i}" for i in range(matrix.shape[1]))
    answer = tuple(f"a{i}" for i in range(matrix.shape[0]))
    return AttentionMap(prompt, answer, matrix, (0,), 1, spans)


def test_attention_shares_split_the_best_block_from_the_others() -> None:
    # Ten prompt tokens: block [1] is tokens 1-2, [2] tokens 3-5, [3] tokens 6-7, the question 8-9.
    spans = (("[1]", 1, 3), ("[2]", 3, 6), ("[3]", 6, 8), ("question", 8, 10))
    rows = np.random.default_rng(7).dirichlet(np.ones(10), size=3)
    shares = attention_shares(_map(rows.tolist(), spans), best_blocks=[2], blocks=3)  # the best passage is last
    assert shares.best == pytest.approx(float(rows[:, 6:8].sum(axis=1).mean()), abs=1e-6)
    assert shares.other == pytest.approx(float(rows[:, 1:6].sum(axis=1).mean()), abs=1e-6)
    assert shares.answer_tokens == 3
    assert shares.best >= 0.0 and shares.other >= 0.0 and shares.best + shares.other <= 1.0


def test_attention_shares_count_a_column_once_and_ignore_the_question() -> None:
    # Overlapping spans (a passage that repeats inside another): the shared columns go to the best one only.
    spans = (("[1]", 0, 4), ("[2]", 2, 6), ("question", 0, 6))
    shares = attention_shares(_map([[1 / 6] * 6], spans), best_blocks=[1], blocks=2)
    assert shares.best == pytest.approx(4 / 6) and shares.other == pytest.approx(2 / 6)
    nothing = attention_shares(_map([[0.5, 0.5]], (("question", 0, 2),)), best_blocks=[0], blocks=1)
    assert (nothing.best, nothing.other) == (0.0, 0.0)


def _answer(text: str, passages: list[str], contexts: list[str], **fields: object) -> Answer:
    hits = tuple(
        Hit(rank, Passage(rank * 10, f"f{rank}.md", body, 1, 1), 0.5, "d") for rank, body in enumerate(passages, 1)
    )
    return Answer(
        question="When did the zorblat arrive in Quenth?", domain="d", used_rag=True, text=text, hits=hits,
        prompt="", prompt_tokens=0, tokens=(), timings={}, models={}, top_k=len(hits), max_distance=1.0,
        contexts=tuple(contexts), **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_prompt_passages_follow_the_prompt_order_not_the_ranks() -> None:
    answer = _answer("x", ["first text", "second text"], ["second text", "first text", "unknown"])
    assert prompt_passages(answer) == [20, 10, None]


def test_top_passage_check_needs_the_answers_own_terms_and_claims_in_the_top_passage() -> None:
    top = "The zorblat arrived in Quenth in 1887, carried by traders."
    analyzer = Analyzer()

    def check(text: str, claims: tuple[Claim, ...] = (), **fields: object) -> tuple[bool, float]:
        answer = _answer(text, [top, "Other things happened in 1901."], [top], support=claims, **fields)
        result = top_passage_check(answer, answer.hits[0], analyzer)
        return result.contains, result.overlap

    assert check("It arrived in 1887 with traders.", (Claim("1887", "number", True),)) == (True, 1.0)
    contains, overlap = check("In 1901.", (Claim("1901", "number", True),))
    assert not contains and overlap < TOP_OVERLAP
    # Terms in the top passage but a number that is not: not what the top passage says.
    assert not check("Traders carried it in 1901.", (Claim("1901", "number", True),))[0]
    assert not check("The documents do not say.", grounding="refused")[0]
    assert not check("")[0]


@pytest.fixture
def dilution_engine(config: Config, embedder: HashingEmbedder) -> Engine:
    generator = EchoGenerator()
    return Engine(config, embedder=lambda: embedder, generator=lambda: generator, attention=UniformAttention)


def test_each_k_is_run_or_skipped_with_its_reason(dilution_engine: Engine) -> None:
    lab = dataclasses.replace(dilution_engine.config.lab, dilution_ks=(2, 1, MAX_K + 1, 2))
    report = run_dilution(dilution_engine, dilution_engine.check("What does the zorblat eat?", "zoology"), lab)
    assert [run.k for run in report.runs] == [1, 2]
    assert [k for k, _ in report.skipped] == [MAX_K + 1] and str(MAX_K) in report.skipped[0][1]
    assert report.whole_passages and report.runs[0].passages == (report.best_passage,)
    assert report.runs[1].prompt_tokens > report.runs[0].prompt_tokens
    for run in report.runs:
        assert run.attention is not None and run.attention.best + run.attention.other <= 1.0
        assert run.best_block == 0
    assert json.loads(json.dumps(report.to_dict()))["runs"][0]["k"] == 1
    assert report.png().startswith(b"\x89PNG")


def test_a_k_whose_passages_do_not_fit_the_window_is_skipped(dilution_engine: Engine, config: Config) -> None:
    lab = dataclasses.replace(config.lab, dilution_ks=(1, 2))
    query = dilution_engine.check("What does the zorblat eat?", "zoology")
    one, two = (run.prompt_tokens for run in run_dilution(dilution_engine, query, lab).runs)
    # A window that holds the k = 1 prompt and the answer, but not the k = 2 prompt.
    generation = dataclasses.replace(config.generation, max_context_tokens=config.generation.max_answer_tokens + one)
    small = dilution_engine.with_config(dataclasses.replace(config, generation=generation))
    assert two > one
    report = run_dilution(small, query, lab)
    assert [run.k for run in report.runs] == [1]
    assert [k for k, _ in report.skipped] == [2] and "fit" in report.skipped[0][1]


@pytest.mark.real_models
def test_dilution_with_the_real_models(real_engine: Engine) -> None:
    lab = dataclasses.replace(real_engine.config.lab, dilution_ks=(1, 2))
    report = run_dilution(real_engine, real_engine.check(SUEZ, "history"), lab)
    assert [run.k for run in report.runs] == [1, 2] and not report.skipped
    assert report.best_passage.startswith("suez-canal.md")
    for run in report.runs:
        assert run.answer and run.attention is not None, run.attention_note
        assert 0.0 <= run.attention.best <= 1.0 and 0.0 <= run.attention.other <= 1.0
        assert run.attention.best + run.attention.other <= 1.0 + 1e-9
        assert run.best_block is not None and len(run.passages) == run.k
    one, two = report.runs
    assert one.attention is not None and two.attention is not None
    assert one.attention.other == 0.0 and one.attention.best > 0.0  # one passage: nothing else to look at
    assert two.attention.other > 0.0 and two.prompt_tokens > one.prompt_tokens
    assert len(report.png()) < 1_000_000
    assert len(report.lines()) == 2 + 2 * len(report.runs)


def test_the_lab_runs_it_by_name_with_the_configured_ks(dilution_engine: Engine) -> None:
    report = run_experiment(dilution_engine, "k", "What does the zorblat eat?", "zoology")
    assert isinstance(report, DilutionReport) and report.experiment == "k" and report.domain == "zoology"
    ran = [run.k for run in report.runs] + [k for k, _ in report.skipped]
    assert sorted(ran) == sorted(set(dilution_engine.config.lab.dilution_ks))
    assert report.explanation.count(". ") + 1 in (2, 3)
