"""Questions keep being answered, with the real models, while 50 files of the domain change under a running
watcher (25 added, 15 edited while one answer is generated, 10 deleted): no question fails, every snapshot a
question sees is whole, and what was written to disk is the state the last snapshot shows.

No test sleeps: the asking thread and the test wait on each other through `threading.Condition`s and `Event`s,
and on the watcher's queue, with a generous timeout.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import pytest

from rag_engine.config import Config
from rag_engine.records import IndexUpdate
from tests.conftest import write
from tests.rag_engine.ingest.live import (
    WAIT_SECONDS,
    Live,
    SharedModels,
    all_passage_texts,
    check_hits,
    copy_history,
    live_config,
)

pytestmark = pytest.mark.real_models


def seed_note(i: int) -> str:
    return (
        f"# Archive note {i}\n\nThe archive of Dunmarrow keeps letter {i}, written by the cartographer "
        f"Ilsa Venn in {1800 + i} about the tides of the Korrel estuary.\n"
    )


def revised_note(i: int) -> str:
    return (
        f"# Archive note {i}, revised\n\nLetter {i} of the Dunmarrow archive was rewritten in {1900 + i}: it now "
        f"describes the salt marshes of Pellin and the herons nesting there (revision marker R{i:02d}).\n"
    )


def fresh_note(i: int) -> str:
    return (
        f"# Beacon log {i}\n\nBeacon {i} on the cliffs of Harrowgate burned {40 + i} nights in a row during "
        f"the storms of the year {1650 + i}, guiding {i + 3} fishing boats home.\n"
    )


class Counter:
    """A count another thread can wait on."""

    def __init__(self) -> None:
        self._value = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self._value += 1
            self._changed.notify_all()

    @property
    def value(self) -> int:
        with self._changed:
            return self._value

    def wait_for(self, target: int, timeout: float = WAIT_SECONDS) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._value >= target, timeout), f"{self._value} < {target}"


def test_questions_are_answered_while_fifty_files_change(
    tmp_path: Path, history_template: Path, repo_config: Config, models: SharedModels
) -> None:
    root = copy_history(history_template, tmp_path)
    folder = root / "history"
    for i in range(25):
        write(folder / f"seed-{i:02d}.md", seed_note(i))
    config = live_config(repo_config, root, tmp_path / "data")
    engine = models.engine(config)
    questions = [json.loads(line)["question"] for line in (folder / "questions.jsonl").read_text().splitlines() if line]
    questions += ["What did Ilsa Venn write about the Korrel estuary?", "Which beacon guided fishing boats home?"]

    stop, answer_now = threading.Event(), threading.Event()
    retrieved, answered = Counter(), Counter()
    failures: list[str] = []
    answers: list[str] = []

    def ask_in_a_loop() -> None:
        i = 0
        while not stop.is_set():
            question = questions[i % len(questions)]
            i += 1
            try:
                if answer_now.is_set() and not answers:
                    answer = engine.answer("When was the Eiffel Tower finished?", "history")
                    check_hits(list(answer.hits))
                    assert answer.covered and answer.text and answer.hits[0].passage.path == "eiffel-tower.md"
                    answers.append(answer.text)
                    answered.add()
                    continue
                check_hits(engine.retrieve(question, "history", 4))
                retrieved.add()
            except BaseException as exc:  # anything at all, reported by the main thread
                failures.append(f"{question!r}: {exc!r}")
                if answer_now.is_set() and not answers:
                    answers.append("failed")
                    answered.add()

    updates: queue.Queue[IndexUpdate] = queue.Queue()
    errors: queue.Queue[tuple[str, Exception]] = queue.Queue()
    asker = threading.Thread(target=ask_in_a_loop, name="asker", daemon=True)
    with engine.watch(updates.put, on_error=lambda domain, exc: errors.put((domain, exc))):
        live = Live(engine, root, updates, errors)
        while not updates.empty():
            live.initial.append(updates.get_nowait())
        assert [(u.added, u.rebuilt) for u in live.initial] == [(25, False)]
        asker.start()
        try:
            retrieved.wait_for(3)
            during_start = retrieved.value

            for i in range(25):  # burst 1: 25 new files
                write(folder / f"beacon-{i:02d}.md", fresh_note(i))
            added = live.until(lambda got: sum(u.added for u in got) >= 25, "25 added files")

            for i in range(15):  # burst 2: 15 edits, while the one generated answer runs
                write(folder / f"seed-{i:02d}.md", revised_note(i))
            answer_now.set()
            changed = live.until(lambda got: sum(u.changed for u in got) >= 15, "15 edited files")

            for i in range(15, 25):  # burst 3: 10 deletions
                os.remove(folder / f"seed-{i:02d}.md")
            removed = live.until(lambda got: sum(u.removed for u in got) >= 10, "10 deleted files")
            during = retrieved.value - during_start

            answered.wait_for(1)
            retrieved.wait_for(retrieved.value + 3)  # the last snapshot is queried too
        finally:
            stop.set()
            asker.join(WAIT_SECONDS)
    assert not asker.is_alive()

    print(
        f"\n{retrieved.value} retrievals ({during} while the 50 files changed), updates per burst: "
        f"{len(added)}/{len(changed)}/{len(removed)}, answer: {answers[0]!r}"
    )
    assert failures == []
    assert during >= 1 and retrieved.value >= 6
    assert sum(u.added for u in added) == 25 and sum(u.changed for u in changed) == 15
    assert sum(u.removed for u in removed) == 10

    deleted = {f"seed-{i:02d}.md" for i in range(15, 25)}
    edited = {f"seed-{i:02d}.md" for i in range(15)}
    fresh = {f"beacon-{i:02d}.md" for i in range(25)}
    stats = engine.domain_stats("history")
    assert not deleted & set(stats.files) and (edited | fresh) <= set(stats.files) and len(stats.files) == 50
    passages = all_passage_texts(engine, "history").values()
    assert not deleted & {path for path, _ in passages}
    for i in range(15):
        texts = [text for path, text in passages if path == f"seed-{i:02d}.md"]
        assert texts and any(f"revision marker R{i:02d}" in t for t in texts), texts
        assert not any("Korrel estuary" in t for t in texts), texts
    top = engine.retrieve("Which letter describes the salt marshes of Pellin and the herons?", "history", 3)
    assert top[0].passage.path in edited

    # What was written to disk is the same state: a new engine finds nothing to do.
    again = models.engine(config)
    assert not again.index("history").applied
    assert set(again.domain_stats("history").files) == set(stats.files)
