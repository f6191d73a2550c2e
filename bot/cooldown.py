"""Per-user rate limit for questions: a token bucket (a burst, then one question every so many seconds).

Implemented as the equivalent "generic cell rate algorithm": per user only the theoretical time at which the
bucket would be full again is stored, so refilling needs no timer. Users whose bucket is full are forgotten,
which keeps memory proportional to the users active in the last `burst * per_seconds` seconds.

Not here: what a refused user is told (the cogs), the generation queue (`bot.jobs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Float sums of `per_seconds` drift by ulps; a wait below this is a rounding error, not a cooldown.
_EPSILON = 1e-9


class Cooldowns:
    """`check(user)` → 0.0 and one token spent, or the seconds until the next token."""

    def __init__(self, burst: int, per_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if per_seconds < 0:
            raise ValueError("per_seconds must be >= 0")
        self._burst = burst
        self._per = per_seconds
        self._clock = clock
        # user id → the time at which that user's bucket is full again ("theoretical arrival time"). Spending a
        # token pushes it `per` into the future; a bucket is empty once it lies `burst * per` ahead of now.
        self._full_at: dict[int, float] = {}
        # Full buckets are swept at most once per refill period, so the sweep's cost is spread over many checks.
        self._next_sweep = clock() + burst * per_seconds

    def __len__(self) -> int:
        """Users currently remembered (their bucket is not full, or was not at the last sweep)."""
        return len(self._full_at)

    def check(self, user_id: int) -> float:
        now = self._clock()
        self._sweep(now)
        full_at = max(self._full_at.get(user_id, now), now)
        # Allowed while at least one token is left: spending it must not push past `burst` tokens' worth.
        wait = full_at + self._per - now - self._burst * self._per
        if wait > _EPSILON:
            return wait
        full_at += self._per
        if full_at > now:
            self._full_at[user_id] = full_at
        else:  # per_seconds == 0: the bucket never empties, nothing to remember
            self._full_at.pop(user_id, None)
        return 0.0

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._full_at = {user: full_at for user, full_at in self._full_at.items() if full_at > now}
        self._next_sweep = now + self._burst * self._per
