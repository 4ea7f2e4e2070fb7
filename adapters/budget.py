"""Request budgets kept on our side, so the bot slows itself down before the exchange bans it."""
from __future__ import annotations

import time
from collections import deque
from typing import Callable

from adapters.base import RateLimited


class WeightBudget:
    """A sliding-window weight limit (Hyperliquid: 1200 REST weight a minute per IP). `spend` refuses
    a request that would break the limit with RateLimited carrying when room frees up."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0
        self.refused = 0

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._total -= self._spent.popleft()[1]

    def used(self) -> int:
        self._expire(self.clock())
        return self._total

    def spend(self, weight: int, what: str = "request") -> None:
        now = self.clock()
        self._expire(now)
        if self._total + weight > self.limit and self._spent:
            self.refused += 1
            retry = max(0.05, self._spent[0][0] + self.window_s - now)
            raise RateLimited(f"{what}: local weight budget {self._total}/{self.limit} per "
                              f"{self.window_s:g} s spent", retry_after=retry)
        self._spent.append((now, weight))
        self._total += weight


class ActionBudget:
    """Hyperliquid's address-based limit: 10,000 actions to start, plus one per USDC traded; a batch of
    n orders counts n. Cancels are exempt here (the venue gives them a higher cap)."""

    def __init__(self, initial: int = 10_000):
        self.initial = initial
        self.traded_usd = 0.0
        self.actions = 0

    @property
    def remaining(self) -> float:
        return self.initial + self.traded_usd - self.actions

    def spend(self, count: int) -> None:
        if self.remaining < count:
            raise RateLimited(f"address action budget spent ({self.actions} actions, "
                              f"{self.traded_usd:.0f} USDC traded)", retry_after=10.0)
        self.actions += count

    def traded(self, notional: float) -> None:
        self.traded_usd += notional
