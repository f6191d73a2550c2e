"""SQuAD answer quality: the official SQuAD v1.1 metrics by hand-computed cases, the SQuAD file handling, and
the evaluation over fake models. The terminal command (`ragscope eval qa`, and its real-model run on the shared
SQuAD slice) is tested in tests/ragscope/test_eval_qa.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.errors import SquadError
from rag_engine.evaluation.qa import (
    contains_answer,
    domain_name,
    evaluate_squad,
    exact_match,
    f1_score,
    load_squad,
    normalize_answer,
    spread,
    write_knowledge,
)
from tests.conftest import write
from tests.rag_engine.evaluation.samples import echo_engine, squad_file


# -- normalisation and metrics ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Denver Broncos", "denver broncos"),
        ("  a   cat,  an apple & the end. ", "cat apple end"),
        ("Theatre", "theatre"),  # "the" only as a whole word
        ("then a", "then"),
        ("U.S.A.", "usa"),
        ("Saint-Denis's", "saintdeniss"),  # punctuation is removed, not replaced by a space
        ("«Paris»", "«paris»"),  # only ASCII punctuation, as in the official script
        ("", ""),
        ("The", ""),
        ("ÉCOLE", "école"),
    ],
)
def test_normalize_answer_follows_the_official_script(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_exact_match_after_normalisation_and_over_several_golds() -> None:
    assert exact_match("the Denver Broncos!", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    assert exact_match("Broncos", ["Denver Broncos", "Broncos", "the Broncos"]) == 1.0
    assert exact_match("Panthers", ["Denver Broncos", "Broncos"]) == 0.0


def test_f1_hand_computed() -> None:
    # prediction {denver, broncos, won}, gold {denver, broncos}: precision 2/3, recall 1 -> F1 0.8
    assert f1_score("The Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    # one of three predicted tokens against one of two gold tokens: p 1/3, r 1/2 -> 0.4
    assert f1_score("in Santa Clara", "Santa Monica") == pytest.approx(0.4)
    assert f1_score("nothing in common", "Denver Broncos") == 0.0
    # Counts are a multiset intersection: a repeated word counts as often as it occurs in both.
    assert f1_score("go go go", "go") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert f1_score("go go", "go go") == 1.0


def test_f1_is_the_best_over_the_gold_answers() -> None:
    golds = ["Santa Clara, California", "Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area"]
    # vs gold 2: {levis, stadium} exactly -> 1.0, even though gold 3 overlaps too.
    assert f1_score("Levi's Stadium", golds) == 1.0
    # vs gold 1 {santa, clara, california}: p 2/2, r 2/3 -> 0.8; vs the others 0.
    assert f1_score("Santa Clara", golds) == pytest.approx(0.8)


def test_contains_answer_wants_the_gold_words_whole_and_in_order() -> None:
    golds = ["Levi's Stadium", "Santa Clara"]
    # F1 of this sentence against "Levi's Stadium" is 2·(2/8)·1/(2/8 + 1) = 0.4: said, but diluted.
    assert contains_answer("It took place at Levi's Stadium in California.", golds) == 1.0
    assert contains_answer("The stadium of Levi", golds) == 0.0  # the words, but not as the answer says them
    assert contains_answer("Santa Clarafornia", golds) == 0.0  # whole words only
    assert contains_answer("THE SANTA CLARA!", golds) == 1.0  # after SQuAD's normalisation
    assert contains_answer("anything", ["the"]) == 0.0  # a gold that normalises to nothing is never said


def test_articles_and_punctuation_alone_score_nothing() -> None:
    # The v1.1 script: a prediction (or gold) that normalises to nothing has F1 0, even against an empty gold.
    assert f1_score("the.", "A") == 0.0
    assert exact_match("the.", "A") == 1.0  # both normalise to ""


def test_metrics_need_a_gold_answer() -> None:
    with pytest.raises(ValueError):
        f1_score("x", [])


def test_spread_is_even_and_complete_without_a_limit() -> None:
    assert spread(10, None) == list(range(10))
    assert spread(10, 20) == list(range(10))
    assert spread(10, 5) == [0, 2, 4, 6, 8]
    assert spread(2804, 300)[:3] == [0, 9, 18] and len(set(spread(2804, 300))) == 300


# -- the SQuAD file ---------------------------------------------------------------------------------------------


def test_load_squad_reads_paragraphs_and_answerable_questions(tmp_path: Path) -> None:
    squad = load_squad(squad_file(tmp_path / "tiny.json"))
    assert squad.name == "tiny.json"
    assert [p.path for p in squad.paragraphs] == [
        "000-Zorblat-p000.md",
        "000-Zorblat-p001.md",
        "001-Quill-fish-Varnholm-p000.md",
    ]
    # q2 has no answer (SQuAD 2.0 style) and is left out.
    assert [(q.id, q.answers, q.paragraph) for q in squad.questions] == [
        ("q1", ("blue moss",), 0),
        ("q3", ("Agatha Plimm", "Plimm"), 1),
        ("q4", ("forty-two",), 2),
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ('{"version": "1.1"}', "no top-level data list"),
        ('{"data": [{"title": "x"}]}', "not in SQuAD format"),
        ('{"data": [{"title": "x", "paragraphs": [{"context": "c", "qas": []}]}]}', "no answerable questions"),
    ],
)
def test_load_squad_refuses_other_files(tmp_path: Path, content: str, reason: str) -> None:
    with pytest.raises(SquadError, match=reason):
        load_squad(write(tmp_path / "bad.json", content))
    with pytest.raises(SquadError, match="not found"):
        load_squad(tmp_path / "missing.json")


def test_domain_name_is_a_visible_folder_name() -> None:
    assert domain_name(Path("../shared/dev-v1.1-first8.json")) == "dev-v1.1-first8"
    assert domain_name(Path(".hidden file.json")) == "hidden-file"


def test_write_knowledge_keeps_unchanged_files_and_refuses_foreign_ones(tmp_path: Path) -> None:
    squad = load_squad(squad_file(tmp_path / "tiny.json"))
    folder = tmp_path / "out" / "tiny"
    write_knowledge(squad, folder)
    first = folder / "000-Zorblat-p000.md"
    assert first.read_text() == "The zorblat lives in the valley of Quenth and eats blue moss.\n"
    stamp = first.stat().st_mtime_ns
    write_knowledge(squad, folder)
    assert first.stat().st_mtime_ns == stamp  # not rewritten: a stored index stays valid
    write(folder / "notes.md", "something else")
    with pytest.raises(SquadError, match=r"notes\.md"):
        write_knowledge(squad, folder)


# -- evaluation over fake models ----------------------------------------------------------------------------------
def test_evaluate_squad_scores_both_answers_and_retrieval(config: Config, tmp_path: Path) -> None:
    squad = load_squad(squad_file(tmp_path / "tiny.json"))
    root = tmp_path / "squad-knowledge"
    write_knowledge(squad, root / "tiny")
    engine = echo_engine(config.with_paths(knowledge_dir=root))
    report = evaluate_squad(engine, squad, "tiny", k=1)
    numbers = report.summary()
    assert numbers["questions"] == 3 and numbers["paragraphs"] == 3 and numbers["k"] == 1
    # The echo generator answers with the words of the top passage (after its file name), so with k=1 a hit
    # means the answer holds the right paragraph: some overlap with the gold answer, never an exact match.
    assert numbers["hit@k"] == 1.0
    assert numbers["rag.f1"] > numbers["norag.f1"] == 0.0
    assert numbers["rag.em"] == 0.0
    # The echo answer is the top paragraph's first words, which hold "blue moss" for the first question only.
    assert numbers["norag.contains"] == 0.0 and numbers["rag.contains"] >= 1 / 3
    first = report.results[0]
    assert "eats blue moss" in first.rag_answer and first.hit and first.covered
    assert first.rag_f1 == pytest.approx(f1_score(first.rag_answer, "blue moss"))
