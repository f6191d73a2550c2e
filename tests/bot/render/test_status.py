"""bot.render.status: the knowledge status embed for one domain, many large ones, and empty ones."""

from __future__ import annotations

import dataclasses

from bot.render.status import status_embed
from rag_engine.records import DomainStats, SkippedFile
from tests.bot.render.conftest import assert_embed_within_limits


def make_stats(name: str, skipped: int = 0, failed: int = 0) -> DomainStats:
    files = tuple(f"file{n}.md" for n in range(12))
    reasons = tuple(SkippedFile(f"@everyone/skipped{n}.bin", "unsupported " * 40) for n in range(skipped)) + tuple(
        SkippedFile(f"broken`{n}`.pdf", "could not parse the PDF: " + "x" * 300, failed=True) for n in range(failed)
    )
    return DomainStats(
        domain=name,
        files=files,
        passages=340,
        skipped=reasons,
        built_at=1_700_000_000.5,
        embedding_model="all-MiniLM-L6-v2",
        updated_at=1_700_000_900.9,
        version=7,
    )


def test_status_of_one_domain() -> None:
    embed = status_embed([make_stats("history", skipped=2, failed=1)])
    assert embed.title == "Knowledge"
    (field,) = embed.fields
    value = field.value or ""
    assert field.name == "history"
    assert "**12** files · **340** passages · v7 · updated <t:1700000900:R>" in value
    assert "2 skipped, 1 failed" in value
    assert value.index("• failed") < value.index("• skipped")  # failures first
    assert "all-MiniLM-L6-v2" in (embed.footer.text or "")
    assert_embed_within_limits(embed)


def test_status_of_many_large_domains_fits() -> None:
    stats = [make_stats(f"domain-{n}-@everyone-" + "x" * 300, skipped=100, failed=100) for n in range(30)]
    embed = status_embed(stats)
    assert len(embed.fields) == 25
    assert embed.fields[-1].name == "… and 6 more domains"
    assert all("more" in (field.value or "") for field in embed.fields[:-1])  # long skip lists are cut
    assert_embed_within_limits(embed)


def test_status_edge_cases() -> None:
    assert "No domains" in (status_embed([]).description or "")
    never = dataclasses.replace(make_stats("empty"), built_at=0.0, updated_at=0.0, files=(), passages=0)
    embed = status_embed([never])
    assert "never indexed" in (embed.fields[0].value or "")
    assert "skipped" not in (embed.fields[0].value or "")
    assert "<t:1700000000:R>" in (
        status_embed([dataclasses.replace(never, built_at=1_700_000_000.0)]).fields[0].value or ""
    )
