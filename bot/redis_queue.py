"""The gateway's side of answering past one machine: `RedisJobQueue`, a `JobQueue` over Redis Streams.

The gateway (`ragscope run --role gateway`) holds the Discord connection; answer workers (`bot.worker`, any
number, any machine) generate. Between them, in one Redis (every key starts with `bot.queue_name`):

    <name>:jobs              a stream of jobs, one entry per question ({"job": id, "body": AnswerJob JSON}),
                             read by the consumer group "workers"; an entry lives until its job is over
    <name>:job:<id>          a hash: `attempt` (bumped by each worker that takes the job) and, once it is
                             over, `state` (done / failed / expired, or cancelled by the gateway)
    <name>:job:<id>:events   a stream back to the gateway: start, token…, then one of done / failed / expired,
                             each with the attempt that wrote it

A worker's writes are checked in Redis (one Lua script: its attempt must still be the job's, and the job not
over), so once another worker has taken a job again, the first one can write nothing more, and at most one
final event is ever written. The gateway follows the events stream: a newer attempt restarts the streamed text
(`TokenStream.restart`), the final event ends the job. So a user sees one answer, never two; and because a job
leaves the jobs stream only with its final event (in the same script), a worker that dies leaves it pending,
and another worker takes it again after `bot.visibility_timeout_seconds` (`bot.worker`): never none.

Queue positions come from the stream: the entries not yet delivered to any worker ahead of a job (after the
group's last-delivered id), plus one; a poller measures them (and the stream's length, for the total bound)
every `POLL_SECONDS` while jobs wait. The per-user bound counts this gateway's own jobs.

Not here: the worker's side (`bot.worker`), the serialisation (`bot.wire`), reading the URL (`bot.app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.config import BotConfig
from bot.errors import JobExpiredError, QueueFullError, QueueUnavailableError, WorkerError
from bot.job_queue import AnswerJob, TokenStream
from bot.queueing import JobTimes, PositionCallback, PositionReporter
from bot.wire import from_json, to_json
from rag_engine.records import Answer

log = logging.getLogger(__name__)

GROUP = "workers"
# The events a worker writes into a job's events stream; the last three end the job.
START, TOKEN, DONE, FAILED, EXPIRED = "start", "token", "done", "failed", "expired"
CANCELLED = "cancelled"  # the job's state when the gateway gave it up
# A job's keys expire whatever happens to its gateway (past Discord's 15-minute token, with room to spare).
JOB_TTL_SECONDS = 2 * 3600
# How often the gateway measures the queue for positions and bounds while jobs wait.
POLL_SECONDS = 0.5
# How long one read of a job's events blocks; between reads the gateway checks the job's deadline.
READ_BLOCK_MS = 1000
# What the user reads when a worker failed on something that is not a RagError (its log has the traceback).
WORKER_FAILURE = "Something went wrong on my side; the details are in the answer worker's log."


@dataclass(frozen=True)
class QueueKeys:
    """The Redis keys of one queue, all under `prefix` (`bot.queue_name`)."""

    prefix: str

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"


def failure_event(error: BaseException, *, for_users: bool) -> str:
    """A failed event's data: the reason the user reads (`for_users`: a RagError's own text) or none."""
    return json.dumps({"message": str(error) if for_users else None})


@dataclass(eq=False)
class _Live:
    """One of this gateway's jobs while it waits or runs."""

    job_id: str
    entry_id: str
    user_id: int
    started: bool = False
    over: bool = False
    reporter: PositionReporter | None = field(default=None, repr=False)


