"""The BM25 index: its analyzer, its scores against Lucene's formula worked out here, and `updated` against a
fresh build of the same passages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag_engine.search.lexical import Analyzer, Bm25Index

TEXTS = {
    11: "The zorblat eats blue moss in the valley of Quenth.",
    12: "Zorblats were first described in 1887; trials of zorblat breeding failed.",
    13: "The quillfish swims in cold lakes.",
    14: "Basalt columns formed from cooling lava in Varnholm.",
}


def lucene_bm25(query_terms: list[str], documents: dict[int, tuple[str, ...]], k1: float, b: float) -> dict[int, float]:
    """Lucene's BM25: sum over query terms of idf · tf / (tf + k1 · (1 − b + b · dl / avgdl))."""
    n = len(documents)
    average = sum(len(terms) for terms in documents.values()) / n
    scores = dict.fromkeys(documents, 0.0)
    for term in query_terms:
        df = sum(term in terms for terms in documents.values())
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for doc, terms in documents.items():
            tf = terms.count(term)
            scores[doc] += idf * tf / (tf + k1 * (1 - b + b * len(terms) / average))
    return scores


def test_analyzer_lowercases_drops_stop_words_and_stems() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("The Trials of the ZORBLATS were running") == ("trial", "zorblat", "were", "run")
    assert analyzer.terms("a I x") == ()  # stop words and one-letter words are not terms
    assert analyzer.terms("Trials") == analyzer.terms("trial")


def test_scores_follow_lucene_bm25() -> None:
    index = Bm25Index.build(TEXTS, k1=1.2, b=0.75)
    analyzer = Analyzer()
    documents = {i: analyzer.terms(text) for i, text in TEXTS.items()}
    question = "Which zorblat trials ate moss?"
    expected = lucene_bm25(list(analyzer.terms(question)), documents, 1.2, 0.75)
    np.testing.assert_allclose(index.scores(question, list(TEXTS)), [expected[i] for i in TEXTS], rtol=1e-5)

    scores, ids = index.search(question, 10)
    matching = sorted((i for i in TEXTS if expected[i] > 0), key=lambda i: -expected[i])
    assert ids.tolist() == matching == [11, 12]  # 13 and 14 share no word with the question: not returned
    np.testing.assert_allclose(scores, [expected[i] for i in matching], rtol=1e-5)
    assert index.search(question, 1)[1].tolist() == [11]


def test_ties_are_broken_by_id_and_unknown_words_find_nothing() -> None:
    index = Bm25Index.build({7: "red apple", 3: "red apple", 5: "green pear"})
    assert index.search("apple", 5)[1].tolist() == [3, 7]
    assert index.search("kumquat", 5)[1].tolist() == []
    assert index.search("the of", 5)[1].tolist() == []  # stop words only
    assert index.scores("apple", [3, 99]).tolist()[1] == 0.0  # not in this index


def test_an_empty_index_and_passages_without_words_are_fine() -> None:
    empty = Bm25Index.build({})
    assert len(empty) == 0 and empty.search("anything", 3)[1].tolist() == []
    wordless = Bm25Index.build({1: "!!!", 2: "a"})
    assert len(wordless) == 2 and wordless.search("anything", 3)[1].tolist() == []
    grown = wordless.updated({3: "anything goes"}, [])
    assert grown.search("anything", 3)[1].tolist() == [3]


def test_updated_equals_a_fresh_build_and_leaves_the_original_alone() -> None:
    index = Bm25Index.build(TEXTS)
    changed = index.updated({15: "A zorblat moss farm in Quenth.", 16: "Lava lakes."}, [11, 14, 999])
    fresh = Bm25Index.build(
        {
            **{i: t for i, t in TEXTS.items() if i not in (11, 14)},
            15: "A zorblat moss farm in Quenth.",
            16: "Lava lakes.",
        }
    )
    assert changed.ids() == fresh.ids() == frozenset({12, 13, 15, 16})
    for question in ("zorblat moss", "lava lakes", "quillfish", "trials 1887"):
        new_scores, new_ids = changed.search(question, 10)
        fresh_scores, fresh_ids = fresh.search(question, 10)
        assert new_ids.tolist() == fresh_ids.tolist()
        np.testing.assert_allclose(new_scores, fresh_scores, rtol=1e-6)
    # The original still answers as before: a snapshot in use is never changed under its readers.
    assert index.ids() == frozenset(TEXTS) and index.search("basalt", 3)[1].tolist() == [14]
    # Nothing to do: the very same index comes back.
    assert index.updated({}, [999]) is index


@pytest.mark.parametrize("k", [0, -1])
def test_a_non_positive_k_returns_nothing(k: int) -> None:
    assert Bm25Index.build(TEXTS).search("zorblat", k)[1].tolist() == []
