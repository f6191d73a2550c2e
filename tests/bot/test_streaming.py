"""ThrottledEditor: pieces from a real thread, edits throttled on the loop, nothing lost.

The fake `edit` records each edit and puts it on an asyncio.Queue the test awaits (with a timeout); the
throttle reads a fake clock where the test needs control over time. No test sleeps to wait.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace

import discord
import pytest

from bot.streaming import ThrottledEditor

TIMEOUT = 5


class Edits:
    """The message being edited: every edit's content, awaitable one by one."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.seen: list[str] = []
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.fail_on = fail_on or set()
        self.first = threading.Event()  # for a feeding thread that must wait for the first edit
        self.on_loop = True

    async def __call__(self, content: str) -> None:
        number = len(self.seen)
        self.seen.append(content)
        self.queue.put_nowait(content)
        self.first.set()
        if number in self.fail_on:
            response = SimpleNamespace(status=503, reason="Service Unavailable")
            raise discord.HTTPException(response, "upstream hiccup")

    async def next(self) -> str:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)


class FakeClock:
    """Seconds that only move when told to; read from the loop, advanced from the feeding thread."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def render(text: str) -> str:
    return f"> {text}"


async def test_five_hundred_pieces_from_a_thread_make_few_edits_and_the_last_has_everything() -> None:
    edits = Edits()
    clock = FakeClock()
    editor = ThrottledEditor(edits, 1.0, asyncio.get_running_loop(), render, clock=clock)
    pieces = [f" tok{n}" for n in range(500)]

    def generate() -> None:  # the engine's worker thread: 500 tokens over 5 (fake) seconds
        for piece in pieces:
            editor.feed(piece)
            clock.advance(0.01)

    await asyncio.to_thread(generate)
    text = await editor.finish()
    assert text == "".join(pieces)
    assert edits.seen[-1] == render(text)
    # One edit per elapsed interval at most (the first comes at once), plus the final flush.
    assert 1 <= len(edits.seen) <= 5 + 1 + 1
    assert editor.edits == len(edits.seen)
    shown = [content.removeprefix("> ") for content in edits.seen]
    assert all(text.startswith(part) for part in shown)  # each edit is a prefix of the whole, growing
    assert shown == sorted(shown, key=len)


async def test_the_first_piece_is_shown_at_once_then_nothing_until_the_interval_or_finish() -> None:
    edits = Edits()
    loop = asyncio.get_running_loop()
    editor = ThrottledEditor(edits, 3600.0, loop, render)  # the real loop clock, an interval never reached

    def generate() -> None:
        editor.feed("first")
        assert edits.first.wait(TIMEOUT)  # the first edit was made while generation went on
        for n in range(499):
            editor.feed(f" {n}")

    await asyncio.to_thread(generate)
    assert await edits.next() == "> first"
    text = await editor.finish()
    assert edits.seen == ["> first", render(text)]
    assert text.startswith("first 0 1 2") and text.endswith(" 498")


async def test_a_pending_edit_fires_when_the_interval_has_passed() -> None:
    edits = Edits()
    editor = ThrottledEditor(edits, 0.01, asyncio.get_running_loop(), render)
    editor.feed("a")  # feed works from the loop thread too
    assert await edits.next() == "> a"
    editor.feed("b")
    editor.feed("c")
    assert await edits.next() == "> abc"  # the throttle's timer, no finish needed
    assert await editor.finish() == "abc"
    assert edits.seen == ["> a", "> abc"]  # nothing changed since: no extra edit


async def test_a_failed_edit_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    edits = Edits(fail_on={0})
    clock = FakeClock()
    editor = ThrottledEditor(edits, 1.0, asyncio.get_running_loop(), render, clock=clock)
    with caplog.at_level(logging.WARNING, logger="bot.streaming"):
        editor.feed("Hello")
        assert await edits.next() == "> Hello"  # this edit raises HTTPException
        clock.advance(1.0)
        editor.feed(", world")
        assert await edits.next() == "> Hello, world"  # the next edit carries the whole text
    assert "upstream hiccup" in caplog.text
    assert await editor.finish() == "Hello, world"
    assert edits.seen == ["> Hello", "> Hello, world"]


async def test_finish_repeats_a_failed_last_edit() -> None:
    edits = Edits(fail_on={0})
    editor = ThrottledEditor(edits, 3600.0, asyncio.get_running_loop(), render)
    editor.feed("only piece")
    assert await edits.next() == "> only piece"
    assert await editor.finish() == "only piece"
    assert edits.seen == ["> only piece", "> only piece"]  # the failed one is not taken as shown


async def test_a_failed_edit_is_retried_after_the_interval_without_new_pieces() -> None:
    edits = Edits(fail_on={0})
    editor = ThrottledEditor(edits, 0.01, asyncio.get_running_loop(), render)
    editor.feed("stalled generation")
    assert await edits.next() == "> stalled generation"  # fails
    assert await edits.next() == "> stalled generation"  # the throttle's timer retries
    assert await editor.finish() == "stalled generation"
    assert len(edits.seen) == 2


async def test_pieces_that_arrive_during_an_edit_follow_without_more_pieces() -> None:
    release = asyncio.Event()
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def slow(content: str) -> None:
        seen.put_nowait(content)
        if content == "> a":
            await release.wait()

    editor = ThrottledEditor(slow, 0.0, asyncio.get_running_loop(), render)
    editor.feed("a")
    assert await asyncio.wait_for(seen.get(), TIMEOUT) == "> a"
    editor.feed("b")  # the edit of "a" is still in flight
    release.set()
    assert await asyncio.wait_for(seen.get(), TIMEOUT) == "> ab"
    assert await editor.finish() == "ab"
    assert seen.empty()


async def test_an_unexpected_edit_error_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(content: str) -> None:
        raise RuntimeError("bug in the edit callback")

    editor = ThrottledEditor(broken, 0.0, asyncio.get_running_loop(), render)
    with caplog.at_level(logging.ERROR, logger="bot.streaming"):
        editor.feed("x")
        assert await editor.finish() == "x"
    assert "bug in the edit callback" in caplog.text


async def test_finish_without_pieces_edits_nothing() -> None:
    edits = Edits()
    editor = ThrottledEditor(edits, 1.0, asyncio.get_running_loop(), render)
    assert await editor.finish() == ""
    assert edits.seen == []


async def test_finish_waits_for_an_edit_in_flight() -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    seen: list[str] = []

    async def slow(content: str) -> None:
        started.set()
        await release.wait()
        seen.append(content)

    editor = ThrottledEditor(slow, 0.0, asyncio.get_running_loop(), render)
    editor.feed("a")
    await asyncio.wait_for(started.wait(), TIMEOUT)
    editor.feed("b")
    finishing = asyncio.create_task(editor.finish())
    await asyncio.sleep(0)
    assert not finishing.done()
    release.set()
    assert await asyncio.wait_for(finishing, TIMEOUT) == "ab"
    assert seen == ["> a", "> ab"]


async def test_stop_makes_no_final_edit() -> None:
    edits = Edits()
    editor = ThrottledEditor(edits, 3600.0, asyncio.get_running_loop(), render)
    editor.feed("partial")
    assert await edits.next() == "> partial"
    editor.feed(" and more")
    assert await editor.stop() == "partial and more"
    editor.feed(" late")  # after stop: kept in the text, never shown
    assert edits.seen == ["> partial"]
    assert editor.text == "partial and more late"


async def test_feeding_after_the_loop_closed_does_not_raise() -> None:
    closed = asyncio.new_event_loop()
    closed.close()
    editor = ThrottledEditor(Edits(), 1.0, closed, render)
    editor.feed("too late")  # the bot shut down while the engine was still generating
    assert editor.text == "too late"
