"""Lab experiment "mmr" (redundant passages): the near-copies and the pair count on their own, the in-memory
demo on the fake models (the domain on disk and its index untouched), and the acceptance run with the real
models on the shipped knowledge: MMR fills the prompt with fewer near-duplicates than plain kNN."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.lab import run_experiment
from rag_engine.lab.redundancy import RedundancyReport, near_copy, near_duplicate_pairs, run_redundancy
from rag_engine.lab.spaces import memory_space
from rag_engine.records import Passage

SUEZ = "On what date did the canal between the Mediterranean and the Red Sea open?"
TEXT = "The zorblat lives in the valley of Quenth. It eats blue moss. Agatha Plimm described it in 1887."


def test_near_copies_are_small_deterministic_edits_that_differ() -> None:
    copies = [near_copy(TEXT, number) for number in range(6)]
    assert copies == [near_copy(TEXT, number) for number in range(6)]
    assert len(set(copies)) == 6 and TEXT not in copies
    for copy in copies:
        shared = set(copy.split()) & set(TEXT.split())
        assert len(shared) >= 2 / 3 * len(set(TEXT.split()))  # most words kept
    assert near_copy("One.", 0) != "One."  # one sentence: nothing to drop, the copy still differs


def test_near_duplicate_pairs_count_pairs_below_the_threshold(config: Config) -> None:
    base = np.eye(4, dtype=np.float32)
    close = base[0] * 0.995 + base[1] * 0.0999
    vectors = np.vstack([base[0], close / np.linalg.norm(close), base[2], base[3]])
    passages = {i: Passage(i, f"f{i}.md", f"text {i}", 1, 1) for i in range(4)}
    space = memory_space("d", passages, vectors, config)
    assert near_duplicate_pairs(space, [0, 1, 2, 3], 0.35) == 1
    assert near_duplicate_pairs(space, [0, 1, 2, 3], 1.5) == 6
    assert near_duplicate_pairs(space, [2, 3], 0.35) == 0


def test_the_demo_stays_in_memory(fake_engine: Engine) -> None:
    before = fake_engine.snapshot("zoology")
    files = sorted(p.name for p in fake_engine.domain_folder("zoology").iterdir())
    lab = dataclasses.replace(fake_engine.config.lab, duplicate_copies=2, duplicate_sources=1, mmr_lambdas=(0.3,))
    report = run_redundancy(fake_engine, fake_engine.check("What does the zorblat eat?", "zoology", k=2), lab)
    assert [result.method for result in report.results] == ["kNN", "MMR λ=0.3"]
    assert all(len(result.passages) == 2 for result in report.results)
    assert sorted(p.name for p in fake_engine.domain_folder("zoology").iterdir()) == files
    assert fake_engine.snapshot("zoology") is before and len(before.space.passages) == len(before.space.index)
    assert json.loads(json.dumps(report.to_dict()))["copies_each"] == 2
    assert report.png().startswith(b"\x89PNG")
    by_name = run_experiment(fake_engine, "mmr", "What does the zorblat eat?", "zoology")
    assert isinstance(by_name, RedundancyReport) and by_name.experiment == "mmr"
    assert len(by_name.results) == 1 + len(fake_engine.config.lab.mmr_lambdas)


@pytest.mark.real_models
def test_mmr_fills_the_prompt_with_fewer_near_duplicates(real_engine: Engine) -> None:
    report = run_redundancy(real_engine, real_engine.check(SUEZ, "history"), real_engine.config.lab)
    plain, *mmr = report.results
    assert plain.method == "kNN" and len(mmr) == len(real_engine.config.lab.mmr_lambdas)
    assert plain.near_duplicate_pairs > 0 and plain.copies > 0  # the demo's copies crowd plain kNN's top k
    assert min(result.near_duplicate_pairs for result in mmr) < plain.near_duplicate_pairs
    assert max(result.distinct_files for result in mmr) > plain.distinct_files
    assert all(result.answer for result in report.results)
    assert len(report.png()) < 1_000_000
