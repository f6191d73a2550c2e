"""Helpers to run a discord.py client against the emulator inside a test's event loop.

    async def test_x(emulator: DiscordEmulator) -> None:
        bot = make_bot()
        async with running_bot(emulator, bot):
            ...

Other test packages can use the fixture with `from tests.discord_emulator.fixtures import emulator  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import discord
import pytest

from .server import DiscordEmulator

log = logging.getLogger(__name__)


@pytest.fixture
async def emulator() -> AsyncIterator[DiscordEmulator]:
    """A running emulator with discord.py patched to use it; stopped (and unpatched) after the test."""
    async with DiscordEmulator() as emu:
        yield emu


@contextlib.asynccontextmanager
async def running_bot(
    emu: DiscordEmulator,
    client: discord.Client,
    *,
    timeout: float = 10.0,
    guild_ready_timeout: float | None = 0.05,
) -> AsyncIterator[discord.Client]:
    """Start `client` in a task (`client.start(emu.token)`), wait until it is ready, and close it on exit.

    `guild_ready_timeout` shortens discord.py's wait for more GUILD_CREATEs before `on_ready` (default 2 s);
    pass None to keep the client's own value. Wait helpers fail immediately if the client task crashes.
    On exit the client is closed first, then the task is awaited and its exception (if any) re-raised.
    """
    if guild_ready_timeout is not None:
        state = client._connection
        state.guild_ready_timeout = min(state.guild_ready_timeout, guild_ready_timeout)
    task = asyncio.create_task(client.start(emu.token), name="discord-client")
    emu.watch_client(task)
    try:
        await emu.wait_until_ready(timeout)
        ready = asyncio.ensure_future(client.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()  # re-raise the crash
            raise AssertionError(f"the client did not become ready within {timeout}s")
        yield client
    except BaseException:
        await _shutdown(emu, client, task, timeout, reraise=False)
        raise
    await _shutdown(emu, client, task, timeout, reraise=True)


async def _shutdown(
    emu: DiscordEmulator, client: discord.Client, task: asyncio.Task[None], timeout: float, *, reraise: bool
) -> None:
    """Close the client, then wait for its task; its exception is raised unless another one is in flight."""
    emu.unwatch_client(task)
    await client.close()
    try:
        await asyncio.wait_for(task, timeout=timeout)
    except Exception:
        if reraise:
            raise
        log.exception("the client task failed")
