"""A running watcher follows the knowledge folder, with the real parts: all-MiniLM-L6-v2, SmolLM2, FAISS and
real file-system events, on a copy of the shipped history domain whose index is built once per session.

1. one file through its life (add, edit, rename, delete), plus one generated answer;
2. 300 files dropped at once become a handful of updates, embedding each new passage exactly once;
3. the watcher keeps following after its update sink raises (a closed pipe under `ragscope watch`).

No test sleeps: each waits, with a generous timeout, on the queue the watcher fills.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.ingest.store import NpzStore
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.rag_engine.ingest.live import (
    WAIT_SECONDS,
    Live,
    SharedModels,
    all_passage_texts,
    copy_history,
    live_config,
)

pytestmark = pytest.mark.real_models


# -- 1. one file's life --------------------------------------------------------------------------------------

ACCORD_QUESTION = "Where was the Brennic Accord signed?"


def test_a_file_is_followed_through_add_edit_rename_and_delete(
    live_history: Live, record_property: Callable[[str, object], None]
) -> None:
    engine, folder = live_history.engine, live_history.root / "history"

    # Added: found first, and answered from.
    write(
        folder / "brennic-accord.md",
        "The Brennic Accord was signed in the town of Oskavel in 1721 by seven river guilds.\n",
    )
    update = live_history.next_update()
    assert (update.domain, update.added, update.changed, update.removed) == ("history", 1, 0, 0)
    assert update.embedded >= 1 and not update.rebuilt
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "brennic-accord.md" and "Oskavel" in top.passage.text

    answer = engine.answer(ACCORD_QUESTION, "history")
    assert answer.covered and answer.text
    assert answer.hits[0].passage.path == "brennic-accord.md" and answer.hits[0].in_prompt
    record_property("answer_mentions_oskavel", "Oskavel" in answer.text)
    print(f"\nanswer from SmolLM2: {answer.text!r}")

    # Edited: the new text is found, the old one is gone from memory and from disk.
    write(
        folder / "brennic-accord.md",
        "The Brennic Accord was signed in the town of Tarrow Ford in 1744 by seven river guilds.\n",
    )
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (0, 1, 0)
    assert update.embedded >= 1 and update.dropped >= 1
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "brennic-accord.md"
    assert "Tarrow Ford" in top.passage.text and "1744" in top.passage.text
    assert not [text for _, text in all_passage_texts(engine, "history").values() if "Oskavel" in text]
    stored = NpzStore(engine.config).current("history", None)  # what the files hold: the base and its updates
    assert stored is not None and not [p for p in stored.space.passages.values() if "Oskavel" in p.text]

    # Renamed: same text, new path: nothing embedded, the vectors come from the cache.
    os.rename(folder / "brennic-accord.md", folder / "river-guilds-treaty.md")
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (1, 0, 1)
    assert update.embedded == 0 and update.reused >= 1
    top = engine.retrieve(ACCORD_QUESTION, "history", 3)[0]
    assert top.passage.path == "river-guilds-treaty.md" and "Tarrow Ford" in top.passage.text

    # Deleted: neither name is anywhere any more.
    os.remove(folder / "river-guilds-treaty.md")
    update = live_history.next_update()
    assert (update.added, update.changed, update.removed) == (0, 0, 1) and update.dropped >= 1
    names = {"brennic-accord.md", "river-guilds-treaty.md"}
    assert not names & {hit.passage.path for hit in engine.retrieve(ACCORD_QUESTION, "history", 3)}
    assert not names & {path for path, _ in all_passage_texts(engine, "history").values()}
    assert not names & set(engine.domain_stats("history").files)
    assert live_history.updates.empty()


# -- 2. a burst ----------------------------------------------------------------------------------------------

GOODS = ["amber", "salt cod", "tin ingots", "indigo", "walrus ivory", "pine tar", "saffron"]
ISLANDS = ["Skerrow", "Brannock", "Ulvey", "Meriden", "Coldharbour", "Tassel", "Fenwick", "Orrin", "Lusk"]


def ledger_line(i: int) -> str:
    return (
        f"Ledger {i:03d}: the harbour master of Velmora recorded {17 + 3 * i} crates of {GOODS[i % len(GOODS)]} "
        f"arriving from the island of {ISLANDS[i % len(ISLANDS)]} on day {i + 1} of the wet season.\n"
    )


def test_three_hundred_files_dropped_at_once_are_a_handful_of_updates(live_history: Live) -> None:
    engine, folder = live_history.engine, live_history.root / "history"
    before = engine.domain_stats("history")
    names = [f"ledger-{i:03d}.md" for i in range(300)]
    for i, name in enumerate(names):
        write(folder / name, ledger_line(i))

    received = live_history.until(lambda got: sum(u.added for u in got) >= len(names), "300 files to be added")
    after = engine.domain_stats("history")
    assert set(names) <= set(after.files) and len(after.files) == len(before.files) + len(names)
    print(f"\n300 files -> {len(received)} update(s): {[(u.added, u.embedded, round(u.seconds, 2)) for u in received]}")
    assert 1 <= len(received) <= 5, [u.to_dict() for u in received]
    assert sum(u.added for u in received) == len(names)
    assert sum(u.changed + u.removed + u.failed for u in received) == 0
    assert sum(u.embedded for u in received) == after.passages - before.passages
    top = engine.retrieve("How many crates of saffron came from the island of Ulvey on day 84?", "history", 4)
    assert all(hit.passage.path.startswith("ledger-") for hit in top)


# -- 3. a sink that raises once ------------------------------------------------------------------------------


def test_the_watcher_keeps_following_after_its_update_sink_raises(
    tmp_path: Path,
    history_template: Path,
    repo_config: Config,
    models: SharedModels,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = copy_history(history_template, tmp_path)
    engine = models.engine(live_config(repo_config, root, tmp_path / "data"))
    # One queue for both outcomes, so neither is waited for in vain: the next update, or the worker's death.
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    monkeypatch.setattr(threading, "excepthook", lambda args: events.put(("thread died", args.exc_value)))

    raised: list[IndexUpdate] = []

    def sink(update: IndexUpdate) -> None:
        events.put(("update", update))
        if not raised:  # the first report only, as when the reader of `ragscope watch` goes away
            raised.append(update)
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with engine.watch(sink):
        write(root / "history" / "orvale-bridge.md", "The Orvale bridge over the Sennet has nine stone arches.\n")
        kind, first = events.get(timeout=WAIT_SECONDS)
        assert kind == "update" and isinstance(first, IndexUpdate) and first.added == 1

        write(root / "history" / "quessa-well.md", "The Quessa well in the old market is forty metres deep.\n")
        kind, second = events.get(timeout=WAIT_SECONDS)
        assert kind == "update", f"the watcher's worker thread died: {second!r}"
        assert isinstance(second, IndexUpdate) and second.added == 1
        assert "quessa-well.md" in engine.domain_stats("history").files
