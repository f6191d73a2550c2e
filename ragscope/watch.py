"""`ragscope watch`: keep the stored indexes in step with the knowledge folder until interrupted.

Prints one line per applied update (or one JSON object per line with `--json`) to stdout, flushed at once so a
pipe sees it; the "watching" notice and errors go to stderr. A `ragscope ask` started afterwards in another
process loads the updated index from disk. The watching itself is `rag_engine.ingest.watcher`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType

from rag_engine.engine import Engine
from rag_engine.records import IndexUpdate

from . import render


def run_watch(engine: Engine, json_lines: bool) -> int:
    stop = threading.Event()

    def report(update: IndexUpdate) -> None:
        line = json.dumps(update.to_dict()) if json_lines else render.update_line(update)
        try:
            print(line, flush=True)
        except BrokenPipeError:  # the reader went away (`ragscope watch | head -1`): nobody to report to
            stop.set()

    def failed(domain: str, exc: Exception) -> None:
        print(f"ragscope: could not update {domain}: {exc}", file=sys.stderr, flush=True)

    def terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with engine.watch(report, failed):
            root = engine.folder
            print(f"watching {root} ({', '.join(engine.domains())}); Ctrl-C stops", file=sys.stderr, flush=True)
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
