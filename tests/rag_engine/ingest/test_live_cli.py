"""The console script against a live folder: `ragscope watch --json` as a process prints one JSON line per
update, and a separate `ragscope ask` then finds the added file.

No test sleeps: a daemon thread reads each of the child's pipes into a queue the test waits on.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import write
from tests.rag_engine.ingest.live import (
    PROCESS_SECONDS,
    WAIT_SECONDS,
    child_env,
    copy_history,
    folder_args,
    ragscope_command,
    run_child,
)

pytestmark = pytest.mark.real_models


class Lines:
    """The lines of a child's pipe, read by a daemon thread into a queue (None at end of file)."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, wanted: Callable[[str], bool], what: str, timeout: float = WAIT_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                pytest.fail(f"no {what} within {timeout}s; lines so far: {self.seen}")
            if line is None:
                pytest.fail(f"the stream ended before {what}; lines: {self.seen}")
            self.seen.append(line)
            if wanted(line):
                return line


def test_ragscope_watch_json_reports_an_added_file_that_ragscope_ask_then_finds(
    tmp_path: Path, history_template: Path
) -> None:
    root = copy_history(history_template, tmp_path)
    data = tmp_path / "data"
    process = subprocess.Popen(
        ragscope_command("watch", "--json", *folder_args(root, data)),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        out, err = Lines(process.stdout), Lines(process.stderr)
        err.until(lambda line: line.startswith("watching "), "'watching' notice", PROCESS_SECONDS)

        fact = "The Vellamy Lantern Festival is held every spring on the island of Quorrin, where 312 paper lanterns "
        write(root / "history" / "vellamy-lanterns.md", fact + "are floated on the bay.\n")
        line = out.until(lambda text: not json.loads(text)["rebuilt"], "JSON line for the added file")
        assert out.seen == [line]  # the stored index was current: the initial sync printed nothing
        update = json.loads(line)
        assert {"domain", "added", "changed", "removed", "embedded", "reused", "seconds"} <= set(update)
        assert (update["domain"], update["added"], update["changed"], update["removed"]) == ("history", 1, 0, 0)
        assert update["embedded"] >= 1

        question = "On which island is the Vellamy Lantern Festival held?"
        asked = run_child(
            ragscope_command("ask", question, "--json", "--domain", "history", *folder_args(root, data)), tmp_path
        )
        assert asked.returncode == 0, asked.stderr
        answer = json.loads(asked.stdout)
        assert answer["used_rag"] and answer["sources"][0]["path"] == "vellamy-lanterns.md"
        assert "Quorrin" in answer["sources"][0]["text"]

        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT_SECONDS) == 0, err.seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
