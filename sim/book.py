"""The matching engine's records: orders, fills, one market's resting book, and their JSON forms.

Kept apart from the engine so the engine reads as the venue's rules, and so the protocol servers can
import the record types without the engine's machinery.
"""
from __future__ import annotations

import bisect
import dataclasses
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from messages.types import ZERO, MarketRules, OrderState, RejectReason, Side

__all__ = [
    "EngineOrder", "EngineFill", "FillLog", "PlaceOutcome", "CancelOutcome", "Market", "Book",
    "split_size", "rules_to_dict", "rules_from_dict", "rule_message", "write_json_atomic", "read_json",
]


@dataclass(slots=True)
class EngineOrder:
    """One order as the venue knows it. `oid` is None for an order rejected at placement (venues give
    rejected orders no id). The engine hands out copies; only the engine mutates its own."""
    oid: int | None
    account: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    client_id: str | None
    tif: str
    reduce_only: bool
    created_ms: int
    status: OrderState = OrderState.OPEN
    filled: Decimal = ZERO
    filled_notional: Decimal = ZERO
    updated_ms: int = 0
    reason: RejectReason | None = None
    message: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled

    @property
    def avg_price(self) -> Decimal | None:
        return self.filled_notional / self.filled if self.filled else None

    @property
    def is_open(self) -> bool:
        return self.status in (OrderState.OPEN, OrderState.PARTIALLY_FILLED)

    def to_list(self) -> list:
        return [self.oid, self.account, self.symbol, self.side.value, str(self.price), str(self.size),
                self.client_id, self.tif, self.reduce_only, self.created_ms, self.status.value,
                str(self.filled), str(self.filled_notional), self.updated_ms,
                self.reason.value if self.reason else None, self.message]

    @classmethod
    def from_list(cls, data: list) -> "EngineOrder":
        (oid, account, symbol, side, price, size, cid, tif, reduce_only, created, status, filled,
         notional, updated, reason, message) = data
        return cls(oid, account, symbol, Side(side), Decimal(price), Decimal(size), cid, tif,
                   reduce_only, created, OrderState(status), Decimal(filled), Decimal(notional),
                   updated, RejectReason(reason) if reason else None, message)


@dataclass(frozen=True, slots=True)
class EngineFill:
    """One execution of one of our orders. `trade_id` is unique and increasing per engine, for life.
    `start_position` and `closed_pnl` are the perp position before the fill and the PnL it realized
    (zero on spot), as Hyperliquid reports them."""
    trade_id: int
    oid: int
    account: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int
    maker: bool
    client_id: str | None = None
    start_position: Decimal = ZERO
    closed_pnl: Decimal = ZERO

    def to_list(self) -> list:
        return [self.trade_id, self.oid, self.account, self.symbol, self.side.value, str(self.price),
                str(self.size), str(self.fee), self.fee_asset, self.time_ms, self.maker, self.client_id,
                str(self.start_position), str(self.closed_pnl)]

    @classmethod
    def from_list(cls, data: list) -> "EngineFill":
        tid, oid, account, symbol, side, price, size, fee, fee_asset, time_ms, maker, cid, start, pnl = data
        return cls(tid, oid, account, symbol, Side(side), Decimal(price), Decimal(size), Decimal(fee),
                   fee_asset, time_ms, maker, cid, Decimal(start), Decimal(pnl))


class FillLog:
    """Each account's fills in (time, trade id) order, trimmed to the newest `limit` (None: all)."""
    __slots__ = ("limit", "_by_account")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._by_account: dict[str, list[EngineFill]] = {}

    def add(self, fill: EngineFill) -> None:
        fills = self._by_account.setdefault(fill.account, [])
        if fills and fills[-1].time_ms > fill.time_ms:
            bisect.insort(fills, fill, key=_fill_key)
        else:
            fills.append(fill)
        limit = self.limit
        if limit is not None and len(fills) > limit + limit // 4 + 1:
            del fills[:len(fills) - limit]

    def query(self, account: str, since_ms: int | None = None, until_ms: int | None = None,
              limit: int | None = None) -> list[EngineFill]:
        fills = self._by_account.get(account, [])
        lo = 0 if since_ms is None else bisect.bisect_left(fills, since_ms, key=_fill_time)
        hi = len(fills) if until_ms is None else bisect.bisect_right(fills, until_ms, key=_fill_time)
        out = fills[lo:hi]
        return out[:limit] if limit is not None else out

    def __iter__(self):
        return (fill for fills in self._by_account.values() for fill in fills)


def _fill_time(fill: EngineFill) -> int:
    return fill.time_ms


def _fill_key(fill: EngineFill) -> tuple[int, int]:
    return (fill.time_ms, fill.trade_id)


@dataclass(frozen=True, slots=True)
class PlaceOutcome:
    """What `place` did: accepted (with the order's status after any immediate fills) or rejected.
    An Ioc that could not match is accepted and ends CANCELLED with no fills (Hyperliquid answers it
    with its IocCancel error text, Binance with status EXPIRED)."""
    accepted: bool
    oid: int | None = None
    status: OrderState = OrderState.REJECTED
    fills: tuple[EngineFill, ...] = ()
    reason: RejectReason | None = None
    message: str = ""
    client_id: str | None = None

    @property
    def resting(self) -> bool:
        return self.accepted and self.status in (OrderState.OPEN, OrderState.PARTIALLY_FILLED)

    @property
    def filled(self) -> bool:
        return self.accepted and self.status is OrderState.FILLED


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    ok: bool
    order: EngineOrder | None = None
    reason: RejectReason | None = None
    message: str = ""


