"""bot.render.sources: every page of sources within Discord's embed limits, with long and hostile inputs."""

from __future__ import annotations

import pytest

from bot.render.sources import source_pages, sources_embed
from tests.bot.render.conftest import assert_embed_within_limits, hostile_hits, make_answer


def test_sources_page_shows_rank_place_distance_use_and_snippet() -> None:
    embed = sources_embed(make_answer())
    assert embed.title == "Sources"
    description = embed.description or ""
    assert "Euclidean" in description and "lower is closer" in description and "1.20" in description
    assert "1 of 3 went into the prompt" in description
    names = [field.name for field in embed.fields]
    assert names == ["#1 · zoology/zorblat.md L1-4", "#2 · zoology/zorblat.md L2-5", "#3 · zoology/zorblat.md L3-6"]
    values = [field.value or "" for field in embed.fields]
    assert values[0].startswith("distance `0.812` · in prompt\n> Passage 1: the zorblat")
    assert "· not used" in values[1] and "· too far" in values[2]
    assert embed.footer.text == "page 1/1"
    assert_embed_within_limits(embed)


def test_fifty_hostile_sources_fit_on_every_page() -> None:
    answer = make_answer(hits=hostile_hits(50))
    assert source_pages(answer, 4) == 13
    for page in range(13):
        embed = sources_embed(answer, page=page, per_page=4)
        assert embed.footer.text == f"page {page + 1}/13"
        assert len(embed.fields) == (4 if page < 12 else 2)
        assert_embed_within_limits(embed)
        for field in embed.fields:
            snippet = (field.value or "").split("\n> ", 1)[1]
            assert len(snippet) <= 330  # ~300 characters plus markdown escapes


@pytest.mark.parametrize("per_page", [25, 40, 100])
def test_a_full_page_of_sources_stays_under_6000(per_page: int) -> None:
    answer = make_answer(hits=hostile_hits(50))
    embed = sources_embed(answer, page=0, per_page=per_page)
    assert len(embed.fields) == 25
    assert embed.footer.text == "page 1/2"
    assert_embed_within_limits(embed)


def test_pages_are_clamped() -> None:
    answer = make_answer(hits=hostile_hits(10))
    assert sources_embed(answer, page=99, per_page=4).footer.text == "page 3/3"
    assert sources_embed(answer, page=-5, per_page=4).footer.text == "page 1/3"
    assert source_pages(answer, 0) == 10  # per_page below 1 counts as 1
    assert source_pages(make_answer(hits=()), 4) == 1


def test_sources_without_retrieval_or_without_hits() -> None:
    norag = sources_embed(make_answer(hits=(), used_rag=False))
    assert "did not use retrieval" in (norag.description or "") and not norag.fields
    empty = sources_embed(make_answer(hits=()))
    assert "nothing is indexed" in (empty.description or "") and not empty.fields
