"""Restart delay arithmetic and the sliding restart budget (pure: seeded RNG, explicit clock)."""

from __future__ import annotations

import random

import pytest

from supervisor.core.backoff import RestartBudget, backoff_delay


def test_delay_grows_by_factor():
    assert [backoff_delay(n, 0.1, 2.0, 30.0, 0.0) for n in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert [backoff_delay(n, 0.05, 3.0, 30.0, 0.0) for n in range(3)] == pytest.approx([0.05, 0.15, 0.45])


def test_delay_capped_at_max():
    assert backoff_delay(10, 0.1, 2.0, 30.0, 0.0) == 30.0
    assert backoff_delay(10_000, 0.1, 2.0, 30.0, 0.0) == 30.0  # no OverflowError for a bot restarted forever


def test_factor_one_is_constant_and_zero_initial_is_immediate():
    assert {backoff_delay(n, 0.5, 1.0, 30.0, 0.0) for n in range(20)} == {0.5}
    assert backoff_delay(7, 0.0, 2.0, 30.0, 0.5) == 0.0


def test_jitter_within_bounds_and_seeded():
    rng = random.Random(42)
    samples = [backoff_delay(3, 0.1, 2.0, 30.0, 0.25, rng) for _ in range(2000)]
    assert all(0.6 <= s <= 1.0 for s in samples)  # 0.8 +/- 25%
    assert min(samples) < 0.62 and max(samples) > 0.98  # the whole range is used
    assert sum(samples) / len(samples) == pytest.approx(0.8, rel=0.02)
    again = random.Random(42)
    assert samples[:10] == [backoff_delay(3, 0.1, 2.0, 30.0, 0.25, again) for _ in range(10)]


def test_jitter_applies_after_cap_and_never_negative():
    rng = random.Random(1)
    assert all(27.0 <= backoff_delay(50, 1, 2, 30.0, 0.1, rng) <= 33.0 for _ in range(500))
    assert all(backoff_delay(0, 0.1, 2, 30, 1.0, rng) >= 0 for _ in range(500))


def test_budget_allows_count_restarts_then_refuses():
    b = RestartBudget(3, 60.0)
    assert [b.spend(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert b.used == 3
    assert b.spend(3.0) is False
    assert b.used == 3  # a refused restart is not recorded


def test_budget_window_slides():
    b = RestartBudget(2, 10.0)
    assert b.spend(0.0) and b.spend(5.0)
    assert not b.spend(9.9)
    assert not b.spend(10.0)  # the first restart is exactly `window` old: still inside
    assert b.spend(10.1)  # 0.0 slid out
    assert not b.spend(14.9)
    assert b.spend(15.2)  # 5.0 slid out
    assert b.used == 2


def test_budget_counts_crashes_at_any_uptime():
    """DESIGN lesson: pm2 loops forever on a bot that dies after 1.2 s; here it still runs out of budget."""
    b = RestartBudget(5, 300.0)
    t, results = 0.0, []
    for _ in range(6):
        t += 1.2
        results.append(b.spend(t))
    assert results == [True] * 5 + [False]


def test_budget_zero_count_and_reset():
    assert RestartBudget(0, 60.0).spend(0.0) is False
    b = RestartBudget(1, 60.0)
    assert b.spend(0.0) and not b.spend(1.0)
    b.reset()
    assert b.spend(2.0) and b.used == 1