class Book:
    """Our resting orders in one market, each side sorted best-first. Keys are (-price, oid) for bids
    and (price, oid) for asks: oids increase, so equal prices keep time priority."""
    __slots__ = ("bids", "asks", "best_bid", "best_ask")

    def __init__(self) -> None:
        self.bids: list[tuple[Decimal, int]] = []
        self.asks: list[tuple[Decimal, int]] = []
        self.best_bid: Decimal | None = None
        self.best_ask: Decimal | None = None

    def add(self, order: EngineOrder) -> None:
        if order.side is Side.BUY:
            bisect.insort(self.bids, (-order.price, order.oid))
            self.best_bid = -self.bids[0][0]
        else:
            bisect.insort(self.asks, (order.price, order.oid))
            self.best_ask = self.asks[0][0]

    def remove(self, order: EngineOrder) -> None:
        side = self.bids if order.side is Side.BUY else self.asks
        key = (-order.price, order.oid) if order.side is Side.BUY else (order.price, order.oid)
        index = bisect.bisect_left(side, key)
        if index < len(side) and side[index] == key:
            del side[index]
        self._refresh()

    def _refresh(self) -> None:
        self.best_bid = -self.bids[0][0] if self.bids else None
        self.best_ask = self.asks[0][0] if self.asks else None

    def pop_crossed(self, price: Decimal) -> list[int]:
        """Oids of the orders a move to `price` reaches (a touch fills), nearest to the old price first."""
        crossed: list[int] = []
        bids, asks = self.bids, self.asks
        while bids and -bids[0][0] >= price:
            crossed.append(bids.pop(0)[1])
        while asks and asks[0][0] <= price:
            crossed.append(asks.pop(0)[1])
        self._refresh()
        return crossed


@dataclass(slots=True)
class Market:
    """One tradable market and its venue-side settings; `price`/`time_ms` are the last point seen."""
    rules: MarketRules
    kind: str
    maker_fee: Decimal
    taker_fee: Decimal
    leverage: int
    price: Decimal | None = None
    time_ms: int = 0
    book: Book = field(default_factory=Book)

    def to_dict(self) -> dict:
        return {"rules": rules_to_dict(self.rules), "kind": self.kind, "maker_fee": str(self.maker_fee),
                "taker_fee": str(self.taker_fee), "leverage": self.leverage,
                "price": None if self.price is None else str(self.price), "time_ms": self.time_ms}

    @classmethod
    def from_dict(cls, data: dict) -> "Market":
        return cls(rules_from_dict(data["rules"]), data["kind"], Decimal(data["maker_fee"]),
                   Decimal(data["taker_fee"]), int(data["leverage"]),
                   None if data["price"] is None else Decimal(data["price"]), int(data["time_ms"]))


def split_size(rng: random.Random, size: Decimal, lot: Decimal) -> list[Decimal]:
    """Cut `size` into 2-3 lot-aligned parts at random points; the parts sum to `size` exactly."""
    lots = int(size / lot)
    if lots < 2 or lots * lot != size:
        return [size]
    pieces = min(rng.choice((2, 3)), lots)
    cuts = sorted(rng.sample(range(1, lots), pieces - 1))
    parts = [(b - a) * lot for a, b in zip([0] + cuts, cuts)]
    parts.append(size - sum(parts, ZERO))
    return parts


def rules_to_dict(rules: MarketRules) -> dict:
    out = {}
    for f in dataclasses.fields(rules):
        value = getattr(rules, f.name)
        out[f.name] = str(value) if isinstance(value, Decimal) else value
    return out


def rules_from_dict(data: dict) -> MarketRules:
    decimals = {"lot_size", "min_size", "max_size", "tick_size", "min_price", "max_price",
                "min_notional", "max_notional"}
    kwargs = {k: (Decimal(v) if k in decimals and v is not None else v) for k, v in data.items()}
    return MarketRules(**kwargs)


def rule_message(reason: RejectReason, rules: MarketRules, order: EngineOrder, open_count: int) -> str:
    """A human reason for a market-rule rejection (servers replace it with the venue's own text)."""
    if reason is RejectReason.PRICE_TICK:
        return f"price {order.price} is not a valid {rules.symbol} price"
    if reason is RejectReason.PRICE_RANGE:
        return f"price {order.price} outside [{rules.min_price}, {rules.max_price}]"
    if reason is RejectReason.SIZE_LOT:
        return f"size {order.size} is not a multiple of the lot {rules.lot_size}"
    if reason is RejectReason.SIZE_RANGE:
        return f"size {order.size} outside [{rules.min_size}, {rules.max_size}]"
    if reason is RejectReason.MIN_NOTIONAL:
        return f"order value {order.price * order.size} below the minimum {rules.min_notional}"
    if reason is RejectReason.MAX_NOTIONAL:
        return f"order value {order.price * order.size} above the maximum {rules.max_notional}"
    if reason is RejectReason.MAX_ORDERS:
        return f"{open_count} open orders: the limit is {rules.max_orders}"
    return reason.value


def write_json_atomic(path, data) -> None:
    """Write, fsync, rename, fsync the directory: a crash leaves the old file or the new, never half."""
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(orjson.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path) -> dict:
    """The JSON document at `path`; ValueError (naming the file) when it is unreadable or corrupt."""
    try:
        with open(path, "rb") as handle:
            return orjson.loads(handle.read())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read venue state: {exc}") from exc
