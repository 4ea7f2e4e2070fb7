"""One order as the order book keeps it, and the watchdog that makes sure no write or query is left
unanswered: a batch the gateway never acknowledged turns its orders unknown and asks their status, and
status queries are repeated a bounded number of times before the order is left to the next audit
(lost-order detection with bounded retries, as Hummingbot and Nautilus do)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from loguru import logger

from actors.outbox import After
from messages.commands import OrderSpec
from messages.events import OrderUpdate
from messages.types import ZERO, OrderState

LIVE = (OrderState.INTENT, OrderState.SUBMITTED, OrderState.OPEN, OrderState.PARTIALLY_FILLED,
        OrderState.CANCEL_PENDING, OrderState.UNKNOWN)
UNANSWERED = (OrderState.SUBMITTED, OrderState.CANCEL_PENDING, OrderState.UNKNOWN)

_S = OrderState
# The order state machine (S-3): every move the order book makes is one of these. A terminal state
# never changes again (a late fill on it is applied to the position, not to the state).
TRANSITIONS: dict[OrderState, frozenset] = {
    _S.INTENT: frozenset({_S.SUBMITTED, _S.CANCELLED, _S.REJECTED}),
    _S.SUBMITTED: frozenset({_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.UNKNOWN,
                             _S.CANCEL_PENDING, _S.CANCELLED}),
    _S.UNKNOWN: frozenset({_S.OPEN, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCEL_PENDING,
                           _S.CANCELLED}),
    _S.OPEN: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED, _S.UNKNOWN,
                        _S.REJECTED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELLED,
                                    _S.UNKNOWN}),
    _S.CANCEL_PENDING: frozenset({_S.CANCELLED, _S.FILLED, _S.OPEN, _S.PARTIALLY_FILLED, _S.UNKNOWN}),
    _S.FILLED: frozenset(), _S.CANCELLED: frozenset(), _S.REJECTED: frozenset(),
}


def allowed(old: OrderState, new: OrderState) -> bool:
    """The pure transition function's guard: staying put is always allowed."""
    return old is new or new in TRANSITIONS[old]


@dataclass(slots=True)
class OrderRecord:
    spec: OrderSpec
    state: OrderState = OrderState.INTENT
    exchange_id: str | None = None
    filled: Decimal = ZERO
    created: float = 0.0              # the order book's clock when it took the order
    reason: str = ""                  # why it was rejected, for whoever retries it
    illegal: int = 0                  # moves the state machine refused (a bug if ever non-zero)

    def move(self, new: OrderState, reason: str = "") -> bool:
        """Change state only along TRANSITIONS; a refused move is logged and counted, never applied."""
        if not allowed(self.state, new):
            self.illegal += 1
            logger.error("order {}: refused state move {} -> {}", self.spec.client_id, self.state.value, new.value)
            return False
        self.state = new
        if reason:
            self.reason = reason
        return True

    def update(self) -> OrderUpdate:
        s = self.spec
        return OrderUpdate(s.client_id, s.side, s.price, s.size, self.filled, self.state, s.origin, s.level,
                           self.reason)

    def row(self) -> dict:
        s = self.spec
        return {"client_id": s.client_id, "exchange_order_id": self.exchange_id, "symbol": s.symbol,
                "side": s.side.value, "price": str(s.price), "size": str(s.size), "filled": str(self.filled),
                "state": self.state.value, "origin": s.origin.value, "level": s.level,
                "position_version": s.position_version}




class Watchdog:
    def __init__(self, timeout_s: float, max_queries: int):
        self.timeout_s, self.max_queries = timeout_s, max_queries
        self.watching: dict[int, tuple[str, ...]] = {}
        self.queries: dict[str, int] = {}
        self.gave_up: set[str] = set()

    def watch(self, request_id: int, client_ids, payload_kind: str) -> After:
        self.watching[request_id] = tuple(client_ids)
        return After(self.timeout_s, (payload_kind, request_id))

    def expired(self, request_id: int) -> tuple[str, ...]:
        return self.watching.pop(request_id, ())

    def may_query(self, client_id: str) -> bool:
        """Count one status query; False once the order has had its share."""
        n = self.queries.get(client_id, 0)
        if n >= self.max_queries:
            self.gave_up.add(client_id)
            return False
        self.queries[client_id] = n + 1
        return True

    def resolved(self, client_id: str) -> None:
        self.queries.pop(client_id, None)
        self.gave_up.discard(client_id)


class BatchWindow:
    """How long intents wait to share a batch (M-3): a short fixed window, shorter when the last tick
    moved the price by `fast_move_pct` or more. Never a latency estimate."""

    def __init__(self, normal_ms: int, fast_ms: int, fast_move_pct: Decimal):
        self.normal_s, self.fast_s, self.fast_move = normal_ms / 1000, fast_ms / 1000, fast_move_pct / 100
        self.last: Decimal | None = None
        self.fast = False

    def observe(self, mid: Decimal) -> None:
        if self.last is not None and self.last > 0:
            self.fast = abs(mid - self.last) / self.last >= self.fast_move
        self.last = mid

    @property
    def seconds(self) -> float:
        return min(self.fast_s, self.normal_s) if self.fast else self.normal_s
