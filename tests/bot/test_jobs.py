"""GenerationQueue: FIFO, one job at a time in a thread, positions, errors, cancelling, bounds, estimates, deadlines.

Jobs are "gated": each blocks its thread on its own threading.Event until the test releases it, and reports
its start to the loop through an asyncio.Queue, so every wait is an await with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from bot.errors import JobExpiredError, QueueFullError
from bot.jobs import GenerationQueue, Ticket

TIMEOUT = 5


class Gates:
    """Blocking jobs the test starts and releases one by one, with a record of concurrency and order."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.events: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.order: list[str] = []

    def job(self, name: str, fail: Exception | None = None) -> Callable[[], str]:
        event = self.events.setdefault(name, threading.Event())

        def work() -> str:
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                self.order.append(name)
            self.loop.call_soon_threadsafe(self.started.put_nowait, name)
            try:
                if not event.wait(TIMEOUT):
                    raise TimeoutError(f"{name} was never released")
                if fail is not None:
                    raise fail
                return name.upper()
            finally:
                with self.lock:
                    self.active -= 1

        return work

    def release(self, name: str) -> None:
        self.events[name].set()

    def release_all(self) -> None:
        for event in self.events.values():
            event.set()

    async def next_started(self) -> str:
        return await asyncio.wait_for(self.started.get(), TIMEOUT)


