"""Binance's rate limits: REQUEST_WEIGHT per IP per minute (429 with Retry-After, then an IP ban with
418 for a client that does not back off) and each account's unfilled-order count over 10 s and a day
(-1015 as HTTP 429 without Retry-After; an order's first fill takes it off the count again)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sim.binance.params import BANNED, TEXT, TOO_MUCH_WEIGHT, ApiError

__all__ = ["Limits"]

MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass
class _Ip:
    minute: int = 0
    used: int = 0
    backoff_until: int = 0
    banned_until: int = 0


@dataclass
class Limits:
    weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000
    ban_s: int = 120
    _ips: dict[str, _Ip] = field(default_factory=dict)
    _orders: dict[str, list[int]] = field(default_factory=dict)

    def admit(self, ip: str, weight: int, now: int, fault_429: bool = False) -> int:
        """Count a request's weight; returns the IP's weight used this minute, or raises 429/418."""
        state = self._ips.setdefault(ip, _Ip())
        if now < state.banned_until:
            raise self._banned(state, now)
        if now < state.backoff_until:          # it did not wait as the 429 told it to
            state.banned_until = now + self.ban_s * 1000
            raise self._banned(state, now)
        minute = now // MINUTE_MS
        if minute != state.minute:
            state.minute, state.used = minute, 0
        if fault_429:
            state.backoff_until = now + 1000
            raise ApiError(-1003, TOO_MUCH_WEIGHT.format(limit=self.weight_1m), 429,
                           {"Retry-After": "1", "X-MBX-USED-WEIGHT-1M": str(state.used)})
        state.used += weight
        if state.used > self.weight_1m:
            wait_s = -(-((minute + 1) * MINUTE_MS - now) // 1000)
            state.backoff_until = (minute + 1) * MINUTE_MS
            raise ApiError(-1003, TOO_MUCH_WEIGHT.format(limit=self.weight_1m), 429,
                           {"Retry-After": str(wait_s), "X-MBX-USED-WEIGHT-1M": str(state.used)})
        return state.used

    def used(self, ip: str, now: int) -> int:
        state = self._ips.get(ip)
        return state.used if state is not None and state.minute == now // MINUTE_MS else 0

    def _banned(self, state: _Ip, now: int) -> ApiError:
        wait_s = -(-(state.banned_until - now) // 1000)
        return ApiError(-1003, BANNED.format(until=state.banned_until), 418,
                        {"Retry-After": str(wait_s), "X-MBX-USED-WEIGHT-1M": str(state.used)})

    def clear(self) -> None:
        """Lift every ban and back-off (the `clear` fault)."""
        for state in self._ips.values():
            state.backoff_until = state.banned_until = 0

    # -- orders: fixed 10-second and UTC-day windows, as the unfilled-order FAQ describes ----------
    def _roll(self, account: str, now: int) -> list[int]:
        count = self._orders.setdefault(account, [0, 0, 0, 0])    # 10 s window, its count, day, count
        if count[0] != now // 10_000:
            count[0], count[1] = now // 10_000, 0
        if count[2] != now // DAY_MS:
            count[2], count[3] = now // DAY_MS, 0
        return count

    def check_new_order(self, account: str, now: int, count: int = 1) -> None:
        _, ten, _, day = self._roll(account, now)
        if ten + count > self.orders_10s:
            raise ApiError(-1015, TEXT[-1015].format(limit=self.orders_10s, interval="10 SECOND"), 429)
        if day + count > self.orders_1d:
            raise ApiError(-1015, TEXT[-1015].format(limit=self.orders_1d, interval="1 DAY"), 429)

    def count_order(self, account: str, now: int) -> None:
        count = self._roll(account, now)
        count[1] += 1
        count[3] += 1

    def first_fill(self, account: str, now: int) -> None:
        """An order traded for the first time: the current counts go down by one (never below 0)."""
        count = self._roll(account, now)
        count[1], count[3] = max(0, count[1] - 1), max(0, count[3] - 1)

    def order_headers(self, account: str, now: int) -> dict[str, str]:
        _, ten, _, day = self._roll(account, now)
        return {"X-MBX-ORDER-COUNT-10S": str(ten), "X-MBX-ORDER-COUNT-1D": str(day)}

    def settings(self) -> dict:
        return {"weight_1m": self.weight_1m, "orders_10s": self.orders_10s, "orders_1d": self.orders_1d}
