"""Watcher updates reach the asyncio loop: real watchdog events, fake models, a real event loop.

Waits use `asyncio.wait_for` on the feed, never a sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

from bot.knowledge_events import UpdateFeed, start_watching
from rag_engine.config import Config, WatchConfig
from rag_engine.engine import Engine
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.fakes import EchoGenerator, HashingEmbedder


def fast(config: Config) -> Config:
    return dataclasses.replace(config, watch=WatchConfig(rebuild_debounce_seconds=0.1, max_rebuild_delay_seconds=2.0))


async def test_updates_arrive_on_the_loop_thread(config: Config, knowledge_dir: Path) -> None:
    engine = Engine(fast(config), embedder=HashingEmbedder, generator=EchoGenerator)
    watcher, feed = await start_watching(engine)
    try:
        assert engine.watched
        first_builds = {(await asyncio.wait_for(feed.get(), timeout=10)).domain for _ in range(2)}
        assert first_builds == {"geology", "zoology"}
        loop_thread = threading.get_ident()
        await asyncio.to_thread(write, knowledge_dir / "zoology" / "snorkelbat.md", "The snorkelbat hums at dusk.\n")
        update = await asyncio.wait_for(feed.get(), timeout=10)
        assert threading.get_ident() == loop_thread
        assert (update.domain, update.added) == ("zoology", 1)
        hits = await asyncio.to_thread(engine.retrieve, "snorkelbat hums", "zoology", 1)
        assert hits[0].passage.path == "snorkelbat.md"
    finally:
        await asyncio.to_thread(watcher.stop)


async def test_push_from_a_foreign_thread_and_after_the_loop_closed() -> None:
    feed = UpdateFeed(asyncio.get_running_loop())
    sent = IndexUpdate("zoology", 3, added=1)
    thread = threading.Thread(target=feed.push, args=(sent,))
    thread.start()
    assert await asyncio.wait_for(feed.get(), timeout=5) == sent
    thread.join()

    closed = asyncio.new_event_loop()
    closed.close()
    late = UpdateFeed(asyncio.get_running_loop())
    late._loop = closed  # the bot shut down while the watcher was still reporting
    late.push(sent)  # must not raise


async def test_a_failed_update_reaches_the_error_queue_and_watching_goes_on(
    config: Config, knowledge_dir: Path
) -> None:
    knowledge = KnowledgeBase(fast(config), HashingEmbedder)
    engine = Engine(fast(config), embedder=HashingEmbedder, generator=EchoGenerator, knowledge=knowledge)
    engine.index("geology")
    engine.index("zoology")
    real_sync = knowledge.sync
    failures = iter([RuntimeError("disk on fire")])

    def sync_failing_once(domain: str, *args: object, **kwargs: object) -> IndexUpdate:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_sync(domain)

    watcher, feed = await start_watching(engine)  # nothing changed: the first sync reports nothing
    knowledge.sync = sync_failing_once  # type: ignore[method-assign]
    try:
        await asyncio.to_thread(write, knowledge_dir / "geology" / "obsidian.md", "Obsidian is volcanic glass.\n")
        assert await asyncio.wait_for(feed.errors.get(), timeout=10) == ("geology", "disk on fire")
        await asyncio.to_thread(write, knowledge_dir / "geology" / "pumice.md", "Pumice floats on water.\n")
        update = await asyncio.wait_for(feed.get(), timeout=10)
        assert (update.domain, update.added) == ("geology", 2)  # the failed change is picked up too
    finally:
        await asyncio.to_thread(watcher.stop)
