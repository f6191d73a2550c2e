"""The bot's one error boundary, through the real discord.py client and the loopback emulator (fake models).

A command, a button and a mention that fail all end in `bot.errors.report`: the user reads a short reason
where the answer would have been (never a "thinking…" message left on screen), the log gets the traceback of
what was not a `RagError`, and no Discord rule is broken on the way.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.client import RagBot
from bot.config import BotConfig
from bot.errors import GENERIC_FAILURE
from rag_engine.config import Config
from tests.bot.conftest import connected_bot
from tests.discord_emulator import DiscordEmulator, InteractionRecord
from tests.fakes import EchoGenerator

QUESTION = "What does the zorblat eat?"


@pytest.fixture(autouse=True)
async def no_rule_broken(emulator: DiscordEmulator) -> AsyncIterator[None]:
    yield
    assert emulator.violations == []


class CrashingGenerator(EchoGenerator):
    """EchoGenerator's answers until `crashed` is set; then every generation fails, as a broken model would."""

    name = "crashing"
    crashed = False

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        if self.crashed:
            raise RuntimeError("the model crashed")
        yield from super().stream(prompt, max_tokens, context)


def nothing_left_thinking(interaction: InteractionRecord) -> bool:
    return bool(interaction.messages) and not any(message.loading for message in interaction.messages)


async def test_answer_without_rag_after_the_domain_folder_was_removed_says_why(
    emulator: DiscordEmulator, ragbot: RagBot, config: Config
) -> None:
    asked = await emulator.invoke_command("ask", {"question": QUESTION, "domain": "zoology"})
    answer = await asked.wait_response_done(lambda m: bool(m.embeds))
    shutil.rmtree(Path(config.paths.knowledge_dir) / "zoology")

    click = await emulator.click_button(answer, "ragscope:norag", "bob")
    reason = await click.wait_response_done()
    assert reason.ephemeral and "unknown domain 'zoology'" in reason.content
    assert nothing_left_thinking(click) and click.followups == []


async def test_a_crashed_model_is_reported_on_every_surface_without_thinking_left(
    emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    model = CrashingGenerator()
    async with connected_bot(emulator, bot_config, bot_settings, generator=model):
        asked = await emulator.invoke_command("ask", {"question": QUESTION, "domain": "zoology"})
        answer = await asked.wait_response_done(lambda m: bool(m.embeds))
        model.crashed = True
        caplog.clear()

        # A button, after its deferral: the reason replaces the "thinking…" placeholder.
        click = await emulator.click_button(answer, "ragscope:norag", "bob")
        shown = await click.wait_response_done()
        assert shown.content == GENERIC_FAILURE and nothing_left_thinking(click)

        # A command, after its deferral: the same.
        command = await emulator.invoke_command("ask", {"question": QUESTION})
        shown = await command.wait_response_done()
        assert shown.content == GENERIC_FAILURE and nothing_left_thinking(command)

        # A mention: the bot's reply says it.
        mention = await emulator.send_message("general", "alice", QUESTION, mention_bot=True)
        reply = await emulator.wait_for_message("general", lambda m: m.content == GENERIC_FAILURE, after=mention)
        assert reply.message_reference is not None and reply.message_reference["message_id"] == mention.id
        assert not reply.embeds and not reply.components

    logged = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "bot"]
    assert len(logged) == 3
    assert all(r.exc_info is not None and str(r.exc_info[1]) == "the model crashed" for r in logged)
