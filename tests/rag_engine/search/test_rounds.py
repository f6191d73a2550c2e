"""Merging the retrieval rounds of a multi-hop answer: interleaved by rank, each passage once."""

from __future__ import annotations

from rag_engine.records import Hit, Passage
from rag_engine.search.rounds import interleave, merge_rounds, unseen


def hit(passage_id: int, rank: int, domain: str = "d") -> Hit:
    return Hit(rank, Passage(passage_id, f"f{passage_id}.md", f"text {passage_id}", 1, 1), 0.1 * rank, domain)


def test_interleave_takes_turns_by_rank() -> None:
    assert interleave([[1, 2, 3], [10]]) == [1, 10, 2, 3]
    assert interleave([[], [4, 5]]) == [4, 5]


def test_merge_interleaves_drops_repeats_and_ranks_again() -> None:
    first, second = [hit(1, 1), hit(2, 2), hit(3, 3)], [hit(2, 1), hit(7, 2)]
    merged = merge_rounds([first, second])
    assert [h.passage.id for h in merged] == [1, 2, 7, 3]
    assert [h.rank for h in merged] == [1, 2, 3, 4]
    assert merged[1].distance == first[1].distance  # the earlier round's copy is kept


def test_the_same_id_in_another_domain_is_another_passage() -> None:
    assert len(merge_rounds([[hit(1, 1, "a")], [hit(1, 1, "b")]])) == 2


def test_unseen_leaves_out_what_an_earlier_round_found() -> None:
    fresh = unseen([hit(1, 1), hit(5, 2), hit(6, 3), hit(8, 4)], [hit(1, 1), hit(6, 2)], 2)
    assert [(h.passage.id, h.rank) for h in fresh] == [(5, 1), (8, 2)]
