"""The waiter behind every await-able helper: `Notifier`, and the two errors a wait can end with.

Every change to a record goes through `Notifier.notify()`, which wakes all `wait_for` calls; waits re-check their
condition on each change and never poll with sleeps.

Not here: the records themselves (records.py) and the emulator's wait helpers built on this (waiting.py).
`EmulatorTimeout` and `ClientCrashed` are also importable from records.py and the package, where tests get them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class EmulatorTimeout(AssertionError):
    """A wait helper timed out; the message says what was awaited and what was recorded instead."""


class ClientCrashed(AssertionError):
    """The watched client task ended while a test was waiting for something."""


class Notifier:
    """Wakes every waiter on each recorded change (an Event that is replaced after each `set`)."""

    def __init__(
        self,
        describe: Callable[[], str] = lambda: "",
        failure: Callable[[], BaseException | None] = lambda: None,
    ) -> None:
        self._event = asyncio.Event()
        self._describe = describe
        self._failure = failure

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Return `check()`'s first result that is neither None nor False, re-checking after every change."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = check()
                    if result is not None and result is not False:
                        return result
                    failure = self._failure()
                    if failure is not None:
                        raise ClientCrashed(f"the client stopped while waiting for {what}: {failure!r}") from failure
                    await self._event.wait()
        except TimeoutError:
            details = self._describe()
            raise EmulatorTimeout(f"timed out after {timeout:g}s waiting for {what}\n{details}") from None
