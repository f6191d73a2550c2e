"""`/ask hops:` through the real discord.py client and the loopback emulator (fake models): the option's
choices, a two-round answer that names its second search under the text, and one round left as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.client import RagBot
from tests.discord_emulator import DiscordEmulator


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


async def test_hops_is_an_option_with_one_or_two(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    ask = next(c for c in emulator.global_commands.values() if c["name"] == "ask")
    hops = next(o for o in ask["options"] if o["name"] == "hops")
    assert [choice["value"] for choice in hops["choices"]] == [1, 2] and not hops.get("required")


async def test_two_hops_show_the_second_search(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("ask", {"question": "Where does the quillfish swim?", "k": 1, "hops": 2})
    await inter.wait_acknowledged()
    assert inter.deferred
    final = await inter.wait_response_done(lambda m: bool(m.embeds))
    assert final.content.startswith("**RAG answer")
    note = next(line for line in final.content.splitlines() if "Search 2" in line)
    assert note.startswith("-# 🔁 Search 2: the question + “") and "→" in note
    found = note.split("→", 1)[1].strip()
    assert found and found != "nothing new"
    # The sources embed holds both rounds' passages: round 1's file and the one round 2 found.
    text = final.embed_text()
    assert "quillfish.txt" in text and found.split(",")[0].strip() in text


async def test_one_hop_has_no_second_search(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("ask", {"question": "Where does the quillfish swim?", "hops": 1})
    final = await inter.wait_response_done(lambda m: bool(m.embeds))
    assert "Search 2" not in final.content and final.content.startswith("**RAG answer")
