"""Normalized exchange reports: what every adapter turns its venue's payloads into."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from messages.types import ZERO, MarketRules, OrderState, Side


@dataclass(frozen=True, slots=True)
class FillReport:
    """One execution. `trade_id` is the exchange's unique id (Hyperliquid tid, Binance trade id): the
    dedup key of the whole product (I1)."""
    trade_id: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int
    client_id: str | None = None
    exchange_order_id: str | None = None
    maker: bool = True

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side is Side.BUY else -self.size

    @property
    def order_key(self) -> tuple[int, str]:
        """Fills are ordered by (time, trade id) whatever order they arrived in (M-1)."""
        return (self.time_ms, self.trade_id.rjust(24, "0"))


@dataclass(frozen=True, slots=True)
class OrderReport:
    """An order as the exchange sees it."""
    client_id: str | None
    exchange_order_id: str | None
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    filled: Decimal
    state: OrderState
    reduce_only: bool = False
    time_ms: int = 0
    trigger_price: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled


@dataclass(frozen=True, slots=True)
class PositionReport:
    symbol: str
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class BalanceReport:
    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class VenueState:
    """What the exchange says right now: the truth every rebuild starts from (I3)."""
    rules: MarketRules
    position: PositionReport
    balances: tuple[BalanceReport, ...]
    open_orders: tuple[OrderReport, ...]
    fills: tuple[FillReport, ...]
    mid: Decimal | None
    time_ms: int
    extra: tuple = field(default=())

    def balance(self, asset: str) -> BalanceReport:
        for b in self.balances:
            if b.asset == asset:
                return b
        return BalanceReport(asset, ZERO, ZERO)
