"""POST /info: the read-only queries, answered in the real API's shapes (see shared/fixtures)."""
from __future__ import annotations

from decimal import Decimal

from messages.types import ZERO
from sim.hyperliquid import protocol as P
from sim.hyperliquid.exchange import DESERIALIZE, BadRequest
from sim.hyperliquid.venue import HISTORY, HlVenue
from sim.paths import intrabar_points

__all__ = ["handle_info", "clearinghouse_state", "candles"]

RECENT_FILLS = 2000
_MAX_CANDLES = 5000


def _user(body: dict) -> str:
    user = body.get("user")
    if not isinstance(user, str):
        raise BadRequest(DESERIALIZE)
    return user.lower()


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def handle_info(venue: HlVenue, body) -> object:
    """The answer to one /info body; BadRequest (HTTP 422) for an unknown type or a malformed body."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise BadRequest(DESERIALIZE)
    kind = body["type"]
    engine = venue.engine
    if kind == "meta":
        return P.meta(venue.settings.markets)
    if kind == "spotMeta":
        return P.spot_meta()
    if kind == "allMids":
        return venue.mids()
    if kind == "clearinghouseState":
        return clearinghouse_state(venue, _user(body))
    if kind == "openOrders":
        return [P.basic_order_wire(o) for o in reversed(engine.open_orders(_user(body)))]
    if kind == "frontendOpenOrders":
        return [P.frontend_order_wire(o) for o in reversed(engine.open_orders(_user(body)))]
    if kind == "userFills":
        fills = engine.fills(_user(body))[-RECENT_FILLS:]
        return [P.fill_wire(f) for f in reversed(fills)]
    if kind == "userFillsByTime":
        return _fills_by_time(venue, body)
    if kind == "orderStatus":
        return _order_status(venue, body)
    if kind == "l2Book":
        coin = body.get("coin")
        if not isinstance(coin, str) or coin not in venue.rules:
            return None
        levels = P.l2_levels(venue.rules[coin], engine.mid(coin),
                             [o for u in venue.users for o in engine.open_orders(u, coin)])
        return {"coin": coin, "time": venue.now(), "levels": levels}
    if kind == "candleSnapshot":
        req = body.get("req")
        if not isinstance(req, dict) or not _int(req.get("startTime")) or not isinstance(req.get("coin"), str):
            raise BadRequest(DESERIALIZE)
        end = req.get("endTime")
        return candles(venue, req.get("coin"), req.get("interval"), req["startTime"],
                       end if _int(end) else venue.now())
    raise BadRequest(f"{DESERIALIZE}: unknown variant `{kind}`")


def _fills_by_time(venue: HlVenue, body: dict) -> list[dict]:
    """Oldest first from startTime (inclusive) to endTime (inclusive, default now), at most the page
    limit, and only among the user's HISTORY most recent fills."""
    start, end = body.get("startTime"), body.get("endTime")
    if not _int(start) or not (end is None or _int(end)):
        raise BadRequest(DESERIALIZE)
    reachable = venue.engine.fills(_user(body))[-HISTORY:]
    out = []
    for fill in reachable:
        if fill.time_ms < start or (end is not None and fill.time_ms > end):
            continue
        out.append(P.fill_wire(fill))
        if len(out) >= venue.settings.page_limit:
            break
    return out


def _order_status(venue: HlVenue, body: dict) -> dict:
    user, ref = _user(body), body.get("oid")
    if _int(ref):
        order = venue.find(user, ref)
    elif isinstance(ref, str):
        try:
            order = venue.find(user, None, P.parse_cloid(ref))
        except P.WireError:
            raise BadRequest(DESERIALIZE) from None
    else:
        raise BadRequest(DESERIALIZE)
    if order is None or order.oid is None:   # a rejected order never got an oid
        return {"status": "unknownOid"}
    return {"status": "order", "order": {"order": P.frontend_order_wire(order),
                                         "status": venue.status_of(order),
                                         "statusTimestamp": order.updated_ms or order.created_ms}}


def _summary(value: Decimal, used: Decimal, ntl: Decimal, raw: Decimal) -> dict:
    return {"accountValue": P.money(value), "totalNtlPos": P.money(ntl), "totalRawUsd": P.money(raw),
            "totalMarginUsed": P.money(used)}


