"""Fixtures for the bot's tests: the loopback Discord emulator and a `RagBot` over fake models connected to it.

The bot is the real `RagBot` (real cogs, queue, watcher, SQLite store) talking to the emulator through the
unmodified discord.py client over loopback sockets; only the models are the small fakes of tests/fakes.py (the
pipeline view's attention model too), or `GatedGenerator`, whose answers wait until the test lets them go (a
slow model, without sleeping).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.client import RagBot
from bot.config import BotConfig
from bot.jobs import GenerationQueue
from rag_engine.config import Config, WatchConfig
from rag_engine.engine import Engine
from rag_engine.generate.generation import Generator
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.fixtures import emulator
from tests.fakes import EchoGenerator, HashingEmbedder, UniformAttention

# A gated generation that the test forgot to release gives up after this long (no thread is left blocked).
GATE_TIMEOUT = 30.0

__all__ = ["emulator"]

BotFactory = Callable[..., "asynccontextmanager[RagBot]"]


@pytest.fixture
def bot_config(config: Config) -> Config:
    """The engine's settings for a bot: a short debounce, so uploads are indexed quickly."""
    return dataclasses.replace(config, watch=WatchConfig(rebuild_debounce_seconds=0.1, max_rebuild_delay_seconds=2.0))


@pytest.fixture
def bot_settings() -> BotConfig:
    """The bot's own settings: a short edit interval and a generous cooldown (some tests tighten them)."""
    return BotConfig(edit_interval_seconds=0.05, cooldown_burst=50, cooldown_seconds=1.0)


class GatedGenerator(EchoGenerator):
    """EchoGenerator's answers, held at piece `hold_at` until `release()`: 0 holds an answer before its first
    token (a running job that keeps the ones behind it queued), 1 after its first (a half-streamed answer).
    Each generation's start is reported to the event loop, so a test awaits it instead of sleeping."""

    name = "gated"

    def __init__(self, hold_at: int = 0) -> None:
        super().__init__()
        self.hold_at = hold_at
        self._loop = asyncio.get_running_loop()
        self._started: asyncio.Queue[str] = asyncio.Queue()
        self._gate = threading.Event()

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        self._loop.call_soon_threadsafe(self._started.put_nowait, prompt)
        for index, piece in enumerate(super().stream(prompt, max_tokens, context)):
            if index == self.hold_at and not self._gate.wait(GATE_TIMEOUT):
                raise TimeoutError("the test never released the gated generator")
            yield piece

    def release(self) -> None:
        self._gate.set()

    def hold(self) -> None:
        """Hold the generations that start from now on again."""
        self._gate.clear()

    async def next_started(self, timeout: float = 10.0) -> str:
        """The prompt of the next generation to start."""
        return await asyncio.wait_for(self._started.get(), timeout)


@asynccontextmanager
async def connected_bot(
    emu: DiscordEmulator,
    config: Config,
    settings: BotConfig,
    *,
    generator: Generator | None = None,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[RagBot]:
    """A `RagBot` over fake models connected to `emu`, with the engine's `config` and the bot's `settings`;
    `generator` replaces EchoGenerator, `clock` the queue's clock for deadlines (epoch seconds)."""
    make_generator: Callable[[], Generator] = EchoGenerator if generator is None else (lambda: generator)
    # The pipeline view's attention comes from a fake too (uniform attention), so its heatmap is drawn fast.
    engine = Engine(config, embedder=HashingEmbedder, generator=make_generator, attention=UniformAttention)
    bot = RagBot(config, engine, settings)
    if clock is not None:
        bot.queue = GenerationQueue(settings.max_queued_per_user, settings.max_queue_length, clock=clock)
    async with running_bot(emu, bot):
        yield bot


@pytest.fixture
async def ragbot(emulator: DiscordEmulator, bot_config: Config, bot_settings: BotConfig) -> AsyncIterator[RagBot]:
    async with connected_bot(emulator, bot_config, bot_settings) as bot:
        yield bot


def knowledge_of(config: Config) -> Path:
    return Path(config.paths.knowledge_dir)
