"""Backoff delays (restarts, the bus client's reconnects, webhook retries) and the restart budget; the clock and RNG are passed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random


def backoff_delay(attempt: int, initial: float, factor: float, maximum: float, jitter: float,
                  rng: random.Random | None = None) -> float:
    """Delay before try number `attempt` (0-based): initial * factor**attempt, capped, +/- jitter fraction."""
    base = min(maximum, initial * factor ** min(attempt, 64))
    if jitter <= 0:
        return base
    spread = base * jitter
    import random  # at the first jittered backoff: a master whose bots never crash never loads it (~100 KiB)

    return max(0.0, base + (rng or random).uniform(-spread, spread))


class RestartBudget:
    """At most `count` restarts inside any sliding `window` seconds; crashes at any uptime count (pm2 loops forever otherwise)."""

    __slots__ = ("_times", "count", "window")  # one per instance

    def __init__(self, count: int, window: float) -> None:
        self.count = count
        self.window = window
        self._times: list[float] = []
        """A list, not a deque: at most `count` entries, and an empty deque costs 600 bytes in every instance."""

    def spend(self, now: float) -> bool:
        """Record one restart at `now`; False when that would exceed the budget."""
        stale = 0
        while stale < len(self._times) and now - self._times[stale] > self.window:
            stale += 1
        del self._times[:stale]
        if len(self._times) >= self.count:
            return False
        self._times.append(now)
        return True

    def reset(self) -> None:
        self._times.clear()

    @property
    def used(self) -> int:
        return len(self._times)
