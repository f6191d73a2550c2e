"""What every lab experiment returns: `LabReport`, the one shape the CLI and the bot render.

A report is a trace, like `Answer`: the numbers it shows were measured in that run. `lines()` is the text a
terminal prints and Discord posts (plain lines, no markup beyond what both show), `explanation` two or three
plain sentences on what the user is looking at, `to_dict()` the JSON (`--json`), `png()` the one picture.
"""

from __future__ import annotations

from typing import Any, Protocol


class LabReport(Protocol):
    @property
    def experiment(self) -> str:
        """The experiment's name in `EXPERIMENTS` ("k", "mmr", "retriever", "hops", "knnlm")."""
        ...

    @property
    def question(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def explanation(self) -> str:
        """Two or three plain sentences: what was run and how to read the result."""
        ...

    def lines(self) -> list[str]:
        """The result as short text lines (answers cut to a readable length)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Everything measured, JSON-ready (includes "experiment", "question", "domain")."""
        ...

    def png(self) -> bytes:
        """The experiment's picture as PNG bytes (matplotlib, drawn as `explain/figures.py` does)."""
        ...