def clearinghouse_state(venue: HlVenue, user: str) -> dict:
    """Cross-margin account state. Maintenance margin is half the initial margin at max leverage; the
    liquidation price is where the account value would meet it with only this position moving."""
    engine, now = venue.engine, venue.now()
    if user not in venue.users:
        zero = _summary(ZERO, ZERO, ZERO, ZERO)
        return {"assetPositions": [], "marginSummary": zero, "crossMarginSummary": dict(zero),
                "crossMaintenanceMarginUsed": "0.0", "withdrawable": "0.0", "time": now}
    account_value = engine.margin(user, "USDC").equity
    rows, used, ntl, signed_ntl, maintenance, orders_margin = [], ZERO, ZERO, ZERO, ZERO, ZERO
    for coin in venue.coins:
        leverage, cross = venue.user_leverage(user, coin)
        orders_margin += sum((o.price * o.remaining for o in engine.open_orders(user, coin)
                              if not o.reduce_only), ZERO) / leverage
        pos = engine.position(user, coin)
        if not pos.size:
            continue
        mark = engine.mid(coin)
        value = abs(pos.size) * mark
        margin = value / leverage
        rate = Decimal(1) / (2 * venue.specs[coin].max_leverage)
        used, ntl, signed_ntl, maintenance = used + margin, ntl + value, signed_ntl + pos.size * mark, \
            maintenance + value * rate
        rows.append((coin, pos, mark, value, margin, rate, leverage, cross))
    positions = []
    for coin, pos, mark, value, margin, rate, leverage, cross in rows:
        size = pos.size
        liq = (size * mark - account_value) / (size - abs(size) * rate)
        positions.append({"position": {
            "coin": coin, "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
            "entryPx": P.num(pos.entry_price), "leverage": {"type": "cross" if cross else "isolated",
                                                            "value": leverage},
            "liquidationPx": P.money(liq) if liq > 0 else None, "marginUsed": P.money(margin),
            "maxLeverage": venue.specs[coin].max_leverage, "positionValue": P.money(value),
            "returnOnEquity": P.money(pos.unrealized_pnl * leverage / (abs(size) * pos.entry_price)),
            "szi": P.num(size), "unrealizedPnl": P.money(pos.unrealized_pnl)}, "type": "oneWay"})
    summary = _summary(account_value, used, ntl, account_value - signed_ntl)
    return {"assetPositions": positions, "marginSummary": summary, "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": P.money(maintenance),
            "withdrawable": P.money(max(ZERO, account_value - used - orders_margin)), "time": now}


def candles(venue: HlVenue, coin, interval, start: int, end: int) -> list[dict]:
    """The path's 1-minute candles, re-timed so the candle being walked now is the current wall-clock
    minute (at speed > 1 history is compressed: candle i is `cursor - i` minutes ago), aggregated to
    `interval`; the current candle holds only the points walked so far."""
    if coin not in venue.paths or interval not in P.INTERVALS:
        return []
    minutes = P.INTERVALS[interval]
    path = venue.paths[coin]
    ci, pi = path.cursor
    current = ci if pi > 0 else ci - 1
    if current < 0:
        return []
    now_minute = venue.now() // 60_000 * 60_000
    first = max(0, current - (now_minute - start) // 60_000, current - _MAX_CANDLES * minutes)
    last = current - max(0, (now_minute - end) // 60_000)
    out: list[dict] = []
    for index in range(first, last + 1):
        candle = path.source[index]
        o, h, low, c, v, n = candle.open, candle.high, candle.low, candle.close, candle.volume, 4
        if index == ci:
            points = intrabar_points(candle, path.interval_ms)[:pi]
            prices = [p for _, p in points]
            h, low, c, n = max(prices), min(prices), prices[-1], len(points)
            v = (v * len(points) / 4).quantize(Decimal("0.0001"))
        t = now_minute - (current - index) * 60_000
        bucket = t // (minutes * 60_000) * minutes * 60_000
        if out and out[-1]["t"] == bucket:
            row = out[-1]
            row["c"], row["h"] = P.num(c), P.num(max(Decimal(row["h"]), h))
            row["l"], row["v"] = P.num(min(Decimal(row["l"]), low)), P.num(Decimal(row["v"]) + v)
            row["n"] += n
        else:
            out.append(P.candle_wire(coin, interval, bucket, minutes, o, h, low, c, v, n))
    return out
