"""Events: past-tense facts one actor tells others."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from messages.reports import FillReport, OrderReport, VenueState
from messages.types import FillSource, OrderState, Origin, RejectReason, Side


@dataclass(frozen=True, slots=True)
class OrderAcked:
    client_id: str
    exchange_order_id: str
    state: OrderState = OrderState.OPEN


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_id: str
    reason: RejectReason
    message: str = ""


@dataclass(frozen=True, slots=True)
class OrderUnknown:
    """Timeout or 5xx: the exchange may or may not have the order. Resolved by a status query."""
    client_id: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class OrdersPlaced:
    """The outcome of one PlaceOrders batch, one result per order in order."""
    batch_id: int
    results: tuple[OrderAcked | OrderRejected | OrderUnknown, ...]


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    client_id: str


@dataclass(frozen=True, slots=True)
class CancelFailed:
    """`ambiguous` when the exchange may have done it anyway (timeout, 5xx, 'already filled')."""
    client_id: str
    message: str = ""
    ambiguous: bool = True


@dataclass(frozen=True, slots=True)
class OrdersCancelled:
    batch_id: int
    results: tuple[OrderCancelled | CancelFailed, ...]


@dataclass(frozen=True, slots=True)
class OrderStatuses:
    """Answer to QueryOrders: None where the exchange has never heard of the client id."""
    request_id: int
    reports: tuple[tuple[str, OrderReport | None], ...]


@dataclass(frozen=True, slots=True)
class FillsReceived:
    """Fills from one source, not yet journaled: they go to the fill guarantor only."""
    source: FillSource
    fills: tuple[FillReport, ...]


@dataclass(frozen=True, slots=True)
class FillsRecorded:
    """Journaled (fsynced) fills, each exactly once, in (time, trade id) order. `version` is the journal
    sequence after the last of them: the position version every order intent is checked against."""
    version: int
    fills: tuple[FillReport, ...]


@dataclass(frozen=True, slots=True)
class PriceTick:
    symbol: str
    mid: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class StreamDown:
    reason: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class StreamUp:
    time_ms: int


@dataclass(frozen=True, slots=True)
class ExchangeSnapshot:
    request_id: int
    state: VenueState


@dataclass(frozen=True, slots=True)
class ExchangeError:
    """A classified exchange failure for the circuit breaker (H-3): kind is one of
    'rate_limited', 'rejected', 'unknown', 'transient'."""
    kind: str
    message: str
    retry_after: float | None = None
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class PositionChanged:
    version: int
    position: Decimal
    exchange_position: Decimal | None
    average_entry: Decimal
    realized_pnl: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One order's new state as the order book sees it."""
    client_id: str
    side: Side
    price: Decimal
    size: Decimal
    filled: Decimal
    state: OrderState
    origin: Origin
    level: int | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrdersChanged:
    updates: tuple[OrderUpdate, ...]


@dataclass(frozen=True, slots=True)
class IntentRefused:
    """An order that will not be sent, and why. `kind`: 'stale' and 'mode' are recomputed anyway,
    'limit' and 'breaker' are risk's deliberate choices, 'funds' is a failure to place (B-1.2)."""
    client_id: str
    reason: str
    origin: Origin
    level: int | None = None
    kind: str = "limit"


@dataclass(frozen=True, slots=True)
class IntentsRefused:
    refusals: tuple[IntentRefused, ...]


@dataclass(frozen=True, slots=True)
class OrdersCleared:
    """Order book -> supervisor: no order of ours is live (or `remaining` are, after the deadline)."""
    remaining: int
