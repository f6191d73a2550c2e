"""Floods and restarts, through the real discord.py client and the loopback emulator (fake models).

The queue's bounds refuse a question at once with "busy, try again in N s"; every expensive command, button
and mention passes the same admission check (channel, queue room, cooldown), `/knowledge status` included;
a question that waited past its interaction token is dropped with a note in its message; and answers a
restart cut short are finished by the next start. `GatedGenerator` plays a slow model: its answers wait until
the test releases them, so every wait is an await with a timeout, never a sleep.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.answering import INTERACTION_TOKEN_SECONDS
from bot.client import INTERRUPTED_NOTE
from bot.config import BotConfig
from bot.store import DomainStore, InFlight
from rag_engine.config import Config
from tests.bot.conftest import GatedGenerator, connected_bot
from tests.discord_emulator import DiscordEmulator, InteractionRecord, MessageRecord
from tests.fakes import EchoGenerator
from tests.rag_engine.evaluation.test_eval_domains import write_questions

ZORBLAT_FOOD = "What does the zorblat eat?"
ZORBLAT_AUTHOR = "Who described the zorblat?"
QUILLFISH = "Where does the quillfish swim?"
QUEUED = "In the queue: #"


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


def answered(message: MessageRecord) -> bool:
    return bool(message.embeds)


def try_again_seconds(text: str) -> int:
    found = re.search(r"Try again in (\d+) s\.", text)
    assert found, text
    return int(found[1])


async def ask(emu: DiscordEmulator, question: str, user: str, **options: Any) -> InteractionRecord:
    return await emu.invoke_command("ask", {"question": question, **options}, user=user)


# -- 7a: bounded queue ------------------------------------------------------------------------------------------
async def test_a_question_over_the_users_bound_is_refused_at_once_with_an_estimate(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    gated = GatedGenerator()
    settings = dataclasses.replace(bot_settings, max_queued_per_user=2, max_queue_length=20)
    async with connected_bot(emulator, bot_config, settings, generator=gated):
        running = await ask(emulator, ZORBLAT_FOOD, "alice")
        await gated.next_started()
        waiting = await ask(emulator, ZORBLAT_AUTHOR, "alice")
        await waiting.wait_response_done(lambda m: f"{QUEUED}1" in m.content)

        refused = await ask(emulator, QUILLFISH, "alice")
        busy = await refused.wait_response_done()
        # Refused before any "thinking" message: an ephemeral reply, with when to come back.
        assert busy.ephemeral and not refused.deferred
        assert "you already have 2 questions in the queue" in busy.content
        assert try_again_seconds(busy.content) >= 1
        asked = await emulator.send_message("general", "alice", "where do quillfish swim?", mention_bot=True)
        reply = await emulator.wait_for_message("general", lambda m: "busy" in m.content, after=asked)
        assert "Try again in" in reply.content

        other = await ask(emulator, QUILLFISH, "bob")  # another user still has room
        await other.wait_response_done(lambda m: f"{QUEUED}2" in m.content)
        gated.release()
        for inter in (running, waiting, other):
            await inter.wait_response_done(answered)
        assert len(gated.prompts) == 3  # the refused questions never reached the model


async def test_a_full_queue_refuses_everyone_and_says_when_to_come_back(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    gated = GatedGenerator()
    gated.release()
    settings = dataclasses.replace(bot_settings, max_queued_per_user=1, max_queue_length=2)
    async with connected_bot(emulator, bot_config, settings, generator=gated) as bot:
        earlier = await (await ask(emulator, ZORBLAT_AUTHOR, "owner")).wait_response_done(answered)
        await gated.next_started()
        gated.hold()
        running = await ask(emulator, ZORBLAT_FOOD, "alice")
        await gated.next_started()
        waiting = await ask(emulator, QUILLFISH, "bob")
        await waiting.wait_response_done(lambda m: f"{QUEUED}1" in m.content)
        assert len(bot.queue) == 2

        refused = await ask(emulator, QUILLFISH, "owner")
        busy = await refused.wait_response_done()
        assert busy.ephemeral and "2 questions are already in the queue" in busy.content
        assert try_again_seconds(busy.content) >= 1
        # The buttons under an earlier answer queue work too: the same check refuses them.
        for button in ("ragscope:pipeline", "ragscope:norag"):
            click = await emulator.click_button(earlier, button, "owner")
            shown = await click.wait_response_done()
            assert shown.ephemeral and "2 questions are already in the queue" in shown.content, button

        gated.release()
        for inter in (running, waiting):
            await inter.wait_response_done(answered)


# -- 7b: one admission check for everything expensive --------------------------------------------------------
async def test_every_expensive_command_and_button_shares_the_cooldown(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    write_questions(bot_config)
    echo = EchoGenerator()
    strict = dataclasses.replace(bot_settings, cooldown_burst=1, cooldown_seconds=60)
    async with connected_bot(emulator, bot_config, strict, generator=echo):
        answer = await (await ask(emulator, ZORBLAT_AUTHOR, "alice")).wait_response_done(answered)
        generated = len(echo.prompts)

        refusals: list[MessageRecord] = []
        for button in ("ragscope:pipeline", "ragscope:norag"):
            refusals.append(await (await emulator.click_button(answer, button, "alice")).wait_response_done())
        for name, options in [
            ("pipeline", {"question": ZORBLAT_AUTHOR}),
            ("eval", {"domain": "zoology"}),
            ("eval", {"domain": "zoology", "what": "answers"}),
            ("compare", {"question": ZORBLAT_AUTHOR}),
            ("norag", {"question": ZORBLAT_AUTHOR}),
            ("ask", {"question": ZORBLAT_AUTHOR}),
        ]:
            inter = await emulator.invoke_command(name, options, user="alice")
            refusals.append(await inter.wait_response_done())
        for refused in refusals:
            assert refused.ephemeral and "ask again in" in refused.content, refused.summary()
        asked = await emulator.send_message("general", "alice", "who described the zorblat?", mention_bot=True)
        reply = await emulator.wait_for_message("general", lambda m: "ask again in" in m.content, after=asked)
        assert reply.message_reference is not None
        assert len(echo.prompts) == generated  # nothing refused was generated

        # Bob has his own bucket: the same button works for him.
        click = await emulator.click_button(answer, "ragscope:pipeline", "bob")
        shown = await click.wait_for_followup()
        assert shown.ephemeral and shown.file("prompt.txt") is not None


# -- 7c: a job that would outlive its interaction token ------------------------------------------------------
class ShiftedClock:
    """Wall-clock time plus an offset the test sets: the queue's deadlines see the future early."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_seconds


