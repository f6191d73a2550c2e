"""The REST traffic the emulator logs and the rules that match it: `RequestRecord`, `route_matches`, and the
injected `RateLimitRule` / `FailureRule` (set up with `emu.rate_limit` / `emu.fail_requests`).

Not here: applying the rules to a request (rest.py) and the Discord rules a bot can break (rules.py). These names
are also importable from records.py, where they were first defined.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any


@dataclass
class RequestRecord:
    """One REST request the bot made and the status the emulator answered."""

    method: str
    path: str  # below /api/v10, without the query string
    query: dict[str, str]
    status: int
    body: Any
    filenames: list[str]
    at: float
    code: int | None = None

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


def route_matches(pattern: str, method: str, path: str) -> bool:
    """`"PATCH /webhooks/*/*/messages/*"`: method and path compared segment by segment with glob patterns."""
    want_method, _, want_path = pattern.partition(" ")
    if not want_path:
        want_method, want_path = "*", pattern
    if not fnmatch.fnmatchcase(method.upper(), want_method.upper()):
        return False
    want = want_path.strip("/").split("/")
    have = path.strip("/").split("/")
    return len(want) == len(have) and all(fnmatch.fnmatchcase(h, w) for h, w in zip(have, want, strict=True))


@dataclass
class RateLimitRule:
    """The next `times` requests matching `pattern` are answered 429 with `retry_after`."""

    pattern: str
    times: int
    retry_after: float
    is_global: bool = False
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.hits >= self.times


@dataclass
class FailureRule:
    """The next `times` requests matching `pattern` are answered with an injected error."""

    pattern: str
    times: int
    status: int
    code: int
    message: str
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.hits >= self.times
