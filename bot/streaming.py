"""Streaming an answer into a Discord message without tripping the edit rate limit.

The engine generates in a worker thread and calls `feed(piece)` once per token. `ThrottledEditor` keeps the
text under a lock (so `finish` always sees every piece, whatever the callback order) and wakes the event
loop with `loop.call_soon_threadsafe`: asyncio objects and discord.py must only be touched on the loop. On
the loop, at most one edit is in flight and edits start at most once per interval (the first one as soon as
the first piece arrives); every edit carries the whole text so far, so an edit that fails loses nothing, the
next one catches up. `restart` empties the text when an answer starts over (a question taken again by another
answer worker, `bot.redis_queue`).

Not here: what the message looks like (`render`, passed in: `bot.render.answer.answer_content`), the final message
with buttons and sources (`bot.answering.deliver_answer`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

import discord

log = logging.getLogger(__name__)


class ThrottledEditor:
    """Collects streamed text from any thread and edits one message at most once per interval."""

    def __init__(
        self,
        edit: Callable[[str], Awaitable[None]],
        interval_seconds: float,
        loop: asyncio.AbstractEventLoop,
        render: Callable[[str], str],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._edit = edit
        self._interval = max(0.0, interval_seconds)
        self._loop = loop
        self._render = render
        # Seconds, like loop.time() (the default); a test may pass a fake one. Timers still wait real seconds.
        self._clock = clock if clock is not None else loop.time
        self._lock = threading.Lock()  # guards _pieces and _wake_pending, shared with the feeding thread
        self._pieces: list[str] = []
        self._wake_pending = False
        # Loop-only state from here on.
        self._shown = ""  # the text the last successful edit put on screen
        self._last_edit_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.edits = 0  # edits attempted, the final one included (for logs and tests)

    @property
    def text(self) -> str:
        """Everything fed so far."""
        with self._lock:
            return "".join(self._pieces)

    def feed(self, piece: str) -> None:
        """Any thread: add a piece of text. Wakes the loop once per batch, not once per piece."""
        with self._lock:
            self._pieces.append(piece)
        self._nudge()

    def restart(self) -> None:
        """Any thread: drop the text so far, because the answer starts over (its worker died and another one
        took the question again); the next edit shows the empty message, then the new text streams in."""
        with self._lock:
            self._pieces.clear()
        self._nudge()

    def _nudge(self) -> None:
        # A wake already on its way reads the text when it runs, so it sees what was just changed.
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: the bot is shutting down and nobody will see an edit
            log.debug("streamed piece not shown: event loop closed")

    async def finish(self) -> str:
        """Stop throttling, wait for an edit in flight, make one last edit if the text changed since the last
        successful one, and return the whole text."""
        await self._close()
        text = self.text
        if text != self._shown:
            await self._perform(text)
        return text

    async def stop(self) -> str:
        """Stop editing without a last edit (the caller replaces the message, e.g. with an error) and return
        the text so far. Waits for an edit in flight so it cannot land after the caller's own edit."""
        await self._close()
        return self.text

    # -- on the loop -------------------------------------------------------------------------------------------
    async def _close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            # asyncio.wait, not await: the task swallows edit errors itself, and a cancelled caller
            # should not cancel an edit that is already on the wire.
            await asyncio.wait({self._task})

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._schedule()

    def _schedule(self) -> None:
        """Start an edit now if the interval has passed, else make sure a timer will call back when it has.

        The clock decides, the timer only wakes us: a piece that arrives after the interval has passed (by
        the clock) starts the edit at once even if the timer has not fired yet.
        """
        if self._closed or self._task is not None:
            return  # the edit in flight calls back here when it is done
        if self.text == self._shown:
            return
        now = self._clock()
        due = now if self._last_edit_at is None else self._last_edit_at + self._interval
        if due <= now:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._task = self._loop.create_task(self._edit_then_reschedule())
        elif self._timer is None:
            self._timer = self._loop.call_later(due - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._schedule()

    async def _edit_then_reschedule(self) -> None:
        try:
            await self._perform(self.text)
        finally:
            self._task = None
        # Pieces that arrived during the edit found it in flight and left the next edit to us; so does a
        # failed edit, which is retried after the interval even if no piece follows.
        self._schedule()

    async def _perform(self, text: str) -> None:
        # Stamped at the start: the interval bounds how often edits are sent, however long each takes.
        self._last_edit_at = self._clock()
        self.edits += 1
        try:
            await self._edit(self._render(text))
        except discord.HTTPException as exc:
            # Rate limits are retried by discord.py; this is something else (message deleted, outage). The
            # next edit carries the whole text again.
            log.warning("editing the streamed answer failed: %s", exc)
        except Exception:
            log.exception("editing the streamed answer failed")
        else:
            self._shown = text
