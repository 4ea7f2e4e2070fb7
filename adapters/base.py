"""The `Exchange` interface every venue adapter implements, and its classified errors.

Adapters are called only from the gateway actor's mailbox, one call at a time, and every call is
bounded by a timeout. Events that arrive on their own (fills and prices pushed by a stream, or produced
by the paper venue's price path) are queued by the adapter and handed over by `drain_events()`; a
pipe fd (`wakeup_fd`) tells the gateway there is something to drain.
"""
from __future__ import annotations

import abc
from typing import Sequence

from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    OrderUnknown,
)
from messages.reports import BalanceReport, FillReport, OrderReport, PositionReport, VenueState
from messages.types import MarketRules, RejectReason

__all__ = [
    "Exchange", "ExchangeFailure", "RateLimited", "Rejected", "Unknown", "Transient",
    "FillReport", "OrderReport", "PositionReport", "BalanceReport", "VenueState",
    "PlaceResult", "CancelResult",
]

PlaceResult = OrderAcked | OrderRejected | OrderUnknown
CancelResult = OrderCancelled | CancelFailed


class ExchangeFailure(Exception):
    """A whole call failed. `kind` feeds the circuit breaker (H-3)."""
    kind = "transient"

    def __init__(self, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(ExchangeFailure):
    """429/418 or the venue's own limit: nothing was done; retry after `retry_after` seconds."""
    kind = "rate_limited"


class Rejected(ExchangeFailure):
    """The exchange refused the call itself (bad signature, unknown account, ...)."""
    kind = "rejected"

    def __init__(self, message: str = "", reason: RejectReason = RejectReason.OTHER):
        super().__init__(message)
        self.reason = reason


class Unknown(ExchangeFailure):
    """Timeout or 5xx: the exchange may or may not have done it."""
    kind = "unknown"


class Transient(ExchangeFailure):
    """Network trouble before anything reached the exchange: safe to retry."""
    kind = "transient"


class Exchange(abc.ABC):
    """One (account, market) on one venue."""

    name: str = "exchange"
    max_batch: int = 1000
    """Most orders (or cancels) one request may carry; the gateway splits larger batches (M-3)."""
    paced: bool = False
    """True for simulated venues whose market waits for the bot: after fills, the gateway holds the
    price path until the bot has reacted (or a hold time passed), so simulated time stretches
    instead of outrunning the bot."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open sessions and load market metadata. Idempotent."""

    @abc.abstractmethod
    def rules(self) -> MarketRules:
        """The market's order rules (tick, lot, min notional, max orders)."""

    @abc.abstractmethod
    def snapshot(self, fills_since_ms: int | None = None) -> VenueState:
        """Position, balances, open orders, mid, and fills since `fills_since_ms` (None: none)."""

    @abc.abstractmethod
    def place(self, orders: Sequence[OrderSpec]) -> list[PlaceResult]:
        """Place a batch; one result per order, in order. Raises ExchangeFailure for the whole batch."""

    @abc.abstractmethod
    def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[CancelResult]:
        """Cancel (client id, exchange id) pairs; one result per pair, in order."""

    @abc.abstractmethod
    def order_status(self, client_ids: Sequence[str]) -> list[OrderReport | None]:
        """The exchange's view of each order, None where it never heard of it."""

    @abc.abstractmethod
    def fills_since(self, since_ms: int) -> list[FillReport]:
        """Every fill at or after `since_ms`, paging as the venue requires (never filtered by age)."""

    @abc.abstractmethod
    def start_stream(self) -> None:
        """Start pushing fills and prices; they come out of drain_events()."""

    @abc.abstractmethod
    def drain_events(self) -> list:
        """Queued events (FillsReceived, PriceTick, StreamDown, StreamUp), oldest first."""

    def pump(self, now_ms: int) -> None:
        """Time-driven work (the paper venue walks its price path; live adapters check staleness)."""

    @property
    def wakeup_fd(self) -> int | None:
        """A readable fd when events are queued (for ThespianWatch), or None to rely on pump()."""
        return None

    def keepalive(self, now_ms: int) -> None:
        """Refresh venue-side safety nets (Hyperliquid's scheduleCancel dead man's switch)."""

    def disarm(self) -> None:
        """Clear venue-side safety nets set by keepalive (after halt/shutdown cancelled our orders)."""

    def close(self) -> None:
        """Release connections; must not cancel anything by itself."""
