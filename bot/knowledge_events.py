"""Index updates from the engine's watcher thread, delivered into the bot's asyncio event loop.

The watcher reports each applied `IndexUpdate` on its own worker thread; touching asyncio objects from there
is unsafe, so `UpdateFeed.push` only schedules `put_nowait` on the loop with `call_soon_threadsafe`, and
coroutines `await feed.get()` (or `async for`) on the loop. Starting the watcher runs its first full sync,
which can embed a whole folder, so `start_watching` does it in a worker thread, off the loop. What the bot
shows for an update is the cogs' business.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from rag_engine.engine import Engine
from rag_engine.ingest.watcher import KnowledgeWatcher
from rag_engine.records import IndexUpdate

log = logging.getLogger(__name__)
T = TypeVar("T")


class UpdateFeed:
    """A thread-safe doorway from the watcher thread into one event loop's queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[IndexUpdate] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def push(self, update: IndexUpdate) -> None:
        """Any thread: hand an update to the loop."""
        self._call(self._queue.put_nowait, update)

    def push_error(self, domain: str, exc: Exception) -> None:
        """Any thread: hand a failed update's reason to the loop (the traceback is already logged)."""
        self._call(self.errors.put_nowait, (domain, str(exc)))

    def _call(self, put: Callable[[T], None], item: T) -> None:
        try:
            self._loop.call_soon_threadsafe(put, item)
        except RuntimeError:  # the loop is closed: the bot is shutting down, nobody is listening
            log.debug("dropped %r: event loop closed", item)

    async def get(self) -> IndexUpdate:
        return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[IndexUpdate]:
        while True:
            yield await self._queue.get()


async def start_watching(engine: Engine) -> tuple[KnowledgeWatcher, UpdateFeed]:
    """Start the engine's watcher from a coroutine; the first sync runs in a worker thread."""
    feed = UpdateFeed(asyncio.get_running_loop())
    watcher = await asyncio.to_thread(engine.watch, feed.push, feed.push_error)
    return watcher, feed
