"""bot.render.eval: the retrieval report's embed within Discord's limits, however many domains and misses."""

from __future__ import annotations

import pytest

from bot.render.eval import eval_embed
from bot.render.text import EMBED_FIELD_VALUE_LIMIT, EMBED_FIELDS_LIMIT, EMBED_TOTAL_LIMIT
from rag_engine.evaluation.domains import DomainReport, QuestionResult


def _report(domain: str, misses: int, hits: int = 1) -> DomainReport:
    wrong = tuple(
        QuestionResult(f"question {i} " + "with many words " * 20, f"expected-{i}.md", ("a.md", "b.md"), None)
        for i in range(misses)
    )
    right = tuple(QuestionResult(f"fine {i}", "a.md", ("a.md",), 1) for i in range(hits))
    return DomainReport(domain, 4, 10, right + wrong)


def _size(embed: dict[str, object]) -> int:
    fields = embed.get("fields", [])
    assert isinstance(fields, list)
    return (
        len(str(embed.get("title", "")))
        + len(str(embed.get("description", "")))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
    )


@pytest.mark.parametrize(("domains", "misses"), [(1, 0), (1, 200), (40, 3), (3, 50)])
def test_the_embed_stays_within_discords_limits(domains: int, misses: int) -> None:
    reports = [_report(f"domain-{d}", misses) for d in range(domains)]
    embed = eval_embed(reports).to_dict()
    fields = embed.get("fields", [])
    assert len(fields) <= EMBED_FIELDS_LIMIT
    assert all(len(f["value"]) <= EMBED_FIELD_VALUE_LIMIT for f in fields)
    assert _size(embed) <= EMBED_TOTAL_LIMIT  # type: ignore[arg-type]
    total_misses = domains * misses
    if total_misses > 20 or domains > 24:
        assert fields[-1]["name"].startswith("… and ")
