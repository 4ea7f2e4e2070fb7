"""Value types of the trading domain: sides, order states, market rules and price keys.

Everything here is pure and Decimal-based; floats never touch a price or a size (M-6).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal(0)


def to_decimal(value) -> Decimal:
    """Decimal from str/int/Decimal (floats go through str so 0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc


def canonical(value: Decimal) -> str:
    """One string per numeric value: '100', '0.5', never '1E+2' or '100.00'."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderState(enum.Enum):
    INTENT = "intent"
    SUBMITTED = "submitted"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    CANCEL_PENDING = "cancel_pending"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED)


class FillSource(enum.Enum):
    WS = "ws"
    REST = "rest"
    BACKFILL = "backfill"
    STATUS = "status"
    RECON = "recon"


class Mode(enum.Enum):
    STARTING = "starting"
    RECONCILING = "reconciling"
    TRADING = "trading"
    HALTED = "halted"
    EMERGENCY = "emergency"
    STOPPING = "stopping"


class Origin(enum.Enum):
    """Who asked for an order: every origin takes the same pipeline (B-1.1)."""
    GRID = "grid"
    RISK = "risk"
    ADMIN = "admin"
    REBALANCE = "rebalance"


class RejectReason(enum.Enum):
    """Why a market rule refuses an order, before or at the exchange (I7)."""
    PRICE_TICK = "price_tick"
    PRICE_RANGE = "price_range"
    SIZE_LOT = "size_lot"
    SIZE_RANGE = "size_range"
    MIN_NOTIONAL = "min_notional"
    MAX_NOTIONAL = "max_notional"
    MAX_ORDERS = "max_orders"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    REDUCE_ONLY = "reduce_only"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    UNKNOWN_ORDER = "unknown_order"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's order rules. Either a fixed `tick_size` (Binance) or significant figures plus a
    decimal cap (Hyperliquid: 5 sig figs, 6 - szDecimals decimals, integers always valid)."""
    symbol: str
    base_asset: str
    quote_asset: str
    lot_size: Decimal
    min_size: Decimal = ZERO
    max_size: Decimal | None = None
    tick_size: Decimal | None = None
    sig_figs: int | None = None
    max_price_decimals: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    max_orders: int | None = None

    # -- rounding ---------------------------------------------------------------------------
    def round_price(self, price: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """The nearest valid price (in the given rounding direction)."""
        price = to_decimal(price)
        if self.tick_size is not None:
            ticks = (price / self.tick_size).to_integral_value(rounding=rounding)
            return (ticks * self.tick_size).quantize(self.tick_size)
        if price == price.to_integral_value():
            return price.quantize(Decimal(1))
        rounded = price
        if self.sig_figs is not None and price != 0:
            exponent = price.adjusted() - self.sig_figs + 1
            quantum = Decimal(1).scaleb(max(exponent, -(self.max_price_decimals or 28)))
            rounded = price.quantize(quantum, rounding=rounding) if exponent < 0 else price.quantize(
                Decimal(1), rounding=rounding)
        if self.max_price_decimals is not None:
            rounded = rounded.quantize(Decimal(1).scaleb(-self.max_price_decimals), rounding=rounding)
        return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral_value() else rounded

    def tick_at(self, price: Decimal) -> Decimal:
        """The price step near `price` (fixed on Binance; set by significant figures on Hyperliquid)."""
        if self.tick_size is not None:
            return self.tick_size
        step = Decimal(1).scaleb(price.adjusted() - (self.sig_figs or 28) + 1)
        if self.max_price_decimals is not None:
            step = max(step, Decimal(1).scaleb(-self.max_price_decimals))
        return min(step, Decimal(1)) if price >= 1 and step > 1 else step

    def round_price_passive(self, price: Decimal, side: "Side") -> Decimal:
        """Round away from the touch: buys down, sells up, so rounding never makes an order cross."""
        return self.round_price(price, ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)

    def round_size(self, size: Decimal) -> Decimal:
        """Floor to the lot step: never more than was asked for."""
        size = to_decimal(size)
        steps = (size / self.lot_size).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.lot_size).quantize(self.lot_size)

    def price_key(self, price: Decimal) -> str:
        """Canonical key for a price level: equal prices give equal keys, whatever path made them (M-6)."""
        return canonical(self.round_price(price))

    # -- validation -------------------------------------------------------------------------
    def price_is_valid(self, price: Decimal) -> bool:
        return price > 0 and self.round_price(price) == price

    def check(self, price: Decimal, size: Decimal, open_orders: int = 0) -> RejectReason | None:
        """The first rule this order breaks, or None. Mirrors what the exchange would refuse."""
        if price <= 0:
            return RejectReason.PRICE_RANGE
        if self.min_price is not None and self.min_price > 0 and price < self.min_price:
            return RejectReason.PRICE_RANGE
        if self.max_price is not None and self.max_price > 0 and price > self.max_price:
            return RejectReason.PRICE_RANGE
        if not self.price_is_valid(price):
            return RejectReason.PRICE_TICK
        if size <= 0 or size < self.min_size or (self.max_size is not None and size > self.max_size):
            return RejectReason.SIZE_RANGE
        if self.round_size(size) != size:
            return RejectReason.SIZE_LOT
        notional = price * size
        if notional < self.min_notional:
            return RejectReason.MIN_NOTIONAL
        if self.max_notional is not None and notional > self.max_notional:
            return RejectReason.MAX_NOTIONAL
        if self.max_orders is not None and open_orders >= self.max_orders:
            return RejectReason.MAX_ORDERS
        return None

    def is_complete(self, remaining: Decimal) -> bool:
        """An order is done when what remains is below one lot step (C-2), not at 99%."""
        return remaining < self.lot_size


def client_order_id(bot_id: str, epoch: int, level: int, side: Side, version: int, attempt: int = 0) -> str:
    """Deterministic client order id: the same (bot, grid epoch, level, side, position version, attempt)
    always gives the same id, so a restart that recomputes an intent recognises the order it already
    sent. '0x' + 32 hex fits both Hyperliquid's cloid and Binance's newClientOrderId (<= 36 chars)."""
    import hashlib
    text = f"{bot_id}|{epoch}|{level}|{side.value}|{version}|{attempt}"
    return "0x" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
