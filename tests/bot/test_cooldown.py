"""Cooldowns: a burst, then one question per period, per user; full buckets are forgotten. A fake clock."""

from __future__ import annotations

import pytest

from bot.cooldown import Cooldowns


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_period() -> None:
    clock = Clock()
    cooldowns = Cooldowns(burst=3, per_seconds=10.0, clock=clock)
    assert [cooldowns.check(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert cooldowns.check(1) == pytest.approx(10.0)
    clock.now += 4
    assert cooldowns.check(1) == pytest.approx(6.0)  # a refused check spends nothing
    clock.now += 6
    assert cooldowns.check(1) == 0.0
    assert cooldowns.check(1) == pytest.approx(10.0)
    clock.now += 25  # 2.5 tokens back
    assert [cooldowns.check(1) for _ in range(2)] == [0.0, 0.0]
    assert cooldowns.check(1) == pytest.approx(5.0)


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    cooldowns = Cooldowns(burst=2, per_seconds=5.0, clock=clock)
    clock.now += 10_000
    assert [cooldowns.check(7) for _ in range(2)] == [0.0, 0.0]
    assert cooldowns.check(7) == pytest.approx(5.0)


def test_users_are_independent() -> None:
    clock = Clock()
    cooldowns = Cooldowns(burst=1, per_seconds=30.0, clock=clock)
    assert cooldowns.check(1) == 0.0
    assert cooldowns.check(1) == pytest.approx(30.0)
    assert cooldowns.check(2) == 0.0


def test_zero_seconds_means_no_limit_and_no_memory() -> None:
    cooldowns = Cooldowns(burst=1, per_seconds=0.0, clock=Clock())
    assert all(cooldowns.check(1) == 0.0 for _ in range(100))
    assert len(cooldowns) == 0


def test_users_with_a_full_bucket_are_forgotten() -> None:
    clock = Clock()
    cooldowns = Cooldowns(burst=2, per_seconds=10.0, clock=clock)
    for user in range(10_000):
        assert cooldowns.check(user) == 0.0
    assert len(cooldowns) == 10_000
    clock.now += 20  # every bucket has refilled
    assert cooldowns.check(99_999) == 0.0
    assert len(cooldowns) == 1
    for step in range(1, 100):  # a steady trickle of new users: memory stays at the recent ones
        clock.now += 1
        cooldowns.check(100_000 + step)
        assert len(cooldowns) <= 2 * 2 * 10 + 1


def test_forgetting_a_user_does_not_reset_a_partly_used_bucket() -> None:
    clock = Clock()
    cooldowns = Cooldowns(burst=3, per_seconds=10.0, clock=clock)
    for _ in range(3):
        cooldowns.check(1)
    clock.now += 30  # sweep time: user 1 is refilled exactly now
    cooldowns.check(2)
    assert [cooldowns.check(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert cooldowns.check(1) > 0


@pytest.mark.parametrize(("burst", "per"), [(0, 1.0), (1, -1.0)])
def test_bad_settings_are_refused(burst: int, per: float) -> None:
    with pytest.raises(ValueError):
        Cooldowns(burst=burst, per_seconds=per)


def test_the_default_clock_is_monotonic_time() -> None:
    cooldowns = Cooldowns(burst=1, per_seconds=60.0)
    assert cooldowns.check(1) == 0.0
    assert 59.0 < cooldowns.check(1) <= 60.0
