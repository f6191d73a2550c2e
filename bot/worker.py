"""An answer worker (`ragscope run --role worker`): takes questions off the Redis queue, answers them through
its own engine, and streams the tokens and the whole `Answer` back to the gateway. No Discord connection.

One job at a time (the model runs on this machine's CPU or GPU; a second generation would only halve both).
The loop, each turn: first a job another worker left pending for longer than the visibility timeout
(`XAUTOCLAIM`: that worker died), else the next new one (`XREADGROUP` on the group "workers", blocking up to
`BLOCK_SECONDS`). Taking a job bumps its attempt (`TAKE`); every write back (`EMIT`) and every heartbeat
(`HEARTBEAT`) is one Lua script that first checks the attempt is still this worker's and the job not over,
so a worker that lost its job (it stalled, another took it) can write nothing more and stops generating.
The final event, the job's state and the removal of its entry from the jobs stream are one script, so a job
is over exactly when its one final event is written. While it answers, a thread heartbeats every third of the
visibility timeout (`XCLAIM … JUSTID` resets the entry's idle time), so only a worker that is really gone
loses its job; the one that takes it again starts the answer over.

A job is reclaimed at most `visibility_timeout + BLOCK_SECONDS` after its worker's last heartbeat, when another
worker is idle (a busy one looks when its answer is done). Keys, event names and the gateway's side:
`bot.redis_queue`. Not here: reading the URL and the role (`bot.app`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from bot.config import BotConfig
from bot.job_queue import AnswerJob
from bot.queueing import JobTimes
from bot.redis_queue import (
    DONE,
    EXPIRED,
    FAILED,
    GROUP,
    JOB_TTL_SECONDS,
    START,
    TOKEN,
    QueueKeys,
    failure_event,
    stream_entries,
)
from bot.wire import WireFormatError, from_json, to_json
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import RagError

log = logging.getLogger(__name__)

# The longest one wait for a new job blocks: how soon a stop, or a job left by a dead worker, is noticed.
BLOCK_SECONDS = 1.0
# After Redis failed, wait this long before trying again (a restarting Redis must not be hammered).
RETRY_SECONDS = 2.0

# KEYS: the job's hash. Returns the new attempt, or 0 if the job is over, given up or forgotten (expired).
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'state') == 1 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'attempt', 1)
"""
# KEYS: the job's hash, its events stream, the jobs stream. ARGV: attempt, kind, data, final (1/0), group,
# entry id, TTL. Writes the event only for the job's current attempt; a final one also ends the job.
EMIT = """
local job = redis.call('HMGET', KEYS[1], 'attempt', 'state')
if job[1] ~= ARGV[1] or job[2] then return 0 end
redis.call('XADD', KEYS[2], '*', 'attempt', ARGV[1], 'kind', ARGV[2], 'data', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[7])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
  redis.call('XACK', KEYS[3], ARGV[5], ARGV[6])
  redis.call('XDEL', KEYS[3], ARGV[6])
end
return 1
"""
# KEYS: the job's hash, the jobs stream. ARGV: attempt, group, consumer, entry id. Resets the entry's idle time.
HEARTBEAT = """
local job = redis.call('HMGET', KEYS[1], 'attempt', 'state')
if job[1] ~= ARGV[1] or job[2] then return 0 end
redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'JUSTID')
return 1
"""


class JobLost(Exception):
    """This worker's attempt is no longer the job's (another worker took it again, or it is over)."""


@dataclass(frozen=True)
class Claim:
    """A job this worker took: which one, its entry in the jobs stream, this worker's attempt, the job's JSON."""

    job_id: str
    entry_id: str
    attempt: int
    body: str


def default_name() -> str:
    """The consumer name: host and process, so `XINFO CONSUMERS` says where each job is."""
    return f"{socket.gethostname()}-{os.getpid()}"


