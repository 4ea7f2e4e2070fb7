"""Counter-orders never fail silently (B-1.2).

When a fill frees a level, the order one level away is the counter-order that keeps the grid hedged.
If it is refused or rejected, it is retried with a doubling delay; after `limit` failures in a row the
grid asks for an emergency stop instead of staying exposed. A counter-order that reaches the exchange
(open, partly or fully filled) clears its level's record.
"""
from __future__ import annotations


class CounterRetries:
    def __init__(self, limit: int, initial_s: float, max_s: float):
        self.limit, self.initial_ms, self.max_ms = limit, int(initial_s * 1000), int(max_s * 1000)
        self.failures: dict[int, int] = {}     # counter level -> failures in a row
        self.retry_at: dict[int, int] = {}     # counter level -> earliest next attempt (exchange ms)
        self.last_reason: dict[int, str] = {}

    def expect(self, level: int) -> None:
        """A fill made `level` the counter-order's level."""
        self.failures.setdefault(level, 0)

    def placed(self, level: int) -> None:
        self.failures.pop(level, None)
        self.retry_at.pop(level, None)
        self.last_reason.pop(level, None)

    def failed(self, level: int, reason: str, now_ms: int) -> bool:
        """Record a failure; True when the level has now failed `limit` times in a row."""
        if level not in self.failures:
            return False
        n = self.failures[level] = self.failures[level] + 1
        self.last_reason[level] = reason
        self.retry_at[level] = now_ms + min(self.max_ms, self.initial_ms * 2 ** (n - 1))
        return n >= self.limit

    def may_place(self, level: int, now_ms: int) -> bool:
        return self.retry_at.get(level, 0) <= now_ms

    def forget_all(self) -> None:
        """A new epoch: old levels mean nothing any more."""
        self.failures.clear()
        self.retry_at.clear()
        self.last_reason.clear()

    def view(self) -> dict:
        return {str(level): n for level, n in self.failures.items() if n}
