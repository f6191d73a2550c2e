"""What every queue of answers shares: reporting a job's place in line, and how long a job takes.

`PositionReporter` hands a waiting job's position to its callback (an edit of "You are #2 in the queue")
without holding up whoever moves the job: one delivery task per job awaits the callbacks in order, and a
burst of moves coalesces into the newest position. `JobTimes` is the running median of measured job
durations, which estimates when a place frees up (a refusal says "try again in N s") and whether a job could
still finish before its deadline.

Used by the in-process `GenerationQueue` (`bot.jobs`) and, past one machine, by the Redis gateway and its
workers (`bot.redis_queue`, `bot.worker`). Not here: the queues themselves.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

PositionCallback = Callable[[int], Awaitable[None]]

# How many recent job durations the running median looks at: enough to ignore one slow /eval, few enough to
# follow a machine that got busier.
DURATION_SAMPLES = 31
# The per-job estimate before any job has been timed (a short answer on a CPU takes a few seconds).
INITIAL_JOB_SECONDS = 5.0


class PositionReporter:
    """One job's position (jobs ahead of it, a running one included; 0 = running) and its delivery.

    `track` keeps a strong reference to each delivery task (the loop keeps only weak ones) and lets its owner
    cancel them on shutdown; `finished` says the job is over, after which nothing more is reported.
    """

    def __init__(
        self,
        on_position: PositionCallback | None,
        position: int,
        track: Callable[[asyncio.Task[None]], None],
        finished: Callable[[], bool],
    ) -> None:
        self.position = position
        self._on_position = on_position
        self._track = track
        self._finished = finished
        # The last position handed to on_position; a delivery task catches up with `position`.
        self._reported = 0
        self._task: asyncio.Task[None] | None = None

    def move_to(self, position: int) -> None:
        if position == self.position:
            return
        self.position = position
        self.report()

    def report(self) -> None:
        """Deliver the current position, unless a delivery task is already running (it will catch up)."""
        if self._on_position is None or self._finished():
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._deliver())
            self._track(self._task)

    async def _deliver(self) -> None:
        assert self._on_position is not None
        while self._reported != self.position and not self._finished():
            position = self.position
            try:
                await self._on_position(position)
            except Exception:
                # A failed "you are #n" edit must not stop the queue or the job.
                log.warning("queue position callback failed", exc_info=True)
            self._reported = position


class JobTimes:
    """The running median of the last `DURATION_SAMPLES` job durations (seconds), and an estimate before any."""

    def __init__(self, initial_job_seconds: float = INITIAL_JOB_SECONDS) -> None:
        self._initial = initial_job_seconds
        self._durations: deque[float] = deque(maxlen=DURATION_SAMPLES)

    def add(self, seconds: float) -> None:
        self._durations.append(max(0.0, seconds))

    @property
    def measured(self) -> float | None:
        """The median of the recent jobs that ran to the end; None before the first one."""
        return statistics.median(self._durations) if self._durations else None

    @property
    def estimate(self) -> float:
        """The measured median, or the initial guess before anything was timed."""
        measured = self.measured
        return self._initial if measured is None else measured
