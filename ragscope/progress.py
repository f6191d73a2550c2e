"""Progress bars on the terminal: what the engine's and the evaluations' `Progress` callbacks draw.

A bar is drawn only when stderr is an interactive terminal, so logs, pipes and tests see nothing; the
callbacks themselves are the engine's (`rag_engine.ingest.incremental.Progress`: done, total).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from rag_engine.ingest.incremental import Progress


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Progress | None]:
    """A tqdm bar on stderr when it is an interactive terminal, nothing otherwise (logs and pipes stay clean).
    The bar appears with the first update and goes when the work is done."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit=unit, leave=False, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def progress_bars() -> Iterator[Callable[[str, str], Progress | None]]:
    """A factory of progress bars (one per phase: description, unit), all closed on the way out."""
    with ExitStack() as stack:
        yield lambda description, unit: stack.enter_context(progress_bar(description, unit))
