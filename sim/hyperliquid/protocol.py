"""Pure translation between the matching engine's records and Hyperliquid's JSON.

No sockets, no clock, no state: every function takes what it needs, so the wire shapes are unit-tested
without a server. Shapes follow the captured payloads in `shared/fixtures/hyperliquid/`; numbers are
strings the way Hyperliquid writes them ("78751.0", "0.00535", never exponent notation).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from messages.types import ZERO, MarketRules, OrderState, RejectReason, Side
from sim.book import EngineFill, EngineOrder

__all__ = [
    "MarketSpec", "DEFAULT_MARKETS", "market_rules", "num", "money", "meta", "spot_meta", "fill_wire",
    "fill_direction", "basic_order_wire", "frontend_order_wire", "order_status_name", "order_update",
    "ParsedOrder", "WireError", "parse_order", "parse_cloid", "reject_text", "error_status", "l2_levels",
    "candle_wire", "INTERVALS", "TEXT", "precheck", "fill_hash",
]

_MICRO = Decimal("0.000001")
_CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One perp as the simulator lists it; `start_price` seeds its synthetic path (January 2022 levels)."""
    name: str
    sz_decimals: int
    max_leverage: int
    start_price: Decimal


DEFAULT_MARKETS = (
    MarketSpec("BTC", 5, 40, Decimal("47000")),
    MarketSpec("ETH", 4, 25, Decimal("3700")),
    MarketSpec("SOL", 2, 20, Decimal("170")),
    MarketSpec("ATOM", 2, 5, Decimal("35")),
)

# Real Hyperliquid texts (fixtures/exchange_error_messages.json) plus the few the fixture lacks, which
# are chosen to read like the real ones. Per-order errors get " asset=N" appended, as the real API does.
TEXT = {
    "Tick": "Price must be divisible by tick size.",
    "MinTradeNtl": "Order must have minimum value of $10.",
    "PerpMargin": "Insufficient margin to place order.",
    "ReduceOnly": "Reduce only order would increase position.",
    "BadAloPx": "Post only order would have immediately matched, bbo was {bbo}.",
    "IocCancel": "Order could not immediately match against any resting orders.",
    "MissingOrder": "Order was never placed, already canceled, or filled.",
    "InvalidSize": "Order has invalid size.",
    "ZeroSize": "Order has zero size.",
    "InvalidPrice": "Order has invalid price.",
    "DuplicateCloid": "Order has duplicate cloid.",
    "MaxOrders": "Too many open orders.",
    "Trigger": "Trigger orders are not supported by this simulator.",
    "ModifyClosed": "Cannot modify canceled or filled order",
}

_REJECT_STATUS = {
    RejectReason.PRICE_TICK: "tickRejected",
    RejectReason.MIN_NOTIONAL: "minTradeNtlRejected",
    RejectReason.INSUFFICIENT_FUNDS: "perpMarginRejected",
    RejectReason.REDUCE_ONLY: "reduceOnlyRejected",
    RejectReason.POST_ONLY_WOULD_CROSS: "badAloPxRejected",
}

INTERVALS = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
             "8h": 480, "12h": 720, "1d": 1440}


def market_rules(spec: MarketSpec) -> MarketRules:
    """Hyperliquid perp rules: 5 significant figures, 6 - szDecimals price decimals, $10 minimum."""
    return MarketRules(symbol=spec.name, base_asset=spec.name, quote_asset="USDC",
                       lot_size=Decimal(1).scaleb(-spec.sz_decimals), sig_figs=5,
                       max_price_decimals=6 - spec.sz_decimals, min_notional=Decimal(10), max_orders=1000)


# -- numbers ---------------------------------------------------------------------------------------
def num(value: Decimal) -> str:
    """Hyperliquid's float strings: shortest exact form, integers with '.0', zero as '0.0'."""
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def money(value: Decimal) -> str:
    """A USDC amount (fee, PnL, equity) rounded to the micro-dollar the venue settles in."""
    return num(value.quantize(_MICRO))


# -- metadata --------------------------------------------------------------------------------------
def meta(markets) -> dict:
    universe = [{"isDelisted": None, "maxLeverage": m.max_leverage, "name": m.name, "onlyIsolated": None,
                 "szDecimals": m.sz_decimals} for m in markets]
    return {"universe": universe, "marginTables": []}


