"""The circuit breaker, fed by the gateway's classified exchange errors (H-3).

A rate limit trips it at once, for as long as the exchange's Retry-After says (the configured cool-down
when it says nothing); network errors (timeouts, 5xx, unknown outcomes) trip it only when
`network_limit` of them fall within the window; rejections are counted separately with their own,
higher limit, because one bad order says little about the venue.
"""
from __future__ import annotations

from collections import deque

NETWORK_KINDS = ("transient", "unknown")


class CircuitBreaker:
    def __init__(self, network_limit: int, rejection_limit: int, window_s: float, cooldown_s: float):
        self.network_limit, self.rejection_limit = network_limit, rejection_limit
        self.window_s, self.cooldown_s = window_s, cooldown_s
        self.network: deque[float] = deque()
        self.rejections: deque[float] = deque()
        self.open_until = 0.0
        self.reason = ""
        self.trips = 0
        self.counts = {"rate_limited": 0, "network": 0, "rejected": 0}

    def record(self, kind: str, now: float, retry_after: float | None = None, message: str = "") -> bool:
        """Count one error; True when this error tripped the breaker."""
        if kind == "rate_limited":
            self.counts["rate_limited"] += 1
            return self._trip(now, retry_after if retry_after else self.cooldown_s, f"rate limited: {message}")
        if kind in NETWORK_KINDS:
            self.counts["network"] += 1
            if self._count(self.network, now) >= self.network_limit:
                self.network.clear()
                return self._trip(now, self.cooldown_s, f"{self.network_limit} network errors in "
                                                        f"{self.window_s:.0f}s (last: {message})")
        elif kind == "rejected":
            self.counts["rejected"] += 1
            if self._count(self.rejections, now) >= self.rejection_limit:
                self.rejections.clear()
                return self._trip(now, self.cooldown_s, f"{self.rejection_limit} rejections in "
                                                        f"{self.window_s:.0f}s (last: {message})")
        return False

    def _count(self, times: deque, now: float) -> int:
        times.append(now)
        while times and times[0] < now - self.window_s:
            times.popleft()
        return len(times)

    def _trip(self, now: float, seconds: float, reason: str) -> bool:
        was_open = self.is_open(now)
        self.open_until = max(self.open_until, now + seconds)
        self.reason = reason
        if not was_open:
            self.trips += 1
        return not was_open

    def is_open(self, now: float) -> bool:
        return now < self.open_until

    def view(self, now: float) -> dict:
        return {"open": self.is_open(now), "open_for_s": round(max(0.0, self.open_until - now), 3),
                "reason": self.reason, "trips": self.trips, **self.counts}
