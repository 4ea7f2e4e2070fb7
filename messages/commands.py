"""Commands: imperative messages that ask an actor to do something."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from messages.types import Origin, Side


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A limit order we want. `client_id` is deterministic (bot, epoch, level, side, generation), so a
    restart recognises its own orders; `position_version` is the position it was computed from (C-1)."""
    client_id: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    origin: Origin = Origin.GRID
    level: int | None = None
    position_version: int = 0
    reduce_only: bool = False
    post_only: bool = True
    trigger_price: Decimal | None = None     # a protective stop: rests off the book until reached


@dataclass(frozen=True, slots=True)
class OrderIntents:
    """Orders an originator wants placed; the pipeline starts here (grid/risk/admin -> risk)."""
    orders: tuple[OrderSpec, ...]
    position_version: int
    origin: Origin = Origin.GRID


@dataclass(frozen=True, slots=True)
class ApprovedIntents:
    """Risk approved these; the balance actor reserves funds for them next."""
    orders: tuple[OrderSpec, ...]
    position_version: int


@dataclass(frozen=True, slots=True)
class SubmitOrders:
    """Funds are reserved; the order book journals the intents and batches them to the gateway."""
    orders: tuple[OrderSpec, ...]


@dataclass(frozen=True, slots=True)
class PlaceOrders:
    """The only way an order reaches the exchange (order book -> gateway)."""
    batch_id: int
    orders: tuple[OrderSpec, ...]


@dataclass(frozen=True, slots=True)
class RequestCancels:
    """Ask the order book to cancel orders (by client id); `all_orders` cancels every order we own."""
    client_ids: tuple[str, ...] = ()
    all_orders: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelOrders:
    """Order book -> gateway: cancel these (client id, exchange id) pairs."""
    batch_id: int
    orders: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class QueryOrders:
    """Resolve orders whose fate is unknown by asking the exchange (C-6, B-2.3)."""
    request_id: int
    client_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """Ask the gateway for the exchange's truth, with fills since a time (ms) for backfill."""
    request_id: int
    fills_since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RequestAudit:
    """Ask the fill guarantor for an early audit (the ledger saw a drift)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReleaseReservation:
    """Funds held for an order that will never reach the exchange go back to free."""
    client_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RequestBackfill:
    """Guarantor -> gateway: fetch every fill since `since_ms` over REST, tagged with `source`."""
    since_ms: int
    source: object


@dataclass(frozen=True, slots=True)
class StopMarketData:
    """Stop driving the venue (paper path) and forwarding prices: the last step of a shutdown."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DisarmDeadMan:
    """Clear the venue-side dead man's switch: our orders are cancelled (or deliberately left)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EmergencyStop:
    """Stop trading now: cancel every grid order, report `reason`, and close the position if `flatten`
    (B-1.2: a counter-order that keeps failing; risk's kill switch, stop-loss or take-profit)."""
    reason: str
    flatten: bool = False
    source: str = ""