def spot_meta() -> dict:
    return {"tokens": [{"index": 0, "isCanonical": True, "name": "USDC", "szDecimals": 8,
                        "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "weiDecimals": 8}],
            "universe": []}


# -- fills and orders ------------------------------------------------------------------------------
def fill_direction(side: Side, start: Decimal, size: Decimal) -> str:
    if side is Side.BUY:
        if start >= 0:
            return "Open Long"
        return "Close Short" if size <= -start else "Short > Long"
    if start <= 0:
        return "Open Short"
    return "Close Long" if size <= start else "Long > Short"


def fill_hash(trade_id: int) -> str:
    return "0x" + hashlib.sha256(f"gridbot-hl-fill:{trade_id}".encode()).hexdigest()


def fill_wire(fill: EngineFill) -> dict:
    """A fill in the key order of `http_user_fills_with_cloid.json` (no `cloid` key without one)."""
    out = {"coin": fill.symbol, "px": num(fill.price), "sz": num(fill.size),
           "side": "B" if fill.side is Side.BUY else "A", "time": fill.time_ms,
           "startPosition": num(fill.start_position),
           "dir": fill_direction(fill.side, fill.start_position, fill.size),
           "closedPnl": money(fill.closed_pnl), "hash": fill_hash(fill.trade_id), "oid": fill.oid,
           "crossed": not fill.maker, "fee": money(fill.fee), "tid": fill.trade_id}
    if fill.client_id is not None:
        out["cloid"] = fill.client_id
    out["feeToken"] = fill.fee_asset
    out["twapId"] = None
    return out


def _side(order: EngineOrder) -> str:
    return "B" if order.side is Side.BUY else "A"


def _remaining(order: EngineOrder) -> Decimal:
    return order.remaining if order.is_open else ZERO


def basic_order_wire(order: EngineOrder) -> dict:
    """The `openOrders` / `orderUpdates` order: coin, side, limitPx, sz (left), oid, timestamp, origSz."""
    out = {"coin": order.symbol, "side": _side(order), "limitPx": num(order.price),
           "sz": num(_remaining(order)), "oid": order.oid or 0, "timestamp": order.created_ms,
           "origSz": num(order.size)}
    if order.client_id is not None:
        out["cloid"] = order.client_id
    return out


def frontend_order_wire(order: EngineOrder) -> dict:
    """The `frontendOpenOrders` / `orderStatus` order, keys as in `http_frontend_open_orders.json`."""
    return {"coin": order.symbol, "isPositionTpsl": False, "isTrigger": False,
            "limitPx": num(order.price), "oid": order.oid or 0, "orderType": "Limit",
            "origSz": num(order.size), "reduceOnly": order.reduce_only, "side": _side(order),
            "sz": num(_remaining(order)), "timestamp": order.created_ms, "triggerCondition": "N/A",
            "triggerPx": "0.0", "tif": order.tif, "cloid": order.client_id}


def order_status_name(order: EngineOrder, override: str | None = None) -> str:
    """Hyperliquid's status word for an engine order; `override` is what the venue itself decided
    (scheduledCancel), which the engine's CANCELLED cannot tell apart."""
    if override:
        return override
    status = order.status
    if status in (OrderState.OPEN, OrderState.PARTIALLY_FILLED):
        return "open"
    if status is OrderState.FILLED:
        return "filled"
    if status is OrderState.REJECTED:
        return _REJECT_STATUS.get(order.reason, "rejected")
    if order.reduce_only and "reduce-only" in order.message:
        return "reduceOnlyCanceled"
    if order.tif == "Ioc" and order.filled == 0:
        return "iocCancelRejected"
    return "canceled"


def order_update(order: EngineOrder, status: str, time_ms: int) -> dict:
    return {"order": basic_order_wire(order), "status": status, "statusTimestamp": time_ms}


# -- parsing an order wire -------------------------------------------------------------------------
class WireError(ValueError):
    """A malformed action: the text goes back to the client as an error."""


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    asset: int
    side: Side
    price: Decimal
    size: Decimal
    reduce_only: bool
    tif: str
    cloid: str | None


def parse_cloid(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CLOID.match(value):
        raise WireError(f"Invalid cloid {value!r}: expected 0x and 32 hex digits.")
    return value.lower()


def _decimal(value, what: str) -> Decimal:
    if not isinstance(value, str):
        raise WireError(f"Order has invalid {what}.")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"Order has invalid {what}.") from None
    if not number.is_finite():
        raise WireError(f"Order has invalid {what}.")
    return number


def parse_order(wire) -> ParsedOrder:
    """An order wire `{a, b, p, s, r, t, c?}`; WireError for anything the venue cannot read."""
    if not isinstance(wire, dict):
        raise WireError("Invalid order wire.")
    asset, is_buy, kind = wire.get("a"), wire.get("b"), wire.get("t")
    if not isinstance(asset, int) or isinstance(asset, bool) or not isinstance(is_buy, bool):
        raise WireError("Invalid order wire.")
    if not isinstance(kind, dict):
        raise WireError("Invalid order type.")
    if "trigger" in kind:
        raise WireError(TEXT["Trigger"])
    tif = kind.get("limit", {}).get("tif") if isinstance(kind.get("limit"), dict) else None
    if tif not in ("Alo", "Gtc", "Ioc"):
        raise WireError("Invalid order type.")
    return ParsedOrder(asset, Side.BUY if is_buy else Side.SELL, _decimal(wire.get("p"), "price"),
                       _decimal(wire.get("s"), "size"), bool(wire.get("r", False)), tif,
                       parse_cloid(wire.get("c")))


def precheck(rules: MarketRules, order: ParsedOrder) -> str | None:
    """The wire-level refusals, in Hyperliquid's order: price, then size, then minimum value."""
    if order.price <= 0:
        return TEXT["InvalidPrice"]
    if not rules.price_is_valid(order.price):
        return TEXT["Tick"]
    if order.size == 0:
        return TEXT["ZeroSize"]
    if order.size < 0 or rules.round_size(order.size) != order.size:
        return TEXT["InvalidSize"]
    if order.price * order.size < rules.min_notional:
        return TEXT["MinTradeNtl"]
    return None


def reject_text(reason: RejectReason | None, message: str, bbo: str = "") -> str:
    """The venue's text for an engine refusal."""
    texts = {
        RejectReason.PRICE_TICK: TEXT["Tick"], RejectReason.PRICE_RANGE: TEXT["InvalidPrice"],
        RejectReason.SIZE_LOT: TEXT["InvalidSize"], RejectReason.SIZE_RANGE: TEXT["InvalidSize"],
        RejectReason.MIN_NOTIONAL: TEXT["MinTradeNtl"], RejectReason.INSUFFICIENT_FUNDS: TEXT["PerpMargin"],
        RejectReason.REDUCE_ONLY: TEXT["ReduceOnly"], RejectReason.UNKNOWN_ORDER: TEXT["MissingOrder"],
        RejectReason.DUPLICATE_CLIENT_ID: TEXT["DuplicateCloid"], RejectReason.MAX_ORDERS: TEXT["MaxOrders"],
        RejectReason.POST_ONLY_WOULD_CROSS: TEXT["BadAloPx"].format(bbo=bbo),
    }
    return texts.get(reason, message or "Order rejected.")


def error_status(text: str, asset: int) -> dict:
    return {"error": f"{text} asset={asset}"}


# -- books and candles -----------------------------------------------------------------------------
def _synthetic_size(coin: str, px: Decimal, lot: Decimal) -> tuple[Decimal, int]:
    """A stable pseudo-random depth for a synthetic level, so the same price always shows the same."""
    digest = hashlib.blake2b(f"{coin}:{px}".encode(), digest_size=4).digest()
    lots = 1 + int.from_bytes(digest[:3], "big") % 5000
    return (Decimal(lots) * lot * 10).normalize(), 1 + digest[3] % 6


def l2_levels(rules: MarketRules, mid: Decimal, ours: list[EngineOrder], depth: int = 20) -> list[list[dict]]:
    """Our resting orders aggregated, over a synthetic outside book one tick apart around the mid
    (bids < mid < asks), at most `depth` levels a side, best first."""
    tick = rules.tick_at(mid)
    lot = rules.lot_size
    bids: dict[Decimal, list] = {}
    asks: dict[Decimal, list] = {}
    best_bid = rules.round_price(mid - tick / 2, ROUND_FLOOR)
    if best_bid >= mid:
        best_bid = rules.round_price(mid - tick, ROUND_FLOOR)
    best_ask = rules.round_price(mid + tick / 2, ROUND_CEILING)
    if best_ask <= mid:
        best_ask = rules.round_price(mid + tick, ROUND_CEILING)
    for k in range(depth):
        for book, px in ((bids, best_bid - tick * k), (asks, best_ask + tick * k)):
            if px > 0:
                book[px] = list(_synthetic_size(rules.symbol, px, lot))
    for order in ours:
        book = bids if order.side is Side.BUY else asks
        level = book.setdefault(order.price, [ZERO, 0])
        level[0] += order.remaining
        level[1] += 1
    out = []
    for book, reverse in ((bids, True), (asks, False)):
        prices = sorted(book, reverse=reverse)[:depth]
        out.append([{"px": num(px), "sz": num(book[px][0]), "n": book[px][1]} for px in prices])
    return out


def candle_wire(coin: str, interval: str, t: int, minutes: int, o: Decimal, h: Decimal, low: Decimal,
                c: Decimal, v: Decimal, n: int) -> dict:
    return {"t": t, "T": t + minutes * 60_000 - 1, "s": coin, "i": interval, "o": num(o), "c": num(c),
            "h": num(h), "l": num(low), "v": num(v), "n": n}
