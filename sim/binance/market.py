"""Market data as Binance serves it, over REST and the market streams: prices, the (synthetic) book,
klines re-timed from the price path. Pure reads of the venue."""
from __future__ import annotations

from decimal import Decimal

from sim.binance import protocol as P
from sim.paths import intrabar_points

__all__ = ["INTERVALS", "book", "book_ticker", "book_ticker_event", "depth_event", "klines", "ticker_price"]

INTERVALS = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360,
             "8h": 480, "12h": 720, "1d": 1440, "3d": 4320, "1w": 10080}
_MINUTE = 60_000


def book(venue, symbol: str, depth: int) -> tuple[list, list]:
    orders = [o for account in venue.secrets for o in venue.engine.open_orders(account, symbol)]
    return P.book_levels(venue.engine.rules(symbol), venue.engine.mid(symbol), orders, depth)


def ticker_price(venue, symbol: str) -> dict:
    return {"symbol": symbol, "price": P.d8(venue.engine.mid(symbol))}


def book_ticker(venue, symbol: str) -> dict:
    bids, asks = book(venue, symbol, 1)
    return {"symbol": symbol, "bidPrice": bids[0][0], "bidQty": bids[0][1], "askPrice": asks[0][0],
            "askQty": asks[0][1]}


def book_ticker_event(venue, symbol: str) -> dict:
    t = book_ticker(venue, symbol)
    return {"u": venue.book_seq, "s": symbol, "b": t["bidPrice"], "B": t["bidQty"], "a": t["askPrice"],
            "A": t["askQty"]}


def depth_event(venue, symbol: str, levels: int) -> dict:
    """A partial book stream (<symbol>@depth<levels>) payload."""
    bids, asks = book(venue, symbol, levels)
    return {"lastUpdateId": venue.book_seq, "bids": bids, "asks": asks}


def klines(venue, symbol: str, interval: str, start: int | None, end: int | None, limit: int) -> list[list]:
    """The path's 1-minute candles re-timed so the candle walked now is the current wall-clock minute
    (at speed > 1 history is compressed: candle i is `cursor - i` minutes ago), aggregated to `interval`;
    the current candle holds only the points walked so far. Oldest first."""
    minutes = INTERVALS[interval]
    span = minutes * _MINUTE
    path = venue.paths[symbol]
    ci, pi = path.cursor
    current = ci if pi > 0 else ci - 1
    if current < 0:
        return []
    now_minute = venue.now() // _MINUTE * _MINUTE
    end_ms = min(end if end is not None else now_minute, now_minute)
    start_ms = start if start is not None else (end_ms // span - limit + 1) * span
    start_ms = start_ms // span * span
    first = max(0, current - (now_minute - start_ms) // _MINUTE)
    last = current - max(0, (now_minute - end_ms) // _MINUTE)
    if start is not None:
        last = min(last, first + limit * minutes)
    rows: list[list] = []
    for index in range(first, last + 1):
        candle = path.source[index]
        o, h, low, c, v, n = candle.open, candle.high, candle.low, candle.close, candle.volume, 4
        if index == ci:
            points = intrabar_points(candle, path.interval_ms)[:pi]
            prices = [p for _, p in points]
            h, low, c, n = max(prices), min(prices), prices[-1], len(points)
            v = v * len(points) / 4
        t = now_minute - (current - index) * _MINUTE
        bucket = t // span * span
        if rows and rows[-1][0] == bucket:
            row = rows[-1]
            row[2], row[3] = max(row[2], h), min(row[3], low)
            row[4], row[5], row[8] = c, row[5] + v, row[8] + n
        else:
            rows.append([bucket, o, h, low, c, v, bucket + span - 1, Decimal(0), n])
    rows = rows[:limit] if start is not None else rows[-limit:]
    return [[r[0], P.d8(r[1]), P.d8(r[2]), P.d8(r[3]), P.d8(r[4]), P.d8(r[5]), r[6],
             P.d8(r[5] * (r[2] + r[3]) / 2), r[8], P.d8(r[5] / 2), P.d8(r[5] * (r[2] + r[3]) / 4), "0"]
            for r in rows]
