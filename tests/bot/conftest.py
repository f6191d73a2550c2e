"""Fixtures for the bot's tests: the loopback Discord emulator and a `RagBot` over fake models connected to it.

The bot is the real `RagBot` (real cogs, queue, watcher, SQLite store) talking to the emulator through the
unmodified discord.py client over loopback sockets; only the two models are the small fakes of tests/fakes.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.client import RagBot
from rag_engine.config import Config, WatchConfig
from rag_engine.engine import Engine
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.fixtures import emulator
from tests.fakes import EchoGenerator, HashingEmbedder

__all__ = ["emulator"]

BotFactory = Callable[..., "asynccontextmanager[RagBot]"]


@pytest.fixture
def bot_config(config: Config) -> Config:
    """Fast settings: short debounce and edit interval, a generous cooldown (one test tightens it)."""
    return dataclasses.replace(
        config,
        watch=WatchConfig(rebuild_debounce_seconds=0.1, max_rebuild_delay_seconds=2.0),
        bot=dataclasses.replace(config.bot, edit_interval_seconds=0.05, cooldown_burst=50, cooldown_seconds=1.0),
    )


@asynccontextmanager
async def connected_bot(emu: DiscordEmulator, config: Config) -> AsyncIterator[RagBot]:
    engine = Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)
    # No attention model with fake models: the pipeline view then says why instead of drawing the heatmap.
    bot = RagBot(config, engine, attention=lambda: None)
    async with running_bot(emu, bot):
        yield bot


@pytest.fixture
async def ragbot(emulator: DiscordEmulator, bot_config: Config) -> AsyncIterator[RagBot]:
    async with connected_bot(emulator, bot_config) as bot:
        yield bot


def knowledge_of(config: Config) -> Path:
    return Path(config.paths.knowledge_dir)
