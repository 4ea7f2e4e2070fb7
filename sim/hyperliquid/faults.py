"""Fault injection for the Hyperliquid simulator: what a real venue and network do to a client.

SPEC grammar (`--faults SPEC` at start, control op `faults {"spec": SPEC}` at runtime):
a comma-separated list of `name` or `name=value` items, applied left to right on top of the faults
already set.

    drop_ws                 one shot: close every WebSocket connection now
    ws_silence=SECONDS      keep connections open but push nothing and answer no pings for that long
                            (pushes in that window are lost, as on a stalled connection)
    http_429=N              the next N HTTP /info or /exchange requests get 429 before doing anything
    exchange_5xx=N          the next N /exchange requests are executed, then answered HTTP 500
                            (the client cannot know the outcome)
    delay_ms=N              every /info and /exchange answer is sent N ms after the work was done
    exchange_delay_ms=N     only /exchange answers are late (reads stay fast): orders rest before the ack
    reject_orders=N         the next N orders placed are refused by the venue ("Insufficient margin")
    cancel_fills=N          the next N cancels find their order filled first: the venue fills it at its
                            limit, then the /exchange request is answered HTTP 500 (a cancel that timed
                            out after the exchange filled the order)
    dup_fills=0|1           every push carrying fills is sent twice
    reorder_fills=0|1       fills within a push are reversed, and fill pushes are held and sent
                            swapped in pairs (a lone held push goes out after 2 s)
    partial_fills=0|1       the matching engine cuts every fill into 2-3 parts
    fire_scheduled_cancel   one shot: fire every pending scheduleCancel now
    restart                 one shot: persist, drop every WebSocket, reload the venue from its state
    clear                   reset every standing fault (counters, delay, flags) to off

A bare flag name means 1; `0`/`false`/`off` turn it off. Unknown names or bad values raise ValueError
naming the item, and nothing of that spec is applied.
"""
from __future__ import annotations

from dataclasses import dataclass

from sim import fault_spec
from sim.fault_spec import seconds

__all__ = ["Faults", "parse_spec", "ONE_SHOTS", "AnswerServerError"]


class AnswerServerError(Exception):
    """Raised inside a request by a fault: keep what the venue did, answer HTTP 500."""


ONE_SHOTS = ("drop_ws", "fire_scheduled_cancel", "restart")
_COUNTERS = ("http_429", "exchange_5xx", "delay_ms", "exchange_delay_ms", "reject_orders", "cancel_fills")
_FLAGS = ("dup_fills", "reorder_fills", "partial_fills")


def parse_spec(spec: str) -> list[tuple[str, object]]:
    """The spec as (name, value) items, validated; one-shots have value True."""
    return fault_spec.parse_spec(spec, ONE_SHOTS, _COUNTERS, _FLAGS, {"ws_silence": seconds})


@dataclass
class Faults:
    """The standing faults. `apply` returns the one-shot actions the caller must carry out, in order."""
    http_429: int = 0
    exchange_5xx: int = 0
    delay_ms: int = 0
    exchange_delay_ms: int = 0
    reject_orders: int = 0
    cancel_fills: int = 0
    dup_fills: bool = False
    reorder_fills: bool = False
    partial_fills: bool = False
    silent_until_ms: int = 0

    def apply(self, spec: str, now_ms: int) -> list[str]:
        """Set the standing faults; returns every item name in order, so the caller carries out the
        one-shots and hands `partial_fills` (or `clear`) on to the engine."""
        items = parse_spec(spec)
        for name, value in items:
            if name == "clear":
                self.http_429 = self.exchange_5xx = self.delay_ms = self.silent_until_ms = 0
                self.reject_orders = self.cancel_fills = self.exchange_delay_ms = 0
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
        if self.exchange_5xx > 0:
            self.exchange_5xx -= 1
            return True
        return False

    def take(self, name: str) -> bool:
        """Use one count of a counter fault."""
        if getattr(self, name) > 0:
            setattr(self, name, getattr(self, name) - 1)
            return True
        return False

    def silent(self, now_ms: int) -> bool:
        return now_ms < self.silent_until_ms

    def describe(self, now_ms: int) -> dict:
        return {"http_429": self.http_429, "exchange_5xx": self.exchange_5xx, "delay_ms": self.delay_ms,
                "exchange_delay_ms": self.exchange_delay_ms,
                "reject_orders": self.reject_orders, "cancel_fills": self.cancel_fills,
                "dup_fills": self.dup_fills, "reorder_fills": self.reorder_fills,
                "partial_fills": self.partial_fills,
                "ws_silence_ms": max(0, self.silent_until_ms - now_ms)}