class Positions:
    """An on_position callback that records every report and lets the test await them."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    async def __call__(self, position: int) -> None:
        self.seen.append(position)
        self.queue.put_nowait(position)

    async def next(self) -> int:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)


@pytest.fixture
async def queue() -> AsyncIterator[GenerationQueue]:
    jobs = GenerationQueue()
    await jobs.start()
    yield jobs
    await jobs.stop()


@pytest.fixture
async def gates() -> AsyncIterator[Gates]:
    gates = Gates()
    yield gates
    gates.release_all()  # never leave a worker thread blocked after a failed test


async def test_jobs_run_in_order_one_at_a_time(queue: GenerationQueue, gates: Gates) -> None:
    names = ["a", "b", "c", "d", "e"]
    tickets = [queue.submit(gates.job(name)) for name in names]
    assert [t.position for t in tickets] == [0, 1, 2, 3, 4]
    assert await gates.next_started() == "a"
    assert queue.running and len(queue) == 5
    for _ in range(20):  # give a wrongly concurrent queue every chance to start another job
        await asyncio.sleep(0)
    assert gates.started.empty()
    for name in names:
        gates.release(name)
    results = await asyncio.wait_for(asyncio.gather(*(t.result() for t in tickets)), TIMEOUT)
    assert results == ["A", "B", "C", "D", "E"]
    assert gates.order == names
    assert gates.max_active == 1
    assert len(queue) == 0 and not queue.running


async def test_work_runs_off_the_event_loop_thread(queue: GenerationQueue) -> None:
    loop_thread = threading.get_ident()
    ticket = queue.submit(threading.get_ident)
    assert await asyncio.wait_for(ticket.result(), TIMEOUT) != loop_thread


async def test_waiting_tickets_hear_their_position_as_the_queue_drains(queue: GenerationQueue, gates: Gates) -> None:
    first = queue.submit(gates.job("a"))
    b_positions, c_positions = Positions(), Positions()
    second = queue.submit(gates.job("b"), on_position=b_positions)
    third = queue.submit(gates.job("c"), on_position=c_positions)
    assert (first.position, second.position, third.position) == (0, 1, 2)
    assert await b_positions.next() == 1  # reported once at submit, since it has to wait
    assert await c_positions.next() == 2
    assert await gates.next_started() == "a"

    gates.release("a")
    assert await gates.next_started() == "b"
    assert await b_positions.next() == 0
    assert await c_positions.next() == 1
    assert (second.position, third.position) == (0, 1)

    gates.release("b")
    assert await gates.next_started() == "c"
    assert await c_positions.next() == 0
    gates.release("c")
    assert await asyncio.wait_for(third.result(), TIMEOUT) == "C"
    assert b_positions.seen == [1, 0]
    assert c_positions.seen == [2, 1, 0]


async def test_a_job_that_starts_at_once_hears_nothing(queue: GenerationQueue) -> None:
    positions = Positions()
    ticket = queue.submit(lambda: 42, on_position=positions)
    assert ticket.position == 0
    assert await asyncio.wait_for(ticket.result(), TIMEOUT) == 42
    assert positions.seen == []


async def test_a_failing_job_raises_in_its_caller_and_the_queue_goes_on(queue: GenerationQueue, gates: Gates) -> None:
    failing = queue.submit(gates.job("a", fail=ValueError("model exploded")))
    after = queue.submit(gates.job("b"))
    gates.release_all()
    with pytest.raises(ValueError, match="model exploded"):
        await asyncio.wait_for(failing.result(), TIMEOUT)
    assert await asyncio.wait_for(after.result(), TIMEOUT) == "B"


async def test_a_failing_position_callback_does_not_stop_the_queue(queue: GenerationQueue, gates: Gates) -> None:
    async def broken(position: int) -> None:
        raise RuntimeError("message deleted")

    first = queue.submit(gates.job("a"))
    second = queue.submit(gates.job("b"), on_position=broken)
    gates.release_all()
    assert list(await asyncio.wait_for(asyncio.gather(first.result(), second.result()), TIMEOUT)) == ["A", "B"]


async def test_cancel_a_waiting_ticket(queue: GenerationQueue, gates: Gates) -> None:
    running = queue.submit(gates.job("a"))
    doomed = queue.submit(gates.job("b"))
    c_positions = Positions()
    last = queue.submit(gates.job("c"), on_position=c_positions)
    assert await c_positions.next() == 2
    assert await gates.next_started() == "a"

    assert doomed.cancel() is True
    assert doomed.cancelled and len(queue) == 2
    assert await c_positions.next() == 1  # moved up when the ticket ahead left
    with pytest.raises(asyncio.CancelledError):
        await doomed.result()
    assert doomed.cancel() is False  # already gone

    assert running.cancel() is False  # a running thread cannot be interrupted
    gates.release_all()
    assert await asyncio.wait_for(running.result(), TIMEOUT) == "A"
    assert await asyncio.wait_for(last.result(), TIMEOUT) == "C"
    assert gates.order == ["a", "c"]  # the cancelled job never ran


async def test_a_caller_that_gives_up_does_not_cancel_the_job(queue: GenerationQueue, gates: Gates) -> None:
    ticket = queue.submit(gates.job("a"))
    assert await gates.next_started() == "a"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ticket.result(), timeout=0)
    assert not ticket.done
    gates.release("a")
    assert await asyncio.wait_for(ticket.result(), TIMEOUT) == "A"


async def test_stop_cancels_waiting_tickets_and_refuses_new_ones(gates: Gates) -> None:
    queue = GenerationQueue()
    await queue.start()
    running = queue.submit(gates.job("a"))
    waiting: Ticket[str] = queue.submit(gates.job("b"))
    assert await gates.next_started() == "a"
    await queue.stop()
    for ticket in (running, waiting):
        with pytest.raises(asyncio.CancelledError):
            await ticket.result()
    with pytest.raises(RuntimeError, match="stopped"):
        queue.submit(gates.job("c"))
    assert gates.order == ["a"]


async def test_jobs_submitted_before_start_run_once_started(gates: Gates) -> None:
    queue = GenerationQueue()
    ticket = queue.submit(lambda: "early")
    assert len(queue) == 1 and not queue.running
    await queue.start()
    try:
        assert await asyncio.wait_for(ticket.result(), TIMEOUT) == "early"
    finally:
        await queue.stop()


# -- bounds, estimates, deadlines -----------------------------------------------------------------------------
class FakeTime:
    """A clock the test moves by hand (read on the event loop by the queue's worker)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run_timed(queue: GenerationQueue, gates: Gates, timer: FakeTime, name: str, seconds: float) -> None:
    """Run one gated job that takes `seconds` by the fake timer."""
    ticket = queue.submit(gates.job(name))
    assert await gates.next_started() == name
    timer.now += seconds
    gates.release(name)
    assert await asyncio.wait_for(ticket.result(), TIMEOUT) == name.upper()


async def test_the_queue_is_bounded_per_user_and_in_total(gates: Gates) -> None:
    queue = GenerationQueue(max_per_user=2, max_length=3)
    await queue.start()
    try:
        first = queue.submit(gates.job("a"), user_id=1)
        queue.submit(gates.job("b"), user_id=1)
        with pytest.raises(QueueFullError) as mine:
            queue.submit(gates.job("refused-1"), user_id=1)
        assert mine.value.per_user and mine.value.limit == 2 and mine.value.wait_seconds >= 1
        queue.submit(gates.job("c"), user_id=2)  # another user still fits
        with pytest.raises(QueueFullError) as everyone:
            queue.submit(gates.job("refused-2"), user_id=3)
        assert not everyone.value.per_user and everyone.value.limit == 3
        with pytest.raises(QueueFullError):
            queue.check_room(None)  # a job of nobody in particular counts for the total too
        assert len(queue) == 3 and queue.jobs_of(1) == 2 and queue.jobs_of(3) == 0

        assert await gates.next_started() == "a"
        gates.release("a")
        assert await asyncio.wait_for(first.result(), TIMEOUT) == "A"
        queue.check_room(1)  # a place of user 1 opened up: no error
        later = queue.submit(gates.job("d"), user_id=1)
        gates.release_all()
        assert await asyncio.wait_for(later.result(), TIMEOUT) == "D"
        assert "refused-1" not in gates.order and "refused-2" not in gates.order
    finally:
        await queue.stop()


async def test_the_busy_estimate_is_the_running_median_of_measured_jobs(gates: Gates) -> None:
    timer = FakeTime(0.0)
    queue = GenerationQueue(max_per_user=2, max_length=3, timer=timer, initial_job_seconds=7.0)
    await queue.start()
    try:
        assert queue.measured_job_seconds is None and queue.job_seconds == 7.0
        failing = queue.submit(gates.job("x", fail=ValueError("no")))
        assert await gates.next_started() == "x"
        timer.now += 100.0
        gates.release("x")
        with pytest.raises(ValueError):
            await asyncio.wait_for(failing.result(), TIMEOUT)
        assert queue.measured_job_seconds is None  # a failure says nothing about how long answers take

        for name, seconds in [("a", 10.0), ("b", 4.0), ("c", 6.0)]:
            await run_timed(queue, gates, timer, name, seconds)
        assert queue.measured_job_seconds == 6.0  # the median, not the mean (6.67)

        running = queue.submit(gates.job("d"), user_id=2)
        assert await gates.next_started() == "d"
        queue.submit(gates.job("e"), user_id=1)
        queue.submit(gates.job("f"), user_id=1)
        timer.now += 2.0  # d has run 2 of its expected 6 s
        with pytest.raises(QueueFullError) as mine:
            queue.check_room(1)
        assert mine.value.per_user and mine.value.wait_seconds == pytest.approx(4.0 + 6.0)  # until e is done
        with pytest.raises(QueueFullError) as everyone:
            queue.check_room(3)
        assert not everyone.value.per_user and everyone.value.wait_seconds == pytest.approx(4.0)  # until d is

        timer.now += 50.0  # d overran: a place may open any moment, never "in 0 s"
        with pytest.raises(QueueFullError) as late:
            queue.check_room(3)
        assert late.value.wait_seconds == 1.0
        gates.release_all()
        await asyncio.wait_for(running.result(), TIMEOUT)
    finally:
        await queue.stop()


async def test_a_job_that_cannot_finish_before_its_deadline_is_dropped_unrun(gates: Gates) -> None:
    clock, timer = FakeTime(1_700_000_000.0), FakeTime(0.0)
    queue = GenerationQueue(clock=clock, timer=timer)
    await queue.start()
    try:
        await run_timed(queue, gates, timer, "warmup", 10.0)  # answers take 10 s here
        running = queue.submit(gates.job("a"))
        assert await gates.next_started() == "a"
        positions = Positions()
        doomed = queue.submit(gates.job("b"), on_position=positions, deadline=clock.now + 100.0)
        tight = queue.submit(gates.job("c"), deadline=clock.now + 125.0)
        roomy = queue.submit(gates.job("d"), deadline=clock.now + 200.0)
        undated = queue.submit(gates.job("e"))
        assert await positions.next() == 1

        clock.now += 120.0  # a ran long: b's deadline passed, c's is 5 s away but c would take 10
        timer.now += 10.0  # (the median stays 10 s once a is timed)
        gates.release_all()
        for late in (doomed, tight):
            with pytest.raises(JobExpiredError):
                await asyncio.wait_for(late.result(), TIMEOUT)
        assert await asyncio.wait_for(running.result(), TIMEOUT) == "A"
        assert await asyncio.wait_for(roomy.result(), TIMEOUT) == "D"
        assert await asyncio.wait_for(undated.result(), TIMEOUT) == "E"
        assert gates.order == ["warmup", "a", "d", "e"]  # the dropped jobs never ran
        assert 0 not in positions.seen  # b was never reported as running
    finally:
        await queue.stop()


def test_bounds_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        GenerationQueue(max_per_user=0)
    with pytest.raises(ValueError):
        GenerationQueue(max_length=0)