class AnswerWorker:
    """Answers jobs from the queue under `keys` with `engine`, as consumer `name` (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        client: redis.Redis,
        keys: QueueKeys,
        visibility_timeout: float,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        block_seconds: float = BLOCK_SECONDS,
    ) -> None:
        self.engine = engine
        self.client = client
        self.keys = keys
        self.name = name or default_name()
        self.visibility_timeout = visibility_timeout
        self._clock = clock
        self._timer = timer
        self._block_ms = max(1, int(min(block_seconds, visibility_timeout) * 1000))
        self._times = JobTimes()
        self._take = client.register_script(TAKE)
        self._emit_script = client.register_script(EMIT)
        self._beat = client.register_script(HEARTBEAT)

    def prepare(self) -> None:
        """Create the consumer group (and the stream) unless a gateway or another worker did, and join it
        (so `XINFO CONSUMERS` lists this worker before its first job)."""
        try:
            self.client.xgroup_create(self.keys.jobs, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.client.xgroup_createconsumer(self.keys.jobs, GROUP, self.name)

    def run(self, stop: threading.Event) -> None:
        """Answer jobs until `stop` is set (checked between jobs and at least every `BLOCK_SECONDS`)."""
        log.info("answer worker %s taking jobs from %s", self.name, self.keys.jobs)
        while not stop.is_set():
            try:
                self.prepare()  # again after a failure: a Redis that restarted empty has no group
                while not stop.is_set():
                    self.step()
            except RedisError as exc:
                log.warning("the Redis queue failed (%s); trying again in %.0f s", exc, RETRY_SECONDS)
                stop.wait(RETRY_SECONDS)

    def step(self) -> bool:
        """Take one job (one left by a dead worker first, else a new one, waiting up to the block time) and
        answer it. False if there was none to answer."""
        claim = self.take()
        if claim is None:
            return False
        self.work(claim)
        return True

    def take(self) -> Claim | None:
        """Take the next job (bumping its attempt), or None: nothing came within the block time, or the entry's
        job is over, given up by its gateway or forgotten (the entry is dropped: nobody waits for it)."""
        entry = self._reclaim() or self._next()
        if entry is None:
            return None
        entry_id, fields = entry
        job_id = fields.get("job", "")
        attempt = int(self._take(keys=[self.keys.job(job_id)])) if job_id else 0
        if not attempt:
            self._drop(entry_id)
            return None
        return Claim(job_id, entry_id, attempt, fields.get("body", ""))

    def _reclaim(self) -> tuple[str, dict[str, str]] | None:
        idle_ms = int(self.visibility_timeout * 1000)
        reply: Any = self.client.xautoclaim(self.keys.jobs, GROUP, self.name, idle_ms, "0-0", count=1)
        claimed = stream_entries([["", reply[1]]])  # [next cursor, claimed entries, deleted ids]
        if not claimed:
            return None
        entry_id, fields = claimed[0]
        log.info("took over job entry %s, left by a worker that stopped reporting", entry_id)
        return entry_id, fields

    def _next(self) -> tuple[str, dict[str, str]] | None:
        reply = self.client.xreadgroup(GROUP, self.name, {self.keys.jobs: ">"}, count=1, block=self._block_ms)
        entries = stream_entries(reply)
        return entries[0] if entries else None

    # -- one job --------------------------------------------------------------------------------------------
    def work(self, claim: Claim) -> None:
        """Answer a job this worker took, unless it cannot be read or could no longer be answered in time."""
        job_id = claim.job_id
        try:
            job = from_json(AnswerJob, claim.body)
        except WireFormatError as exc:
            log.error("job %s is unreadable (%s); a gateway of another version?", job_id, exc)
            self.emit(claim, FAILED, failure_event(exc, for_users=False), final=True)
            return
        measured = self._times.measured or 0.0
        if job.deadline is not None and self._clock() + measured > job.deadline:
            log.info("dropped job %s past its deadline (user %s)", job_id, job.user_id)
            self.emit(claim, EXPIRED, "", final=True)
            return
        if self.emit(claim, START, ""):
            self._answer(claim, job)

    def _answer(self, claim: Claim, job: AnswerJob) -> None:
        started = self._timer()
        with self._heartbeat(claim) as lost:

            def send(piece: str) -> None:
                if lost.is_set() or not self.emit(claim, TOKEN, piece):
                    raise JobLost(claim.job_id)

            try:
                answer = self.engine.answer(job.query, use_rag=job.use_rag, on_token=send)
            except JobLost:
                log.info("stopped answering job %s (attempt %d): another worker has it now", *_of(claim))
                return
            except RedisError:
                raise  # the job stays pending: it is taken again (by any worker) once Redis answers
            except RagError as exc:
                self.emit(claim, FAILED, failure_event(exc, for_users=True), final=True)
                return
            except Exception as exc:
                log.exception("answering job %s failed", claim.job_id)
                self.emit(claim, FAILED, failure_event(exc, for_users=False), final=True)
                return
        self._times.add(self._timer() - started)
        if not self.emit(claim, DONE, to_json(answer), final=True):
            log.info("job %s was answered by another worker meanwhile; this answer is dropped", claim.job_id)

    def emit(self, claim: Claim, kind: str, data: str, *, final: bool = False) -> bool:
        """Write one event of `claim`'s job; False (nothing written) if the attempt is no longer this one's."""
        args: list[str | int] = [claim.attempt, kind, data, int(final), GROUP, claim.entry_id, JOB_TTL_SECONDS]
        keys = [self.keys.job(claim.job_id), self.keys.events(claim.job_id), self.keys.jobs]
        return bool(self._emit_script(keys=keys, args=args))

    def _drop(self, entry_id: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.jobs, GROUP, entry_id)
            pipe.xdel(self.keys.jobs, entry_id)
            pipe.execute()

    @contextlib.contextmanager
    def _heartbeat(self, claim: Claim) -> Iterator[threading.Event]:
        """While the block runs, keep `claim`'s entry fresh; the event is set once the job is no longer ours."""
        lost, done = threading.Event(), threading.Event()
        interval = self.visibility_timeout / 3
        keys = [self.keys.job(claim.job_id), self.keys.jobs]
        args: list[str | int] = [claim.attempt, GROUP, self.name, claim.entry_id]

        def beat() -> None:
            while not done.wait(interval):
                try:
                    if not self._beat(keys=keys, args=args):
                        lost.set()
                        return
                except RedisError as exc:  # the next beat tries again; the job may be taken meanwhile
                    log.warning("heartbeat of job %s failed: %s", claim.job_id, exc)

        thread = threading.Thread(target=beat, name=f"heartbeat-{claim.job_id}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            done.set()
            thread.join()


def job_counts(client: redis.Redis, keys: QueueKeys) -> dict[str, int]:
    """How many jobs wait and run, for logs and tests: {"length": …, "pending": …}."""
    groups = client.xinfo_groups(keys.jobs)
    pending = next((int(g["pending"]) for g in groups if g["name"] == GROUP), 0)
    return {"length": int(client.xlen(keys.jobs)), "pending": pending}


def redis_worker(url: str, settings: BotConfig, engine: Engine, name: str | None = None) -> AnswerWorker:
    """A worker for the Redis at `url` (which may hold a password: it is never logged) and the bot's queue."""
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = QueueKeys(settings.queue_name)
    return AnswerWorker(engine, client, keys, settings.visibility_timeout_seconds, name=name)


def serve(worker: AnswerWorker, stop: threading.Event) -> None:
    """Index every domain first (a question should not wait for a whole folder to be embedded), then answer
    until `stop`. Without a watcher the engine brings a domain up to date before each question it answers."""
    worker.engine.sync_all()
    worker.run(stop)


def run_worker(
    config: Config, settings: BotConfig, url: str, *, engine: Engine | None = None, name: str | None = None
) -> None:
    """`ragscope run --role worker`: answer until SIGTERM or Ctrl-C (the current answer is finished first).
    `engine` defaults to the config's (tests pass one over small fake models), `name` to `default_name()`."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker = redis_worker(url, settings, engine or Engine(config), name)
    try:
        serve(worker, stop)
    finally:
        worker.client.close()


def _of(claim: Claim) -> tuple[str, int]:
    return claim.job_id, claim.attempt
