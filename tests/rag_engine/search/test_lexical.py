"""The BM25 index: its analyzer, its scores against Lucene's formula worked out here and against bm25s itself,
`updated` against a fresh build of the same passages (random sequences: test_postings.py), and its stored form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rag_engine.search.lexical import STOP_WORDS, Analyzer, Bm25Index
from rag_engine.search.postings import ARRAY_KEYS
from tests.conftest import REPO

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


def test_updated_leaves_the_old_index_scoring_as_before() -> None:
    """Copy-on-write: every score of the old index, not just its ids, survives an update that touches the
    terms it holds (shared postings are never written in place)."""
    index = Bm25Index.build(TEXTS)
    questions = ["zorblat moss Quenth", "trials 1887", "cold lakes", "lava basalt"]
    before = [index.scores(q, list(TEXTS)).tolist() for q in questions]
    changed = index.updated({21: "Zorblat moss grows on basalt in cold Quenth lakes."}, [11, 13])
    assert [index.scores(q, list(TEXTS)).tolist() for q in questions] == before
    assert len(index) == 4 and len(changed) == 3
    assert changed.scores("zorblat", [11])[0] == 0.0 and index.scores("zorblat", [11])[0] > 0


def test_a_query_term_given_twice_counts_twice_as_in_bm25s() -> None:
    index = Bm25Index.build(TEXTS)
    once, twice = index.scores("zorblat", [11, 12]), index.scores("zorblat zorblats", [11, 12])
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-6)


def test_scores_equal_bm25s_lucene_on_a_small_corpus() -> None:
    """The reference implementation itself (bm25s, method="lucene"), fed our analyzer's terms."""
    import bm25s

    texts = {
        100 + n: text
        for n, text in enumerate(
            [
                *TEXTS.values(),
                "Cold lakes and colder rivers: the quillfish prefers lakes.",
                "Trials, trials and more trials of the zorblat moss diet.",
                "!!!",  # a passage without a single term still counts in N and in the average length
                "Quenth valley moss is blue; Quenth valley lava is red.",
            ]
        )
    }
    analyzer = Analyzer()
    reference = bm25s.BM25(k1=1.5, b=0.6, method="lucene")
    reference.index([list(analyzer.terms(t)) for t in texts.values()], show_progress=False)
    index = Bm25Index.build(texts, k1=1.5, b=0.6)
    for question in ["zorblat moss", "trials trials lakes", "Quenth valley lava", "cold quillfish", "kumquat"]:
        term_ids = reference.get_tokens_ids(list(analyzer.terms(question)))
        expected = reference.get_scores_from_ids(term_ids) if term_ids else np.zeros(len(texts))
        np.testing.assert_allclose(index.scores(question, list(texts)), expected, rtol=1e-5, atol=1e-7)


def test_the_stop_words_are_lucenes_as_bm25s_ships_them() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    assert frozenset(STOPWORDS_EN) == STOP_WORDS and len(STOP_WORDS) == 33


def test_the_stored_form_round_trips_and_damage_is_refused() -> None:
    index = Bm25Index.build(TEXTS).updated({15: "A zorblat moss farm."}, [13])  # a live update, then stored
    arrays = index.to_arrays()
    loaded = Bm25Index.from_arrays(arrays, index.k1, index.b)
    assert loaded.ids() == index.ids() and set(arrays) == set(ARRAY_KEYS)
    for question in ("zorblat moss farm", "quillfish", "trials 1887 basalt"):
        assert loaded.search(question, 5)[1].tolist() == index.search(question, 5)[1].tolist()
        np.testing.assert_allclose(loaded.scores(question, [11, 12, 14, 15]), index.scores(question, [11, 12, 14, 15]))
    assert loaded.counts(15) == index.counts(15) == Analyzer().counts("A zorblat moss farm.")
    for key, damage in [("counts", lambda a: a + 1), ("rows", lambda a: a[:-1]), ("passage_ids", lambda a: a[::-1])]:
        broken = {**arrays, key: damage(arrays[key])}
        with pytest.raises(ValueError, match="do not fit together"):
            Bm25Index.from_arrays(broken, 1.2, 0.75)


SCIFACT = REPO.parent / "shared" / "data" / "scifact-train"


def test_scores_equal_bm25s_lucene_on_the_whole_scifact_corpus() -> None:
    """All 5,183 SciFact abstracts and every one of its queries: each passage's score equals bm25s's (float32)
    score to 1e-5, and the top 10 are the same passages (rankings equal, up to ties within float rounding)."""
    import bm25s

    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        texts = {n: f"{row['title']}\n\n{row['text']}" for n, row in enumerate(map(json.loads, lines))}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        questions = [json.loads(line)["text"] for line in lines]
    assert len(texts) == 5183 and len(questions) > 800
    index = Bm25Index.build(texts)
    analyzer = Analyzer()
    reference = bm25s.BM25(k1=index.k1, b=index.b, method="lucene")
    reference.index([list(analyzer.terms(text)) for text in texts.values()], show_progress=False)
    ids = list(texts)
    same_top = 0
    for question in questions:
        term_ids = reference.get_tokens_ids(list(analyzer.terms(question)))
        expected = np.asarray(reference.get_scores_from_ids(term_ids) if term_ids else np.zeros(len(ids)))
        np.testing.assert_allclose(index.scores(question, ids), expected, rtol=1e-5, atol=1e-6)
        top = np.lexsort((ids, -expected))[:10]
        same_top += index.search(question, 10)[1].tolist() == [ids[i] for i in top if expected[i] > 0]
    assert same_top >= len(questions) - 2  # a tie broken the other way by float rounding, at most
