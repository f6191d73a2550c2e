"""One generation at a time: a FIFO queue of blocking jobs with one asyncio worker.

The language model runs on CPU and a second concurrent generation would only halve the speed of both, so
every question goes through `GenerationQueue.submit`. The worker runs one job at a time in a thread
(`asyncio.to_thread`), so the event loop stays free for Discord. A `Ticket` is the caller's handle: its
`position` (how many jobs are ahead, the running one included; 0 = running now), its result, and `cancel()`.
Position changes are reported through the ticket's optional `on_position` callback so a waiting user can see
"You are #2 in the queue".

Floods: the queue is bounded per user and in total; `check_room` (and `submit`) refuse a job over a bound with
`QueueFullError`, which carries an estimate of when a place frees up, from a running median of measured job
durations. A job may carry a deadline (the moment its Discord interaction token becomes useless, in epoch
seconds): the worker drops a job that could not finish before it, rather than generate an answer nobody can
be shown, and fails its ticket with `JobExpiredError`.

Not here: what a job does (`bot.answering` builds the engine call), cooldowns (`bot.cooldown`), message
editing; the two errors (`bot.errors`) carry the words a refused user reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from bot.errors import JobExpiredError, QueueFullError
from bot.queueing import INITIAL_JOB_SECONDS, JobTimes, PositionCallback, PositionReporter

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["GenerationQueue", "PositionCallback", "Ticket"]


class Ticket(Generic[T]):
    """A submitted job: where it stands in the queue and, once run, its result."""

    def __init__(
        self,
        queue: GenerationQueue,
        work: Callable[[], T],
        on_position: PositionCallback | None,
        position: int,
        user_id: int | None = None,
        deadline: float | None = None,
    ) -> None:
        self._queue = queue
        self._work = work
        # Who asked (for the per-user bound; None counts for nobody) and by when, in the queue's clock
        # (epoch seconds), the job must have finished to be of any use (None: no deadline).
        self.user_id = user_id
        self.deadline = deadline
        self._future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # Jobs ahead of this one, the running one included; 0 = running (or about to run on an idle queue).
        self._positions = PositionReporter(on_position, position, queue._track, lambda: self.done)

    @property
    def position(self) -> int:
        return self._positions.position

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
        self._positions.move_to(position)

    def _report(self) -> None:
        # In its own task, in order, coalesced: an edit is an HTTP call and must not hold up the worker.
        self._positions.report()

    def _start(self) -> None:
        # Set before the worker's repositioning so the job's own "now running" (0) report is not duplicated.
        self._move_to(0)


class GenerationQueue:
    """A FIFO of blocking jobs; one worker task runs them one at a time in a thread.

    `max_per_user` and `max_length` bound the jobs (waiting or running) of one user and of everyone; None is
    unbounded. `clock` is the time deadlines are in (epoch seconds, like Discord's timestamps), `timer` what
    job durations are measured with; tests pass fake ones.
    """

    def __init__(
        self,
        max_per_user: int | None = None,
        max_length: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        initial_job_seconds: float = INITIAL_JOB_SECONDS,
    ) -> None:
        if (max_per_user is not None and max_per_user < 1) or (max_length is not None and max_length < 1):
            raise ValueError("queue bounds must be at least 1")
        self.max_per_user = max_per_user
        self.max_length = max_length
        self._clock = clock
        self._timer = timer
        self._times = JobTimes(initial_job_seconds)
        self._current_started = 0.0
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

    @property
    def measured_job_seconds(self) -> float | None:
        """The median duration of the recent jobs that ran to the end; None before the first one."""
        return self._times.measured

    @property
    def job_seconds(self) -> float:
        """The estimate for one job: the measured median, or the initial guess before anything was timed."""
        return self._times.estimate

    def jobs_of(self, user_id: int) -> int:
        """How many jobs of this user are waiting or running."""
        return sum(1 for ticket in self._line() if ticket.user_id == user_id)

    def check_room(self, user_id: int | None = None) -> None:
        """Raise `QueueFullError` if one more job of `user_id` would go over a bound; otherwise do nothing.

        The estimate is when the first place opens: for the user's bound, when their earliest job finishes;
        for the total, when the running job does.
        """
        line = list(self._line())
        if user_id is not None and self.max_per_user is not None:
            mine = [index for index, ticket in enumerate(line) if ticket.user_id == user_id]
            if len(mine) >= self.max_per_user:
                raise QueueFullError(self._finished_in(mine[0]), per_user=True, limit=self.max_per_user)
        if self.max_length is not None and len(line) >= self.max_length:
            raise QueueFullError(self._finished_in(0), per_user=False, limit=self.max_length)

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

    def submit(
        self,
        work: Callable[[], T],
        on_position: PositionCallback | None = None,
        *,
        user_id: int | None = None,
        deadline: float | None = None,
    ) -> Ticket[T]:
        """Queue a blocking function; `on_position(n)` is awaited (in its own task) on every position change,
        including once right away when the job has to wait.

        Raises `QueueFullError` over a bound (see `check_room`). A job with a `deadline` (epoch seconds) that it
        could not finish by when its turn comes is dropped; its ticket raises `JobExpiredError`.
        """
        if self._stopped:
            raise RuntimeError("the generation queue is stopped")
        self.check_room(user_id)
        ticket: Ticket[T] = Ticket(self, work, on_position, position=len(self), user_id=user_id, deadline=deadline)
        self._waiting.append(ticket)
        self._wake.set()
        if ticket.position > 0:
            ticket._report()
        return ticket

    # -- internals ------------------------------------------------------------------------------------------
    def _line(self) -> Iterator[Ticket[Any]]:
        """Every job in the queue in order, the running one first."""
        if self._current is not None:
            yield self._current
        yield from self._waiting

    def _finished_in(self, index: int) -> float:
        """Estimated seconds until the job at `index` of `_line()` is done (at least 1: never "in 0 s")."""
        per_job = self.job_seconds
        if self._current is None:
            seconds = (index + 1) * per_job
        else:
            # The running job has already used part of its time; one that overruns the median ends "any moment".
            left = max(0.0, per_job - (self._timer() - self._current_started))
            seconds = left + index * per_job
        return max(1.0, seconds)

    def _too_late(self, ticket: Ticket[Any]) -> bool:
        """True if the job could not finish before its deadline (by the measured median; unmeasured: 0 s)."""
        if ticket.deadline is None:
            return False
        return self._clock() + (self.measured_job_seconds or 0.0) > ticket.deadline

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
            if self._too_late(ticket):
                # Nobody could be shown the answer (Discord refuses edits after the token expires): skip the
                # work; the caller tells the user while it still can.
                log.info("dropped a queued job past its deadline (user %s)", ticket.user_id)
                ticket._future.set_exception(JobExpiredError())
                self._reposition()
                continue
            self._current = ticket
            self._current_started = self._timer()
            ticket._start()
            self._reposition()
            try:
                value = await asyncio.to_thread(ticket._work)
            except Exception as exc:
                if not ticket.done:
                    ticket._future.set_exception(exc)
            else:
                # Only jobs that ran to the end are timed: a failure is usually quick and says nothing about
                # how long the next answer takes.
                self._times.add(self._timer() - self._current_started)
                if not ticket.done:
                    ticket._future.set_result(value)
            finally:
                # Cancelled mid-job (stop) or a BaseException from the job: never leave the caller hanging.
                if not ticket.done:
                    ticket._future.cancel()
                self._current = None