class RedisJobQueue:
    """`JobQueue` over Redis: jobs onto the stream, their events back (see the module docstring).

    The queue owns `client` (an asyncio Redis client) and closes it on `stop`. Bounds are the bot's
    (`max_per_user`: this gateway's jobs of one user; `max_length`: every job in the stream); `clock` is the
    time deadlines are in (epoch seconds), `timer` what durations are measured with. `alongside` runs in a
    thread from `start` until the event it is given is set by `stop`: an answer worker in the gateway's own
    process (role `all` over Redis: `functools.partial(bot.worker.serve, worker)`).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: QueueKeys,
        max_per_user: int | None = None,
        max_length: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        poll_seconds: float = POLL_SECONDS,
        alongside: Callable[[threading.Event], None] | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.max_per_user = max_per_user
        self.max_length = max_length
        self._clock = clock
        self._timer = timer
        self._poll_seconds = poll_seconds
        self._times = JobTimes()
        self._live: dict[str, _Live] = {}
        self._length = 0  # entries in the jobs stream at the last look, plus ours since
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        # Set by `stop()`: the poller ends at its next turn even if a cancellation never reaches it (below).
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._alongside = alongside
        self._alongside_stop = threading.Event()
        self._alongside_task: asyncio.Task[None] | None = None

    # -- JobQueue -----------------------------------------------------------------------------------------
    def check_room(self, user_id: int | None = None) -> None:
        if user_id is not None and self.max_per_user is not None:
            mine = sum(1 for live in self._live.values() if live.user_id == user_id)
            if mine >= self.max_per_user:
                raise QueueFullError(self._times.estimate, per_user=True, limit=self.max_per_user)
        if self.max_length is not None and max(self._length, len(self._live)) >= self.max_length:
            raise QueueFullError(self._times.estimate, per_user=False, limit=self.max_length)

    async def start(self) -> None:
        """Make the stream and its group (unless a worker or another gateway did), start measuring the line.
        A Redis that is down does not stop the bot: questions are refused with a reason until it is back."""
        try:
            await self.client.xgroup_create(self.keys.jobs, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # BUSYGROUP: the group exists already
                raise
        except RedisError as exc:
            log.warning("the Redis queue cannot be reached (%s): questions are refused until it is back", exc)
        if self._poller is None:
            self._stopping = False
            self._poller = asyncio.create_task(self._watch_line(), name="redis-queue-positions")
        if self._alongside is not None and self._alongside_task is None:
            self._alongside_stop.clear()
            task = asyncio.create_task(asyncio.to_thread(self._alongside, self._alongside_stop), name="alongside")
            task.add_done_callback(_report_end)
            self._alongside_task = task

    async def stop(self) -> None:
        """Give up this gateway's jobs (workers skip them), stop measuring, close the client."""
        poller, self._poller = self._poller, None
        if poller is not None:
            self._stopping = True
            self._wake.set()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        for live in list(self._live.values()):
            await self._give_up(live.job_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        alongside, self._alongside_task = self._alongside_task, None
        if alongside is not None:
            self._alongside_stop.set()  # it finishes the answer in hand first
            await asyncio.wait({alongside})
        await self.client.aclose()

    async def answer(self, job: AnswerJob, stream: TokenStream, on_position: PositionCallback | None) -> Answer:
        self.check_room(job.user_id)
        job_id = uuid.uuid4().hex
        try:
            entry_id = await self._submit(job_id, job)
        except RedisError as exc:
            raise QueueUnavailableError() from exc
        live = _Live(job_id, entry_id, job.user_id)
        live.reporter = PositionReporter(on_position, 0, self._track, lambda: live.started or live.over)
        self._live[job_id] = live
        self._length += 1
        self._wake.set()  # the first position now, not at the next poll
        try:
            return await self._follow(live, job, stream)
        except RedisError as exc:
            raise QueueUnavailableError() from exc
        finally:
            del self._live[job_id]
            self._length = max(0, self._length - 1)
            if not live.over:  # an error or a cancellation (shutdown) on our side: nobody waits for it now
                await self._give_up(job_id)
            with contextlib.suppress(RedisError):
                await self.client.delete(self.keys.events(job_id))

    # -- one job --------------------------------------------------------------------------------------------
    async def _submit(self, job_id: str, job: AnswerJob) -> str:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.job(job_id), mapping={"attempt": 0})
            pipe.expire(self.keys.job(job_id), JOB_TTL_SECONDS)
            pipe.xadd(self.keys.jobs, {"job": job_id, "body": to_json(job)})
            replies = await pipe.execute()
        return str(replies[-1])

    async def _follow(self, live: _Live, job: AnswerJob, stream: TokenStream) -> Answer:
        """Read the job's events until its final one; the newest attempt is the only one listened to."""
        events, last, attempt, started_at = self.keys.events(live.job_id), "0-0", 0, self._timer()
        while True:
            # Past the deadline nobody can be shown the answer, whether no worker took the job yet or its
            # worker vanished with no other one to take it over.
            late = job.deadline is not None and self._clock() > job.deadline
            if late and await self._give_up(live.job_id):
                live.over = True
                log.info("dropped a queued job past its deadline (user %s)", live.user_id)
                raise JobExpiredError()
            reply = await self.client.xread({events: last}, block=READ_BLOCK_MS)
            if not reply and not await self.client.exists(self.keys.job(live.job_id)):
                # The job is gone from Redis (it restarted empty): no worker will ever answer it.
                raise QueueUnavailableError()
            for entry_id, fields in stream_entries(reply):
                last = entry_id
                written_by, kind, data = int(fields["attempt"]), fields["kind"], fields.get("data", "")
                if written_by < attempt:
                    continue  # an older attempt's (Redis refuses those writes: belt and braces)
                if written_by > attempt:
                    if attempt:
                        log.info("job %s taken again (attempt %d): its answer starts over", live.job_id, written_by)
                        stream.restart()
                    attempt = written_by
                if kind == START:
                    live.started, started_at = True, self._timer()
                elif kind == TOKEN:
                    stream.feed(data)
                elif kind in (DONE, FAILED, EXPIRED):
                    live.over = True
                    return self._final(kind, data, started_at)

    def _final(self, kind: str, data: str, started_at: float) -> Answer:
        if kind == EXPIRED:
            raise JobExpiredError()
        if kind == FAILED:
            message = json.loads(data).get("message")
            raise WorkerError(message or WORKER_FAILURE)
        self._times.add(self._timer() - started_at)
        return from_json(Answer, data)

    async def _give_up(self, job_id: str) -> bool:
        """Mark the job cancelled unless it is over already (True if it was marked; workers then skip it)."""
        key = self.keys.job(job_id)
        with contextlib.suppress(RedisError):
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(key, "state", CANCELLED)
                pipe.expire(key, JOB_TTL_SECONDS)  # a job whose keys were gone gets no immortal hash
                marked, _ = await pipe.execute()
            return bool(marked)
        return False

    # -- positions ------------------------------------------------------------------------------------------
    async def _watch_line(self) -> None:
        # `stop()` cancels this loop, but a cancellation can be lost: one that lands while a Redis command is in
        # flight was swallowed by the client (redis-py 8.2), and `asyncio.wait_for` on Python 3.11 swallows one that
        # lands as its wait ends; a CI run then waited in `stop()` forever. So the loop also ends on `_stopping`,
        # and waits with `asyncio.timeout`, which tells its own cancellation from the caller's.
        failing = False
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._measure()
            except RedisError as exc:
                if not failing:  # once per outage, not twice a second
                    log.warning("could not measure the Redis queue: %s", exc)
                failing = True
            else:
                failing = False

    async def _measure(self) -> None:
        """The stream's length, and each waiting job's place among the entries no worker has taken yet."""
        self._length = max(int(await self.client.xlen(self.keys.jobs)), len(self._live))
        waiting = [live for live in self._live.values() if not live.started and not live.over]
        if not waiting:
            return
        groups = await self.client.xinfo_groups(self.keys.jobs)
        delivered = next((str(g["last-delivered-id"]) for g in groups if g["name"] == GROUP), "0-0")
        newest = max((live.entry_id for live in waiting), key=_stream_order)
        undelivered = await self.client.xrange(self.keys.jobs, min=f"({delivered}", max=newest)
        place = {entry_id: index for index, (entry_id, _) in enumerate(stream_entries([["", undelivered]]))}
        for live in waiting:
            if live.entry_id in place and live.reporter is not None:
                live.reporter.move_to(place[live.entry_id] + 1)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def redis_job_queue(
    url: str, settings: BotConfig, alongside: Callable[[threading.Event], None] | None = None
) -> RedisJobQueue:
    """The gateway's queue for the Redis at `url` (which may hold a password: it is never logged)."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    keys = QueueKeys(settings.queue_name)
    bounds = settings.max_queued_per_user, settings.max_queue_length
    return RedisJobQueue(client, keys, *bounds, alongside=alongside)


def _report_end(task: asyncio.Task[None]) -> None:
    """An answer worker inside the gateway stopped: say why at once, not at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the answer worker in this process stopped", exc_info=task.exception())


def stream_entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an `XREAD`/`XREADGROUP` reply (a list of [stream, entries]), typed; none for no reply."""
    return [(str(entry_id), dict(fields)) for _, entries in reply or [] for entry_id, fields in entries]


def _stream_order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)
