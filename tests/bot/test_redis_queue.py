"""The Redis queue between a gateway and its answer workers, against a real Redis (tests/servers.py).

The gateway's `RedisJobQueue` and `AnswerWorker`s in this process (threads) over fake models: a job comes back
with its whole trace, a job whose worker died is taken again after the visibility timeout (and not before,
while its worker heartbeats), a worker that lost its job can write no result, positions come from the stream,
and deadlines and a worker's errors reach the gateway as they do in one process. Each test has its own key
prefix. Waits are awaits with timeouts, or polls of a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
import redis.asyncio as aioredis

from bot.errors import JobExpiredError, QueueFullError, QueueUnavailableError, WorkerError
from bot.job_queue import AnswerJob
from bot.redis_queue import DONE, QueueKeys, RedisJobQueue
from bot.wire import to_json
from bot.worker import AnswerWorker, Claim
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.records import Answer, Query
from tests.fakes import EchoGenerator, HashingEmbedder
from tests.servers import free_port
from tests.servers_redis import RedisServer

VISIBILITY = 0.6  # seconds: short, so a dead worker's job is taken again quickly
TIMEOUT = 20.0
QUESTION = "What does the zorblat eat?"


class WorkerDied(BaseException):
    """Ends a worker's thread mid-answer the way a killed process would: no handler runs, nothing is written."""


class HeldGenerator(EchoGenerator):
    """EchoGenerator, held after its first piece until `release()`; `die=True` ends the worker there instead."""

    def __init__(self, die: bool = False) -> None:
        super().__init__()
        self.die = die
        self.first_piece = threading.Event()
        self._gate = threading.Event()

    def stream(self, prompt: str, max_tokens: int, context: str = "") -> Iterator[str]:
        for index, piece in enumerate(super().stream(prompt, max_tokens, context)):
            yield piece
            if index == 0:
                self.first_piece.set()
                if self.die:
                    raise WorkerDied()
                if not self._gate.wait(TIMEOUT):
                    raise TimeoutError("the test never released the generator")

    def release(self) -> None:
        self._gate.set()


