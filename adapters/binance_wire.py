"""Binance spot payloads in, gridbot reports out: pure functions (the adapter arrives with issue 7).

Market rules come from exchangeInfo's filters: PRICE_FILTER (tick, min/max price), LOT_SIZE (step,
min/max quantity), NOTIONAL or the legacy MIN_NOTIONAL (either may be present), MAX_NUM_ORDERS. A
symbol listed without a filter falls back to its precision fields, so an order is still rounded to
what the venue can represent.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from messages.types import ZERO, MarketRules

__all__ = ["BinanceWireError", "rules_from_exchange_info", "rate_limits"]


class BinanceWireError(ValueError):
    """A payload without the shape Binance documents."""


def _dec(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BinanceWireError(f"{what}: not a number: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise BinanceWireError(f"{what}: not a finite non-negative number: {value!r}")
    return number


def _positive_or_none(value: Decimal) -> Decimal | None:
    """Binance writes 0 for 'no limit' (maxPrice 0, maxNotional 0 ...)."""
    return value if value > 0 else None


def _symbol(info: Any, symbol: str) -> dict:
    if not isinstance(info, dict) or not isinstance(info.get("symbols"), list):
        raise BinanceWireError("exchangeInfo: no symbols list")
    for entry in info["symbols"]:
        if isinstance(entry, dict) and entry.get("symbol") == symbol:
            return entry
    raise BinanceWireError(f"{symbol} is not listed in exchangeInfo")


def rules_from_exchange_info(info: Any, symbol: str) -> MarketRules:
    entry = _symbol(info, symbol)
    filters = {f.get("filterType"): f for f in entry.get("filters", []) if isinstance(f, dict)}
    base, quote = entry.get("baseAsset"), entry.get("quoteAsset")
    if not base or not quote:
        raise BinanceWireError(f"{symbol}: baseAsset/quoteAsset missing")
    tick = Decimal(1).scaleb(-int(entry.get("quotePrecision", entry.get("quoteAssetPrecision", 8))))
    lot = Decimal(1).scaleb(-int(entry.get("baseAssetPrecision", 8)))
    min_price = max_price = max_size = max_notional = max_orders = None
    min_size, min_notional = ZERO, ZERO
    if "PRICE_FILTER" in filters:
        f = filters["PRICE_FILTER"]
        tick = _positive_or_none(_dec(f.get("tickSize", "0"), "PRICE_FILTER.tickSize")) or tick
        min_price = _positive_or_none(_dec(f.get("minPrice", "0"), "PRICE_FILTER.minPrice"))
        max_price = _positive_or_none(_dec(f.get("maxPrice", "0"), "PRICE_FILTER.maxPrice"))
    if "LOT_SIZE" in filters:
        f = filters["LOT_SIZE"]
        lot = _positive_or_none(_dec(f.get("stepSize", "0"), "LOT_SIZE.stepSize")) or lot
        min_size = _dec(f.get("minQty", "0"), "LOT_SIZE.minQty")
        max_size = _positive_or_none(_dec(f.get("maxQty", "0"), "LOT_SIZE.maxQty"))
    if "NOTIONAL" in filters:
        f = filters["NOTIONAL"]
        min_notional = _dec(f.get("minNotional", "0"), "NOTIONAL.minNotional")
        max_notional = _positive_or_none(_dec(f.get("maxNotional", "0"), "NOTIONAL.maxNotional"))
    elif "MIN_NOTIONAL" in filters:
        min_notional = _dec(filters["MIN_NOTIONAL"].get("minNotional", "0"), "MIN_NOTIONAL.minNotional")
    if "MAX_NUM_ORDERS" in filters:
        raw = filters["MAX_NUM_ORDERS"].get("maxNumOrders", filters["MAX_NUM_ORDERS"].get("limit"))
        max_orders = int(raw) if raw is not None else None
    return MarketRules(symbol=symbol, base_asset=base, quote_asset=quote, lot_size=lot.normalize(),
                       min_size=min_size, max_size=max_size, tick_size=tick.normalize(),
                       min_price=min_price, max_price=max_price, min_notional=min_notional,
                       max_notional=max_notional, max_orders=max_orders)


def rate_limits(info: Any) -> list[tuple[str, str, int, int]]:
    """(rateLimitType, interval, intervalNum, limit) for each of exchangeInfo's rateLimits."""
    return [(r["rateLimitType"], r["interval"], int(r["intervalNum"]), int(r["limit"]))
            for r in (info.get("rateLimits") or []) if isinstance(r, dict)]
