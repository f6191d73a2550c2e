"""One generation at a time: a FIFO queue of blocking jobs with one asyncio worker.

The language model runs on CPU and a second concurrent generation would only halve the speed of both, so
every question goes through `GenerationQueue.submit`. The worker runs one job at a time in a thread
(`asyncio.to_thread`), so the event loop stays free for Discord. A `Ticket` is the caller's handle: its
`position` (how many jobs are ahead, the running one included; 0 = running now), its result, and `cancel()`.
Position changes are reported through the ticket's optional `on_position` callback so a waiting user can see
"You are #2 in the queue".

Not here: what a job does (the cogs build the engine call), cooldowns (`bot.cooldown`), message editing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PositionCallback = Callable[[int], Awaitable[None]]


class Ticket(Generic[T]):
    """A submitted job: where it stands in the queue and, once run, its result."""

    def __init__(
        self,
        queue: GenerationQueue,
        work: Callable[[], T],
        on_position: PositionCallback | None,
        position: int,
    ) -> None:
        self._queue = queue
        self._work = work
        self._on_position = on_position
        self._future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # Jobs ahead of this one, the running one included; 0 = running (or about to run on an idle queue).
        self.position = position
        # The last position handed to on_position; a delivery task catches up with `position` (see _report).
        self._reported = 0
        self._reporter: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def cancelled(self) -> bool:
        return self._future.cancelled()

    async def result(self) -> T:
        """Wait for the job and return its value; re-raises the job's exception.

        Raises `asyncio.CancelledError` if the ticket was cancelled or the queue stopped. The wait is shielded:
        a caller that gives up waiting (its own task cancelled) does not cancel the job; `cancel()` does.
        """
        return await asyncio.shield(self._future)

    def cancel(self) -> bool:
        """Take a waiting job out of the queue. A running job cannot be interrupted (it is a thread), so
        cancelling it, or a finished one, does nothing and returns False."""
        return self._queue._withdraw(self)

    # -- used by the queue ----------------------------------------------------------------------------------
    def _move_to(self, position: int) -> None:
        if position == self.position:
            return
        self.position = position
        self._report()

    def _report(self) -> None:
        """Deliver the position to on_position without holding up the worker (an edit is an HTTP call).

        One delivery task per ticket awaits the callbacks one after another, so they arrive in order; if the
        position moves again while a callback is still running, the task reports only the newest value:
        bursts coalesce instead of queueing stale edits against Discord's rate limits.
        """
        if self._on_position is None or self.done:
            return
        if self._reporter is None or self._reporter.done():
            self._reporter = asyncio.get_running_loop().create_task(self._deliver())
            self._queue._track(self._reporter)

    async def _deliver(self) -> None:
        assert self._on_position is not None
        while self._reported != self.position and not self.done:
            position = self.position
            try:
                await self._on_position(position)
            except Exception:
                # A failed "you are #n" edit must not stop the queue or the job.
                log.warning("queue position callback failed", exc_info=True)
            self._reported = position

    def _start(self) -> None:
        # Set before the worker's repositioning so the job's own "now running" (0) report is not duplicated.
        self._move_to(0)


class GenerationQueue:
    """A FIFO of blocking jobs; one worker task runs them one at a time in a thread."""

    def __init__(self) -> None:
        # Any: the queue holds tickets of every result type and never looks at their values.
        self._waiting: deque[Ticket[Any]] = deque()
        self._current: Ticket[Any] | None = None
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._stopped = False
        # Strong references to position delivery tasks: the loop only keeps weak ones.
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Jobs waiting plus the running one."""
        return len(self._waiting) + (1 if self._current is not None else 0)

    @property
    def running(self) -> bool:
        """True while a job is executing in its thread."""
        return self._current is not None

    async def start(self) -> None:
        """Start the worker task (once)."""
        if self._worker is not None:
            return
        self._stopped = False
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="generation-queue")

    async def stop(self) -> None:
        """Stop the worker and cancel every waiting ticket.

        A job already running in its thread cannot be interrupted; its thread runs to the end in the
        background, but its ticket is cancelled and the result dropped.
        """
        self._stopped = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while self._waiting:
            self._waiting.popleft()._future.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, work: Callable[[], T], on_position: PositionCallback | None = None) -> Ticket[T]:
        """Queue a blocking function; `on_position(n)` is awaited (in its own task) on every position change,
        including once right away when the job has to wait."""
        if self._stopped:
            raise RuntimeError("the generation queue is stopped")
        ticket: Ticket[T] = Ticket(self, work, on_position, position=len(self))
        self._waiting.append(ticket)
        self._wake.set()
        if ticket.position > 0:
            ticket._report()
        return ticket

    # -- internals ------------------------------------------------------------------------------------------
    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _withdraw(self, ticket: Ticket[T]) -> bool:
        if ticket.done or ticket not in self._waiting:
            return False
        self._waiting.remove(ticket)
        ticket._future.cancel()
        self._reposition()
        return True

    def _reposition(self) -> None:
        """Give every waiting ticket its new place after the line moved (a job started or one was withdrawn)."""
        ahead = 1 if self._current is not None else 0
        for index, ticket in enumerate(self._waiting):
            ticket._move_to(index + ahead)

    async def _run(self) -> None:
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            ticket = self._waiting.popleft()
            self._current = ticket
            ticket._start()
            self._reposition()
            try:
                value = await asyncio.to_thread(ticket._work)
            except Exception as exc:
                if not ticket.done:
                    ticket._future.set_exception(exc)
            else:
                if not ticket.done:
                    ticket._future.set_result(value)
            finally:
                # Cancelled mid-job (stop) or a BaseException from the job: never leave the caller hanging.
                if not ticket.done:
                    ticket._future.cancel()
                self._current = None