async def test_a_question_that_waited_past_its_token_is_dropped_and_told_so(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    gated = GatedGenerator()
    clock = ShiftedClock()
    async with connected_bot(emulator, bot_config, bot_settings, generator=gated, clock=clock):
        running = await ask(emulator, ZORBLAT_FOOD, "alice")
        await gated.next_started()
        late = await ask(emulator, QUILLFISH, "bob")
        await late.wait_response_done(lambda m: f"{QUEUED}1" in m.content)

        clock.offset_seconds = INTERACTION_TOKEN_SECONDS  # alice's answer took "15 minutes"
        gated.release()
        await running.wait_response_done(answered)
        dropped = await late.wait_response_done(lambda m: "waited in the queue" in m.content)
        assert "Please ask again" in dropped.content and not dropped.ephemeral and not dropped.embeds
        assert late.followups == []  # the note is in the message itself, nothing more is sent
        assert len(gated.prompts) == 1  # bob's question was never generated


# -- 9c: /knowledge status only where the bot answers --------------------------------------------------------
async def test_knowledge_status_answers_only_where_questions_are_answered(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    general = emulator.get_channel("general")["id"]
    settings = dataclasses.replace(bot_settings, allowed_channels=(general,), allow_dms=False)
    async with connected_bot(emulator, bot_config, settings):
        in_dm = await emulator.invoke_command("knowledge status", channel=emulator.dm_channel("alice"))
        refused = await in_dm.wait_response_done()
        assert refused.ephemeral and "direct messages" in refused.content and not refused.embeds
        elsewhere = await emulator.invoke_command("knowledge status", channel="random")
        refused = await elsewhere.wait_response_done()
        assert refused.ephemeral and "this channel" in refused.content and not refused.embeds
        here = await emulator.invoke_command("knowledge status", channel="general")
        status = await here.wait_for_followup(lambda m: bool(m.embeds))
        assert status.ephemeral and "zoology" in status.embed_text()


async def test_knowledge_status_in_dms_when_they_are_allowed(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    async with connected_bot(emulator, bot_config, dataclasses.replace(bot_settings, allow_dms=True)):
        in_dm = await emulator.invoke_command("knowledge status", channel=emulator.dm_channel("alice"))
        status = await in_dm.wait_for_followup(lambda m: bool(m.embeds))
        assert "geology" in status.embed_text()


# -- 9b: knowledge roles by id -------------------------------------------------------------------------------
async def test_a_knowledge_role_listed_by_id_may_reindex(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    role = emulator.add_role("Librarians")
    emulator.set_roles("alice", [role])
    lookalike = emulator.add_role(role["id"])  # a role *named* like the id is not the role
    emulator.set_roles("bob", [lookalike])
    editors = dataclasses.replace(bot_settings, knowledge_roles=(role["id"], "Archivists"))
    async with connected_bot(emulator, bot_config, editors):
        refused = await (
            await emulator.invoke_command("knowledge reindex", {"domain": "zoology"}, user="bob")
        ).wait_response_done()
        # The id is shown as a role mention (Discord shows the name); the no-ping rule is checked at teardown.
        assert refused.ephemeral and f"<@&{role['id']}>" in refused.content and "Archivists" in refused.content
        done = await (
            await emulator.invoke_command("knowledge reindex", {"domain": "zoology"}, user="alice")
        ).wait_response_done(lambda m: "Rebuilt" in m.content)
        assert "**zoology**" in done.content


# -- 9d: restarts --------------------------------------------------------------------------------------------
async def test_answers_cut_short_by_a_restart_are_finished_by_the_next_start(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig
) -> None:
    gated = GatedGenerator(hold_at=1)  # one token streamed, then the "model" stalls
    async with connected_bot(emulator, bot_config, bot_settings, generator=gated) as first:
        streaming = await ask(emulator, ZORBLAT_FOOD, "alice")
        await gated.next_started()
        half = await streaming.wait_response_done()
        assert half.content.startswith("**RAG answer") and QUEUED not in half.content and not half.embeds
        queued = await ask(emulator, ZORBLAT_AUTHOR, "bob")
        await queued.wait_response_done(lambda m: f"{QUEUED}1" in m.content)
        asked = await emulator.send_message("general", "alice", "where do quillfish swim?", mention_bot=True)
        reply = await emulator.wait_for_message("general", lambda m: f"{QUEUED}2" in m.content, after=asked)
        assert len(first.domains.in_flight()) == 3
    gated.release()  # the stalled thread of the stopped bot may end now; its result goes nowhere

    # A leftover whose interaction token has expired meanwhile: nothing can edit it, it is only forgotten.
    store = DomainStore(first.state_dir / "bot.sqlite3")
    store.add_in_flight(
        InFlight(
            application_id=int(emulator.application_id),
            interaction_token="long-expired-token",
            token_expires_at=time.time() - 1,
        )
    )
    store.close()

    async with connected_bot(emulator, bot_config, bot_settings) as second:
        messages = [streaming.original, queued.original, reply]
        assert all(message is not None for message in messages)
        await emulator.wait_for(
            lambda: all(m is not None and m.content == INTERRUPTED_NOTE for m in messages),
            what="the interrupted answers to say so",
        )
        assert second.domains.in_flight() == {}
        assert not any("long-expired-token" in request.path for request in emulator.requests)
        # The new bot answers normally.
        fresh = await (await ask(emulator, ZORBLAT_FOOD, "alice")).wait_response_done(answered)
        assert fresh.content.startswith("**RAG answer")
        assert second.domains.in_flight() == {}  # a finished answer leaves no record