class Recorder:
    """A TokenStream that remembers what it was fed, and when it was told to start over."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def feed(self, piece: str) -> None:
        self.events.append(piece)

    def restart(self) -> None:
        self.events.append("<restart>")

    @property
    def text(self) -> str:
        shown = "".join(self.events).rpartition("<restart>")[2]
        return shown


@pytest.fixture
def keys() -> QueueKeys:
    return QueueKeys(f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sync_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
async def gateway(redis_server: RedisServer, keys: QueueKeys) -> AsyncIterator[RedisJobQueue]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    queue = RedisJobQueue(client, keys, max_per_user=2, max_length=3, poll_seconds=0.05)
    await queue.start()
    yield queue
    await queue.stop()


def engine_with(config: Config, generator: EchoGenerator | None = None) -> Engine:
    made = generator if generator is not None else EchoGenerator()
    return Engine(config, embedder=HashingEmbedder, generator=lambda: made)


def make_worker(
    engine: Engine, client: redis.Redis, keys: QueueKeys, name: str, visibility: float = VISIBILITY, **options: object
) -> AnswerWorker:
    return AnswerWorker(engine, client, keys, visibility, name=name, block_seconds=0.05, **options)  # type: ignore[arg-type]


def job_for(engine: Engine, question: str = QUESTION, deadline: float | None = None, **check: object) -> AnswerJob:
    return AnswerJob(engine.check(question, **check), use_rag=True, user_id=7, deadline=deadline)  # type: ignore[arg-type]


def same_trace(got: Answer, expected: Answer) -> bool:
    """Equal but for the timings, which differ from one run to the next."""
    return dataclasses.replace(got, timings={}) == dataclasses.replace(expected, timings={})


def until(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> object:
    """Poll `condition` (it may block briefly, like a worker's step) until it is true, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_job_is_answered_by_a_worker_with_its_whole_trace(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    engine = engine_with(config)
    job = job_for(engine)
    stream = Recorder()
    asked = asyncio.create_task(gateway.answer(job, stream, None))
    worker = make_worker(engine_with(config), sync_client, keys, "w1")
    assert await asyncio.to_thread(until, worker.step, "the worker to answer")
    answer = await asyncio.wait_for(asked, TIMEOUT)
    assert same_trace(answer, engine.answer(job.query))
    assert answer.hits and answer.text and stream.text == answer.text
    # The job is over: its entry left the stream, nothing stays pending.
    assert sync_client.xlen(keys.jobs) == 0
    assert not await asyncio.to_thread(worker.step)


async def test_a_job_left_by_a_dead_worker_is_taken_again_after_the_timeout_and_answered_once(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    dying = HeldGenerator(die=True)
    first = make_worker(engine_with(config, dying), sync_client, keys, "dies")
    job = job_for(engine_with(config))
    stream = Recorder()
    asked = asyncio.create_task(gateway.answer(job, stream, None))
    with pytest.raises(WorkerDied):
        await asyncio.to_thread(until, first.step, "the first worker to take the job")
    died_at = time.monotonic()
    await asyncio.to_thread(until, lambda: stream.events, "the first piece at the gateway")
    assert stream.events and "<restart>" not in stream.events

    second = make_worker(engine_with(config), sync_client, keys, "takes-over")
    assert await asyncio.to_thread(until, second.step, "the second worker to take the job over")
    taken_after = time.monotonic() - died_at
    answer = await asyncio.wait_for(asked, TIMEOUT)
    # Not before the visibility timeout, and soon after it.
    assert VISIBILITY * 0.9 <= taken_after <= VISIBILITY + 5.0
    # The user's text started over once and is the clean answer, not the first worker's piece plus it.
    assert stream.events.count("<restart>") == 1 and stream.text == answer.text
    assert same_trace(answer, engine_with(config).answer(job.query))
    assert sync_client.xlen(keys.jobs) == 0 and attempts(sync_client, keys) == [2]


async def test_a_result_from_a_worker_that_lost_its_job_is_ignored(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    engine = engine_with(config)
    job = job_for(engine)
    asked = asyncio.create_task(gateway.answer(job, Recorder(), None))
    stalled = make_worker(engine, sync_client, keys, "stalled")
    claim = await asyncio.to_thread(until, stalled.take, "the stalled worker to take the job")
    assert isinstance(claim, Claim) and claim.attempt == 1

    held = HeldGenerator()
    second = make_worker(engine_with(config, held), sync_client, keys, "second")
    answering = asyncio.create_task(asyncio.to_thread(until, second.step, "the second worker to take the job"))
    await asyncio.to_thread(held.first_piece.wait, TIMEOUT)
    # The stalled worker wakes up with a result of its own: Redis refuses it, and its tokens too.
    stale = dataclasses.replace(engine.answer(job.query), text="STALE")
    assert not stalled.emit(claim, DONE, to_json(stale), final=True)
    assert not stalled.emit(claim, "token", "STALE")
    held.release()
    assert await answering
    answer = await asyncio.wait_for(asked, TIMEOUT)
    assert answer.text != "STALE" and same_trace(answer, engine.answer(job.query))
    # Over means over: even the current owner cannot write a second result.
    newest = Claim(claim.job_id, claim.entry_id, 2, claim.body)
    assert not second.emit(newest, DONE, to_json(stale), final=True)


async def test_a_worker_that_heartbeats_keeps_its_job_past_the_timeout(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    held = HeldGenerator()
    job = job_for(engine_with(config))
    asked = asyncio.create_task(gateway.answer(job, Recorder(), None))
    # A longer timeout than the other tests': a heartbeat (every third of it) may be late on a busy machine.
    visibility = 1.2
    slow = make_worker(engine_with(config, held), sync_client, keys, "slow", visibility)
    answering = asyncio.create_task(asyncio.to_thread(until, slow.step, "the slow worker to take the job"))
    await asyncio.to_thread(held.first_piece.wait, TIMEOUT)
    other = make_worker(engine_with(config), sync_client, keys, "other", visibility)
    watched_until = time.monotonic() + 2 * visibility
    while time.monotonic() < watched_until:  # two visibility timeouts: the job is not taken from "slow"
        assert not await asyncio.to_thread(other.step)
    held.release()
    assert await answering
    assert (await asyncio.wait_for(asked, TIMEOUT)).text
    assert attempts(sync_client, keys) == [1]  # never taken again


def attempts(client: redis.Redis, keys: QueueKeys) -> list[int]:
    """The attempt counter of every job of the queue (one per job hash)."""
    hashes = [key for key in client.scan_iter(keys.job("*")) if not key.endswith(":events")]
    return [int(client.hget(key, "attempt") or 0) for key in hashes]


async def test_positions_come_from_the_stream_and_bounds_hold(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    engine = engine_with(config)
    seen: list[asyncio.Queue[int]] = [asyncio.Queue() for _ in range(3)]

    def reporter(index: int) -> Callable[[int], asyncio.Future[None]]:
        async def report(position: int) -> None:
            seen[index].put_nowait(position)

        return report  # type: ignore[return-value]

    tasks = []
    for index, user in enumerate((1, 2, 1)):
        job = dataclasses.replace(job_for(engine), user_id=user)
        tasks.append(asyncio.create_task(gateway.answer(job, Recorder(), reporter(index))))
        assert await asyncio.wait_for(seen[index].get(), TIMEOUT) == index + 1
    with pytest.raises(QueueFullError) as per_user:
        gateway.check_room(1)
    assert per_user.value.per_user
    with pytest.raises(QueueFullError) as total:
        gateway.check_room(3)
    assert not total.value.per_user

    worker = make_worker(engine, sync_client, keys, "w")
    claim = await asyncio.to_thread(until, worker.take, "the worker to take the first job")
    assert isinstance(claim, Claim)
    # The first job was taken: the others move up.
    assert await asyncio.wait_for(seen[1].get(), TIMEOUT) == 1
    assert await asyncio.wait_for(seen[2].get(), TIMEOUT) == 2
    worker.work(claim)
    await asyncio.wait_for(tasks[0], TIMEOUT)
    for _ in range(2):
        assert await asyncio.to_thread(until, worker.step, "the worker to answer")
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    gateway.check_room(1)  # room again


async def test_a_job_past_its_deadline_is_dropped_by_the_gateway_or_the_worker(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    engine = engine_with(config)
    # No worker before the deadline: the gateway gives the job up, and a worker coming later skips it.
    with pytest.raises(JobExpiredError):
        await asyncio.wait_for(gateway.answer(job_for(engine, deadline=time.time() - 1), Recorder(), None), TIMEOUT)
    worker = make_worker(engine, sync_client, keys, "late")
    assert not await asyncio.to_thread(worker.step)
    assert sync_client.xlen(keys.jobs) == 0
    # A worker that could not finish in time (its clock says so) drops the job and the gateway says so.
    late = make_worker(engine, sync_client, keys, "late", clock=lambda: time.time() + 3600)
    asked = asyncio.create_task(gateway.answer(job_for(engine, deadline=time.time() + 600), Recorder(), None))
    assert await asyncio.to_thread(until, late.step, "the worker to drop the job")
    with pytest.raises(JobExpiredError):
        await asyncio.wait_for(asked, TIMEOUT)


async def test_a_workers_error_reaches_the_gateway_with_its_reason(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    engine = engine_with(config)
    # The gateway checked a domain this worker does not have (its folder is not the same).
    query = Query("What does the zorblat eat?", "astronomy", ("astronomy",), 4, "dense")
    asked = asyncio.create_task(gateway.answer(AnswerJob(query, True, 7), Recorder(), None))
    worker = make_worker(engine, sync_client, keys, "w")
    assert await asyncio.to_thread(until, worker.step, "the worker to fail")
    with pytest.raises(WorkerError, match="astronomy"):
        await asyncio.wait_for(asked, TIMEOUT)


async def test_a_job_redis_lost_is_an_error_not_a_wait_forever(
    config: Config, gateway: RedisJobQueue, sync_client: redis.Redis, keys: QueueKeys
) -> None:
    asked = asyncio.create_task(gateway.answer(job_for(engine_with(config)), Recorder(), None))
    await asyncio.to_thread(until, lambda: attempts(sync_client, keys) == [0], "the job to be queued")
    # What a Redis without persistence looks like after a restart (only this queue's keys: the server is shared).
    sync_client.delete(*sync_client.scan_iter(f"{keys.prefix}:*"))
    with pytest.raises(QueueUnavailableError):
        await asyncio.wait_for(asked, TIMEOUT)


async def test_a_gateway_whose_redis_is_down_starts_and_refuses_questions_with_a_reason(config: Config) -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", decode_responses=True)
    queue = RedisJobQueue(client, QueueKeys("down"), poll_seconds=0.05)
    await queue.start()
    try:
        with pytest.raises(QueueUnavailableError, match="can't reach my answer workers"):
            await asyncio.wait_for(queue.answer(job_for(engine_with(config)), Recorder(), None), TIMEOUT)
    finally:
        await queue.stop()


@pytest.mark.parametrize("spins", [0, 1, 2])
async def test_stop_ends_the_position_poller_even_as_it_wakes(
    redis_server: RedisServer, keys: QueueKeys, spins: int
) -> None:
    """A question's arrival wakes the poller; a `stop()` in the same instant must still end it. The cancellation
    then lands while the poller's Redis command is in flight, and the client swallowed it: `stop()` waited
    forever (a CI run hung here). The wake is set by hand so that the cancellation lands just then."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    queue = RedisJobQueue(client, keys, poll_seconds=30.0)  # only the wake can end a wait within the test
    await queue.start()
    await asyncio.sleep(0)  # one turn: the poller starts and waits for its wake
    queue._wake.set()
    for _ in range(spins):
        await asyncio.sleep(0)
    stopping = asyncio.create_task(queue.stop())
    done, _ = await asyncio.wait({stopping}, timeout=TIMEOUT)
    if not done:
        stopping.cancel()  # a second cancellation gets through: leave nothing running
    assert stopping in done, "stop() did not return"
