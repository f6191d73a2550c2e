"""Every command and button of the bot, through the real discord.py client and the loopback emulator.

Fake models (fast); the real `RagBot`, cogs, queue, watcher and store. Each test acts like a user (a slash
command, a mention, a click, an upload) and asserts on what the bot sent back; waits are the emulator's
await-able helpers with timeouts, never sleeps. Every test ends with no Discord rule broken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import RagBot
from bot.cogs.help import HELP_TEXT
from bot.config import BotConfig
from bot.render.text import MESSAGE_LIMIT
from rag_engine.config import Config
from tests.bot.conftest import connected_bot
from tests.conftest import write
from tests.discord_emulator import DiscordEmulator, MessageRecord

MANAGE_GUILD = 1 << 5


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


def custom_ids(message: MessageRecord) -> list[str]:
    return [button.get("custom_id", "") for button in message.buttons]


async def test_commands_are_registered_with_descriptions(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    registered = {c["name"]: c for c in emulator.global_commands.values()}
    assert set(registered) == {"ask", "norag", "compare", "domain", "knowledge", "pipeline", "lab", "eval", "help"}
    assert all(c["description"] for c in registered.values())
    ask_options = {o["name"]: o for o in registered["ask"]["options"]}
    assert ask_options["domain"].get("autocomplete") and ask_options["question"]["required"]
    assert [choice["value"] for choice in ask_options["mode"]["choices"]] == ["dense", "bm25", "hybrid"]
    assert {o["name"] for o in registered["knowledge"]["options"]} == {"status", "upload", "reindex"}


async def test_ask_defers_streams_and_ends_with_sources_and_buttons(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("ask", {"question": "What does the zorblat eat?", "domain": "zoology"})
    await inter.wait_acknowledged()
    assert inter.deferred and inter.ack_latency is not None and inter.ack_latency < 3
    final = await inter.wait_response_done(lambda m: bool(m.embeds))
    assert final.content.startswith("**RAG answer · zoology**")
    text = final.embed_text()
    assert "zorblat.md" in text and "lower is closer" in text.lower() and "in prompt" in text
    assert custom_ids(final) == ["ragscope:norag", "ragscope:pipeline", "ragscope:sources"]
    assert final.edit_count >= 2  # at least one streamed edit before the final one


async def test_ask_mode_ranks_by_words_or_both_and_says_so(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    for mode in ("bm25", "hybrid"):
        inter = await emulator.invoke_command(
            "ask", {"question": "What does the zorblat eat?", "domain": "zoology", "mode": mode}
        )
        final = await inter.wait_response_done(lambda m: bool(m.embeds))
        assert final.content.startswith(f"**RAG answer · zoology · {mode}**")
        text = final.embed_text()
        assert "zorblat.md" in text and f"Ranked by **{mode}" in text.replace("BM25", "bm25")
        # Hybrid shows where each source stood in both candidate lists.
        assert ("dense #" in text) == (mode == "hybrid")


async def test_ask_refuses_bad_input_with_a_short_ephemeral_reason(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    for options, reason in [
        ({"question": "   "}, "empty"),
        ({"question": "x" * 1500}, "the limit is 1,000"),
        ({"question": "zorblat?", "domain": "astronomy"}, "unknown domain"),
    ]:
        inter = await emulator.invoke_command("ask", options)
        reply = await inter.wait_response_done()
        assert reply.ephemeral and reason in reply.content.lower()


async def test_norag_is_labelled_and_has_no_sources(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("norag", {"question": "What does the zorblat eat?"})
    final = await inter.wait_response_done(lambda m: "weights alone" in m.content and m.components != [])
    assert not final.embeds
    assert custom_ids(final) == ["ragscope:pipeline"]


async def test_compare_shows_both_answers_and_the_sources(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("compare", {"question": "Where does the quillfish swim?"})
    final = await inter.wait_response_done(lambda m: bool(m.embeds))
    assert "**With RAG" in final.content and "**Without RAG" in final.content
    assert "quillfish.txt" in final.embed_text()


async def test_a_mention_is_answered_as_a_reply(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    asked = await emulator.send_message("general", "alice", "where do quillfish swim?", mention_bot=True)
    reply = await emulator.wait_for_message("general", lambda m: bool(m.embeds))
    assert reply.message_reference is not None and reply.message_reference["message_id"] == asked.id
    assert "quillfish.txt" in reply.embed_text()
    empty = await emulator.send_message("general", "bob", "", mention_bot=True)
    hint = await emulator.wait_for_message("general", lambda m: "/ask" in m.content, after=empty)
    assert "empty" in hint.content.lower()


async def test_answer_without_rag_button(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("ask", {"question": "What does the zorblat eat?"})
    answer = await inter.wait_response_done(lambda m: bool(m.embeds))
    click = await emulator.click_button(answer, "ragscope:norag", "bob")
    await click.wait_acknowledged()
    norag = await click.wait_response_done(lambda m: "weights alone" in m.content and "In the queue" not in m.content)
    assert not norag.ephemeral


async def test_show_pipeline_button_sends_the_steps_and_the_prompt(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("ask", {"question": "Who described the zorblat?"})
    answer = await inter.wait_response_done(lambda m: bool(m.embeds))
    click = await emulator.click_button(answer, "ragscope:pipeline")
    shown = await click.wait_for_followup()
    assert shown.ephemeral
    prompt = shown.file("prompt.txt")
    assert prompt is not None and b"Who described the zorblat?" in prompt.data
    assert shown.file("embedding_map.png") is not None


async def test_show_pipeline_under_a_bm25_or_hybrid_answer_names_what_ranked_in_step_3(
    emulator: DiscordEmulator, ragbot: RagBot
) -> None:
    expected = {
        "bm25": ("3 · Retrieve with BM25", "by BM25 word scores"),
        "hybrid": ("3 · Retrieve with kNN + BM25, fused", "fused by a blend of their min-max-normalised scores"),
    }
    for mode, (title, ranked) in expected.items():
        options = {"question": "What does the zorblat eat?", "domain": "zoology", "mode": mode}
        inter = await emulator.invoke_command("ask", options)
        answer = await inter.wait_response_done(lambda m: bool(m.embeds))
        assert answer.content.startswith(f"**RAG answer · zoology · {mode}**")
        click = await emulator.click_button(answer, "ragscope:pipeline")
        shown = await click.wait_for_followup()
        step3 = shown.embeds[2]
        assert step3["title"] == title
        assert ranked in step3["description"] and "nearest" not in step3["description"]
        assert "lower is closer" in step3["description"]  # the table is still by distance
        # Step 5 draws the (fake) attention over the prompt.
        attention = shown.file("attention.png")
        assert attention is not None and attention.data.startswith(b"\x89PNG")
        assert shown.embeds[4]["image"]["url"] == "attachment://attention.png"


async def test_pipeline_shows_the_five_steps_within_discords_limits(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    inter = await emulator.invoke_command("pipeline", {"question": "Who described the zorblat?", "domain": "zoology"})
    shown = await inter.wait_response_done(lambda m: len(m.embeds) == 5, timeout=20)
    titles = [embed["title"] for embed in shown.embeds]
    assert titles == [
        "1 · Embed the documents",
        "2 · Embed the query",
        "3 · Retrieve with kNN",
        "4 · Build the prompt",
        "5 · Generate",
    ]
    text = shown.embed_text()
    assert "lower is closer" in text and "zorblat.md" in text and "```ansi" in text
    map_png = shown.file("embedding_map.png")
    assert map_png is not None and map_png.data.startswith(b"\x89PNG")
    assert shown.file("prompt.txt") is not None


async def test_more_sources_pages_through_the_hits(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    small_pages = dataclasses.replace(bot_settings, sources_per_page=1)
    async with connected_bot(emulator, bot_config, small_pages):
        inter = await emulator.invoke_command("ask", {"question": "zorblat quillfish basalt", "k": 3})
        answer = await inter.wait_response_done(lambda m: bool(m.embeds))
        click = await emulator.click_button(answer, "ragscope:sources")
        pager = await click.wait_response_done()
        assert pager.ephemeral and "page 2/3" in pager.embed_text().lower()
        back = await emulator.click_button(pager, "ragscope:sources:prev")
        await back.wait_acknowledged()
        assert "page 1/3" in pager.embed_text().lower()


async def test_domain_switch_is_remembered_across_a_restart(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    async with connected_bot(emulator, bot_config, bot_settings):
        choices = await emulator.autocomplete("domain", "name", "geo")
        assert [c["value"] for c in choices] == ["geology"]
        switched = await (await emulator.invoke_command("domain", {"name": "geology"})).wait_response_done()
        assert "now searches **geology**" in switched.content
    async with connected_bot(emulator, bot_config, bot_settings):
        # The commands did not change, so the restarted bot did not register them again.
        assert len(emulator.command_syncs) == 1
        shown = await (await emulator.invoke_command("domain", {})).wait_response_done()
        assert "searches **geology**" in shown.content
        inter = await emulator.invoke_command("ask", {"question": "zorblat basalt columns"})
        answer = await inter.wait_response_done(lambda m: bool(m.embeds))
        assert answer.content.startswith("**RAG answer · geology**") and "zorblat.md" not in answer.embed_text()


async def test_knowledge_status_lists_every_domain(emulator: DiscordEmulator, ragbot: RagBot, config: Config) -> None:
    update = ragbot.next_update("zoology")  # registered before the change, so it cannot be missed
    write(Path(config.paths.knowledge_dir) / "zoology" / "broken.pdf", b"%PDF-1.4 garbage")
    await asyncio.wait_for(update, timeout=10)
    inter = await emulator.invoke_command("knowledge status")
    status = await inter.wait_for_followup(lambda m: bool(m.embeds))
    text = status.embed_text()
    assert "geology" in text and "zoology" in text and "broken.pdf" in text and status.ephemeral


async def test_upload_by_an_editor_is_saved_indexed_and_cited(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    emulator.add_role("Knowledge Editor")
    emulator.set_roles("alice", ["Knowledge Editor"])
    fact = b"Glimmerwort flowers open only under a blue moon.\n"
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("../../etc/glimmerwort.md", fact), "domain": "zoology"}, user="alice"
    )
    done = await inter.wait_response_done(lambda m: "searchable" in m.content, timeout=20)
    assert "glimmerwort.md" in done.content
    saved = Path(config.paths.knowledge_dir) / "zoology" / "glimmerwort.md"
    assert saved.read_bytes() == fact
    ask = await emulator.invoke_command("ask", {"question": "glimmerwort flowers blue moon", "domain": "zoology"})
    answer = await ask.wait_response_done(lambda m: bool(m.embeds))
    assert "#1 · zoology/glimmerwort.md" in answer.embed_text()


async def test_upload_without_permission_is_refused_and_writes_nothing(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    before = sorted(p.name for p in (Path(config.paths.knowledge_dir) / "zoology").iterdir())
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("sneaky.md", b"Nothing to see.\n"), "domain": "zoology"}, user="bob"
    )
    refused = await inter.wait_response_done()
    assert refused.ephemeral and "Manage Server" in refused.content
    assert sorted(p.name for p in (Path(config.paths.knowledge_dir) / "zoology").iterdir()) == before


async def test_upload_of_an_unsupported_name_is_refused(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    emulator.add_role("Knowledge Editor")
    emulator.set_roles("alice", ["Knowledge Editor"])
    inter = await emulator.invoke_command(
        "knowledge upload", {"file": ("../../etc/passwd", b"root:x:0:0\n"), "domain": "zoology"}, user="alice"
    )
    refused = await inter.wait_response_done()
    assert refused.ephemeral and "supported" in refused.content.lower()
    assert all(m.ephemeral for m in inter.messages)  # no public "thinking" message left behind


async def test_reindex_needs_permission_and_rebuilds(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    refused = await (
        await emulator.invoke_command("knowledge reindex", {"domain": "zoology"}, user="bob")
    ).wait_response_done()
    assert refused.ephemeral
    done = await (
        await emulator.invoke_command("knowledge reindex", {"domain": "zoology"}, user="owner")
    ).wait_response_done(lambda m: "Rebuilt" in m.content)
    assert "**zoology**" in done.content


async def test_help_explains_rag(emulator: DiscordEmulator, ragbot: RagBot) -> None:
    shown = await (await emulator.invoke_command("help")).wait_response_done()
    assert shown.ephemeral and "/ask" in shown.content and "retriev" in shown.content.lower()


def test_help_text_names_every_command_and_the_five_steps() -> None:
    assert len(HELP_TEXT) <= MESSAGE_LIMIT
    registered = {"ask", "norag", "compare", "pipeline", "domain", "eval", "help"}
    for command in [*registered, "knowledge status", "knowledge upload", "knowledge reindex"]:
        assert f"`/{command}`" in HELP_TEXT
    steps = [line for line in HELP_TEXT.splitlines() if re.match(r"[1-5]\. ", line)]
    assert len(steps) == 5


async def test_cooldown_after_a_burst(emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig) -> None:
    strict = dataclasses.replace(bot_settings, cooldown_burst=1, cooldown_seconds=60)
    async with connected_bot(emulator, bot_config, strict):
        first = await emulator.invoke_command("ask", {"question": "zorblat?"})
        await first.wait_response_done(lambda m: bool(m.embeds))
        second = await emulator.invoke_command("ask", {"question": "quillfish?"})
        slowed = await second.wait_response_done()
        assert slowed.ephemeral and "ask again in" in slowed.content


async def test_document_text_never_pings(emulator: DiscordEmulator, ragbot: RagBot, config: Config) -> None:
    update = ragbot.next_update("zoology")
    write(Path(config.paths.knowledge_dir) / "zoology" / "party.md", "@everyone the zorblat party starts <@&1> now\n")
    await asyncio.wait_for(update, timeout=10)
    inter = await emulator.invoke_command("ask", {"question": "zorblat party", "domain": "zoology"})
    final = await inter.wait_response_done(lambda m: bool(m.embeds))
    # The document's words reach the answer; no_rule_broken checks no message could ping (mentions are off).
    assert "everyone the zorblat party" in final.content


async def test_a_channel_outside_the_allow_list_is_refused(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    general = emulator.get_channel("general")["id"]
    only_general = dataclasses.replace(bot_settings, allowed_channels=(general,))
    async with connected_bot(emulator, bot_config, only_general):
        refused = await (
            await emulator.invoke_command("ask", {"question": "zorblat?"}, channel="random")
        ).wait_response_done()
        assert refused.ephemeral and "channel" in refused.content
