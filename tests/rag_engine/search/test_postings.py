"""The incremental BM25 statistics: after any random sequence of additions and removals (some through the stored
form), they score exactly as statistics built from scratch over the same passages and as Lucene's formula
worked out here, and every earlier version still scores as it did."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_engine.search.postings import Statistics

TERMS = ["moss", "zorblat", "lava", "lake", "trial", "quenth", "basalt", "otter", "salt", "enzym", "cliff", "dune"]
QUERIES = [["moss"], ["zorblat", "lava"], ["trial", "trial", "salt"], ["dune", "cliff", "otter", "nowher"], TERMS]
K1, B = 1.2, 0.75

Passages = dict[int, dict[str, int]]

passage = st.dictionaries(st.sampled_from(TERMS), st.integers(1, 4), max_size=6)
step = st.tuples(
    st.dictionaries(st.integers(0, 30), passage, max_size=5),  # added (an id already there is replaced)
    st.lists(st.integers(0, 35), max_size=5),  # removed (ids that are not there are ignored)
    st.booleans(),  # store and load the statistics after this step
)


def lucene(passages: Mapping[int, Mapping[str, int]], query: list[str]) -> dict[int, float]:
    n = len(passages)
    average = sum(sum(c.values()) for c in passages.values()) / n if n else 0.0
    scores: dict[int, float] = {}
    for term in query:
        df = sum(term in c for c in passages.values())
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for passage_id, counts in passages.items():
            if term in counts:
                tf, length = counts[term], sum(counts.values())
                scores[passage_id] = scores.get(passage_id, 0.0) + idf * tf / (tf + K1 * (1 - B + B * length / average))
    return scores


def as_dict(statistics: Statistics, query: list[str]) -> dict[int, float]:
    ids, scores = statistics.scores(query, K1, B)
    assert np.all(np.diff(ids) > 0) and np.all(scores > 0)  # ascending ids, only matching passages
    return dict(zip(ids.tolist(), scores.tolist(), strict=True))


def assert_scores(statistics: Statistics, passages: Passages) -> None:
    for query in QUERIES:
        got, expected = as_dict(statistics, query), lucene(passages, query)
        assert got.keys() == expected.keys()
        for passage_id, score in expected.items():
            assert math.isclose(got[passage_id], score, rel_tol=1e-5), (query, passage_id)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=8), st.booleans())
def test_any_sequence_of_changes_scores_as_a_fresh_build(
    steps: list[tuple[Passages, list[int], bool]], start_stored: bool
) -> None:
    statistics = Statistics()
    passages: Passages = {}
    versions: list[tuple[Statistics, Passages]] = []
    for added, removed, store in steps:
        statistics = statistics.changed(added, removed)
        for passage_id in removed:
            passages.pop(passage_id, None)
        passages.update((i, dict(c)) for i, c in added.items())
        if store or start_stored:
            statistics = Statistics.from_arrays(statistics.to_arrays())
            start_stored = False
        fresh = Statistics.of(passages)
        assert set(statistics.ids()) == set(fresh.ids()) == set(passages)
        assert statistics.total_length == fresh.total_length == sum(sum(c.values()) for c in passages.values())
        for term in TERMS:
            assert statistics.document_frequency(term) == fresh.document_frequency(term)
        for passage_id, counts in passages.items():
            assert statistics.counts(passage_id) == {t: c for t, c in counts.items()}
        assert_scores(statistics, passages)
        assert_scores(fresh, passages)
        versions.append((statistics, {i: dict(c) for i, c in passages.items()}))
    for old, held in versions:  # every version still scores what it held
        assert_scores(old, held)


def test_nothing_to_change_returns_the_same_statistics() -> None:
    statistics = Statistics.of({1: {"moss": 2}})
    assert statistics.changed({}, [7, 8]) is statistics
    assert statistics.changed({}, [1]) is not statistics


def test_untouched_postings_are_shared_between_versions() -> None:
    """What makes an update cost the change, not the corpus: a term no changed passage holds keeps the very same
    arrays in the new version."""
    first = Statistics.of({1: {"moss": 1, "lava": 2}, 2: {"lava": 1}, 3: {"salt": 1}})
    second = first.changed({4: {"moss": 3}}, [3])
    lava_before = first._postings_of(first._vocabulary["lava"])
    lava_after = second._postings_of(second._vocabulary["lava"])
    assert lava_after.ids is lava_before.ids or np.shares_memory(lava_after.ids, lava_before.ids)
    moss_before = first._postings_of(first._vocabulary["moss"])
    moss_after = second._postings_of(second._vocabulary["moss"])
    assert moss_after.ids.tolist() == [1, 4] and moss_before.ids.tolist() == [1]
    assert second.document_frequency("salt") == 0 and first.document_frequency("salt") == 1
    assert not moss_before.ids.flags.writeable
