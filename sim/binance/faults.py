"""Fault injection for the Binance simulator: what a real venue and network do to a client.

SPEC grammar (`--faults SPEC` at start, control op `faults {"spec": SPEC}` at runtime):
a comma-separated list of `name` or `name=value` items, applied left to right on top of the faults
already set.

    drop_ws                  one shot: close every WebSocket (WS API and market streams) now
    ws_silence=SECONDS       keep WebSockets open but push nothing and answer no requests for that long
                             (what is pushed in that window is lost, as on a stalled connection)
    http_429=N               the next N REST requests get 429 -1003 (Retry-After: 1) before doing
                             anything; a request inside that second gets 418 and an IP ban
    http_5xx=N               the next N REST requests are executed, then answered HTTP 503 -1007
                             (execution status unknown: the order may exist)
    delay_ms=N               every REST answer is sent N ms after the work was done
    dup_fills=0|1            every executionReport of a trade is pushed twice
    reorder_fills=0|1        trade reports within one change are reversed, and a lone one is held
                             and sent after the next (or after 2 s)
    partial_fills=0|1        the matching engine cuts every fill into 2-3 parts
    clock_skew_ms=N          the server clock runs N ms (may be negative) off the wall clock: a client
                             that does not sync gets -1021 while |N| exceeds its recvWindow
    user_stream_unsubscribe  one shot: every user-data subscription silently ends; the WebSocket
                             stays open and answers requests, but no event arrives any more
    restart                  one shot: persist, drop every WebSocket, reload the venue from its state
    clear                    reset every standing fault (counters, delay, flags, skew, IP bans) to off

A bare flag name means 1; `0`/`false`/`off` turn it off. Unknown names or bad values raise ValueError
naming the item, and nothing of that spec is applied.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim import fault_spec
from sim.fault_spec import seconds, signed_ms

__all__ = ["Faults", "parse_spec", "ONE_SHOTS"]

ONE_SHOTS = ("drop_ws", "user_stream_unsubscribe", "restart")
_COUNTERS = ("http_429", "http_5xx", "delay_ms")
_FLAGS = ("dup_fills", "reorder_fills", "partial_fills")


def parse_spec(spec: str) -> list[tuple[str, object]]:
    """The spec as (name, value) items, validated; one-shots have value True."""
    return fault_spec.parse_spec(spec, ONE_SHOTS, _COUNTERS, _FLAGS, {"ws_silence": seconds, "clock_skew_ms": signed_ms})


@dataclass
class Faults:
    """The standing faults. `apply` returns every item name, so the caller carries out the one-shots
    and hands `partial_fills`, `clock_skew_ms` and `clear` on to the venue."""
    http_429: int = 0
    http_5xx: int = 0
    delay_ms: int = 0
    dup_fills: bool = False
    reorder_fills: bool = False
    partial_fills: bool = False
    clock_skew_ms: int = 0
    silent_until_ms: int = 0

    def apply(self, spec: str, now_ms: int) -> list[str]:
        items = parse_spec(spec)
        for name, value in items:
            if name == "clear":
                self.http_429 = self.http_5xx = self.delay_ms = self.silent_until_ms = self.clock_skew_ms = 0
                self.dup_fills = self.reorder_fills = self.partial_fills = False
            elif name == "ws_silence":
                self.silent_until_ms = now_ms + int(value * 1000)
            elif name not in ONE_SHOTS:
                setattr(self, name, value)
        return [name for name, _ in items]

    def take_429(self) -> bool:
        if self.http_429 > 0:
            self.http_429 -= 1
            return True
        return False

    def take_5xx(self) -> bool:
        if self.http_5xx > 0:
            self.http_5xx -= 1
            return True
        return False

    def silent(self, now_ms: int) -> bool:
        return now_ms < self.silent_until_ms

    def describe(self, now_ms: int) -> dict:
        return {"http_429": self.http_429, "http_5xx": self.http_5xx, "delay_ms": self.delay_ms,
                "dup_fills": self.dup_fills, "reorder_fills": self.reorder_fills,
                "partial_fills": self.partial_fills, "clock_skew_ms": self.clock_skew_ms,
                "ws_silence_ms": max(0, self.silent_until_ms - now_ms)}
