"""Hyperliquid payloads in, gridbot reports out: pure functions, no SDK, no sockets.

Every parser takes the JSON the SDK returns (or a WebSocket message) and raises `WireError` on a payload
that does not have the shape it needs, so the adapter can log and drop it without losing anything else
(a malformed fill never kills the gateway). Numbers arrive as strings and become Decimal directly.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from messages.reports import BalanceReport, FillReport, OrderReport, PositionReport
from messages.types import ZERO, MarketRules, OrderState, RejectReason, Side

__all__ = [
    "WireError", "rules_from_meta", "asset_id", "parse_fill", "parse_fills", "parse_open_order",
    "parse_order_status", "parse_position", "parse_balances", "parse_mid", "parse_all_mids",
    "parse_l2_book", "parse_place_statuses", "parse_cancel_statuses", "reject_reason", "parse_ws_message",
    "parse_funding_history", "parse_recent_trades", "parse_asset_ctxs", "parse_spot_meta",
    "parse_spot_balances", "parse_perp_metas", "STATUS_STATES",
]

MIN_ORDER_VALUE = Decimal(10)
MAX_OPEN_ORDERS = 1000
PERP_DECIMALS = 6

# Every orderStatus status Hyperliquid documents, as our order states.
STATUS_STATES = {
    "open": OrderState.OPEN, "triggered": OrderState.OPEN, "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELLED, "marginCanceled": OrderState.CANCELLED,
    "scheduledCancel": OrderState.CANCELLED, "reduceOnlyCanceled": OrderState.CANCELLED,
    "selfTradeCanceled": OrderState.CANCELLED, "siblingFilledCanceled": OrderState.CANCELLED,
    "delistedCanceled": OrderState.CANCELLED, "liquidatedCanceled": OrderState.CANCELLED,
    "openInterestCapCanceled": OrderState.CANCELLED, "vaultWithdrawalCanceled": OrderState.CANCELLED,
    "rejected": OrderState.REJECTED, "tickRejected": OrderState.REJECTED,
    "minTradeNtlRejected": OrderState.REJECTED, "perpMarginRejected": OrderState.REJECTED,
    "reduceOnlyRejected": OrderState.REJECTED, "badAloPxRejected": OrderState.REJECTED,
    "iocCancelRejected": OrderState.REJECTED, "badTriggerPxRejected": OrderState.REJECTED,
    "marketOrderNoLiquidityRejected": OrderState.REJECTED,
    "positionIncreaseAtOpenInterestCapRejected": OrderState.REJECTED,
    "positionFlipAtOpenInterestCapRejected": OrderState.REJECTED,
    "tooAggressiveAtOpenInterestCapRejected": OrderState.REJECTED,
    "openInterestIncreaseRejected": OrderState.REJECTED, "insufficientSpotBalanceRejected": OrderState.REJECTED,
    "oracleRejected": OrderState.REJECTED, "perpMaxPositionRejected": OrderState.REJECTED,
}

# The venue's error texts (fixtures/hyperliquid/exchange_error_messages.json), by their fixed prefix.
_REASONS = (
    ("Price must be divisible by tick size", RejectReason.PRICE_TICK),
    ("Order must have minimum value", RejectReason.MIN_NOTIONAL),
    ("Insufficient margin", RejectReason.INSUFFICIENT_FUNDS),
    ("(Spot-only) Order has insufficient spot balance", RejectReason.INSUFFICIENT_FUNDS),
    ("Reduce only order would increase position", RejectReason.REDUCE_ONLY),
    ("Post only order would have immediately matched", RejectReason.POST_ONLY_WOULD_CROSS),
    ("Order has invalid size", RejectReason.SIZE_LOT),
    ("Order was never placed, already canceled, or filled", RejectReason.UNKNOWN_ORDER),
    ("Too many open orders", RejectReason.MAX_ORDERS),
    ("Duplicate", RejectReason.DUPLICATE_CLIENT_ID),
)


class WireError(ValueError):
    """A payload without the shape Hyperliquid documents."""


def _dec(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WireError(f"{what}: expected a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"{what}: not a number: {value!r}") from None
    if not number.is_finite():
        raise WireError(f"{what}: not finite: {value!r}")
    return number


def _get(data: Any, key: str, what: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise WireError(f"{what}: missing {key!r}")
    return data[key]


def _side(code: Any) -> Side:
    if code == "B":
        return Side.BUY
    if code == "A":
        return Side.SELL
    raise WireError(f"side must be 'B' or 'A', got {code!r}")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"{what}: expected an integer, got {value!r}")
    return value


# -- market rules ------------------------------------------------------------------------------
def _universe(meta: Any) -> list:
    universe = _get(meta, "universe", "meta")
    if not isinstance(universe, list):
        raise WireError("meta.universe is not a list")
    return universe


def asset_id(meta: Any, coin: str) -> int:
    """A perp's asset id is its index in meta's universe."""
    for index, entry in enumerate(_universe(meta)):
        if isinstance(entry, dict) and entry.get("name") == coin:
            return index
    raise WireError(f"{coin} is not listed in meta")


def rules_from_meta(meta: Any, coin: str) -> MarketRules:
    """5 significant figures, at most 6 - szDecimals price decimals, szDecimals lots, $10 minimum."""
    entry = _universe(meta)[asset_id(meta, coin)]
    sz_decimals = _int(_get(entry, "szDecimals", coin), f"{coin}.szDecimals")
    if not 0 <= sz_decimals <= PERP_DECIMALS:
        raise WireError(f"{coin}.szDecimals out of range: {sz_decimals}")
    lot = Decimal(1).scaleb(-sz_decimals)
    return MarketRules(symbol=coin, base_asset=coin, quote_asset="USDC", lot_size=lot, min_size=lot,
                       sig_figs=5, max_price_decimals=PERP_DECIMALS - sz_decimals,
                       min_notional=MIN_ORDER_VALUE, max_orders=MAX_OPEN_ORDERS)


def parse_perp_metas(data: Any) -> list[list[str]]:
    """allPerpMetas: one meta per perp dex; returns each dex's coin names."""
    if not isinstance(data, list):
        raise WireError("allPerpMetas is not a list")
    return [[_get(e, "name", "universe entry") for e in _universe(meta)] for meta in data]


def parse_spot_meta(data: Any) -> dict[int, str]:
    """spotMeta: token index -> name (the SDK needs at least USDC)."""
    tokens = _get(data, "tokens", "spotMeta")
    return {_int(_get(t, "index", "token"), "token.index"): _get(t, "name", "token") for t in tokens}


# -- fills -------------------------------------------------------------------------------------
def parse_fill(data: Any) -> FillReport:
    """One fill. `tid` is the dedup key; `crossed` means we took liquidity."""
    what = "fill"
    tid = _get(data, "tid", what)
    if isinstance(tid, bool) or not isinstance(tid, (int, str)) or str(tid) == "":
        raise WireError(f"fill.tid: expected an id, got {tid!r}")
    cloid = data.get("cloid")
    oid = data.get("oid")
    return FillReport(
        trade_id=str(tid), symbol=str(_get(data, "coin", what)), side=_side(_get(data, "side", what)),
        price=_dec(_get(data, "px", what), "fill.px"), size=_dec(_get(data, "sz", what), "fill.sz"),
        fee=_dec(data.get("fee", "0"), "fill.fee"), fee_asset=str(data.get("feeToken") or "USDC"),
        time_ms=_int(_get(data, "time", what), "fill.time"),
        client_id=cloid if isinstance(cloid, str) else None,
        exchange_order_id=None if oid is None else str(oid), maker=not bool(data.get("crossed", False)))


def parse_fills(items: Any, coin: str | None = None) -> tuple[list[FillReport], list[str]]:
    """Fills (for `coin` only when given) and one problem line per malformed entry, which is skipped."""
    if not isinstance(items, list):
        raise WireError(f"fills: expected a list, got {type(items).__name__}")
    fills, problems = [], []
    for item in items:
        try:
            fill = parse_fill(item)
        except WireError as exc:
            problems.append(f"{exc}: {item!r}"[:300])
            continue
        if coin is None or fill.symbol == coin:
            fills.append(fill)
    return fills, problems


# -- orders ------------------------------------------------------------------------------------
def parse_open_order(data: Any, state: OrderState | None = None) -> OrderReport:
    """An openOrders/frontendOpenOrders entry (also the `order` inside orderStatus)."""
    what = "order"
    size = _dec(data.get("origSz", _get(data, "sz", what)), "order.origSz")
    remaining = _dec(_get(data, "sz", what), "order.sz")
    filled = size - remaining
    if state is None:
        state = OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.OPEN
    cloid = data.get("cloid")
    return OrderReport(client_id=cloid if isinstance(cloid, str) else None,
                       exchange_order_id=str(_get(data, "oid", what)), symbol=str(_get(data, "coin", what)),
                       side=_side(_get(data, "side", what)), price=_dec(_get(data, "limitPx", what), "order.limitPx"),
                       size=size, filled=filled, state=state, reduce_only=bool(data.get("reduceOnly", False)),
                       time_ms=_int(data.get("timestamp", 0), "order.timestamp"))


def parse_order_status(data: Any) -> OrderReport | None:
    """orderStatus: None for `unknownOid` (the exchange never heard of it)."""
    status = _get(data, "status", "orderStatus")
    if status == "unknownOid":
        return None
    if status != "order":
        raise WireError(f"orderStatus: unexpected status {status!r}")
    wrapper = _get(data, "order", "orderStatus")
    venue_status = _get(wrapper, "status", "orderStatus.order")
    state = STATUS_STATES.get(venue_status)
    if state is None:
        raise WireError(f"orderStatus: unknown order status {venue_status!r}")
    report = parse_open_order(_get(wrapper, "order", "orderStatus.order"))
    if state is OrderState.OPEN:
        state = report.state
    elif state is OrderState.FILLED:
        return OrderReport(report.client_id, report.exchange_order_id, report.symbol, report.side,
                           report.price, report.size, report.size, state, report.reduce_only, report.time_ms)
    return OrderReport(report.client_id, report.exchange_order_id, report.symbol, report.side, report.price,
                       report.size, report.filled, state, report.reduce_only, report.time_ms)


# -- account -----------------------------------------------------------------------------------
def parse_position(state: Any, coin: str) -> PositionReport:
    """clearinghouseState's signed size (szi) for the coin; flat when it has no entry."""
    for entry in _get(state, "assetPositions", "clearinghouseState"):
        position = _get(entry, "position", "assetPositions[]")
        if _get(position, "coin", "position") == coin:
            entry_px = position.get("entryPx")
            return PositionReport(coin, _dec(_get(position, "szi", "position"), "position.szi"),
                                  ZERO if entry_px is None else _dec(entry_px, "position.entryPx"),
                                  _dec(position.get("unrealizedPnl", "0"), "position.unrealizedPnl"))
    return PositionReport(coin)


def parse_balances(state: Any) -> list[BalanceReport]:
    """USDC: free = withdrawable, locked = margin in use (marginSummary, else crossMarginSummary)."""
    summary = state.get("marginSummary") if isinstance(state, dict) else None
    if summary is None:
        summary = _get(state, "crossMarginSummary", "clearinghouseState")
    used = _dec(summary.get("totalMarginUsed", "0"), "totalMarginUsed")
    return [BalanceReport("USDC", _dec(_get(state, "withdrawable", "clearinghouseState"), "withdrawable"), used)]


def parse_spot_balances(state: Any) -> list[BalanceReport]:
    """spotClearinghouseState: free = total - hold."""
    out = []
    for b in _get(state, "balances", "spotClearinghouseState"):
        total, hold = _dec(_get(b, "total", "balance"), "total"), _dec(_get(b, "hold", "balance"), "hold")
        out.append(BalanceReport(str(_get(b, "coin", "balance")), total - hold, hold))
    return out


# -- market data -------------------------------------------------------------------------------
def parse_all_mids(data: Any) -> dict[str, Decimal]:
    if not isinstance(data, dict):
        raise WireError("allMids is not an object")
    return {coin: _dec(px, f"mid {coin}") for coin, px in data.items()}


def parse_mid(data: Any, coin: str) -> Decimal | None:
    mids = parse_all_mids(data)
    return mids.get(coin)


def parse_l2_book(data: Any) -> tuple[Decimal | None, Decimal | None]:
    """Best bid and best ask of an l2Book payload (either may be missing on an empty side)."""
    levels = _get(data, "levels", "l2Book")
    if not isinstance(levels, list) or len(levels) != 2:
        raise WireError("l2Book.levels must be [bids, asks]")
    bids, asks = levels
    best_bid = _dec(_get(bids[0], "px", "bid"), "bid.px") if bids else None
    best_ask = _dec(_get(asks[0], "px", "ask"), "ask.px") if asks else None
    for level in list(bids) + list(asks):
        _dec(_get(level, "sz", "level"), "level.sz")
    return best_bid, best_ask


def parse_funding_history(data: Any) -> list[tuple[int, Decimal]]:
    if not isinstance(data, list):
        raise WireError("fundingHistory is not a list")
    return [(_int(_get(e, "time", "funding"), "funding.time"), _dec(_get(e, "fundingRate", "funding"), "fundingRate"))
            for e in data]


def parse_recent_trades(data: Any) -> list[tuple[int, Side, Decimal, Decimal]]:
    if not isinstance(data, list):
        raise WireError("recentTrades is not a list")
    return [(_int(_get(t, "tid", "trade"), "trade.tid"), _side(_get(t, "side", "trade")),
             _dec(_get(t, "px", "trade"), "trade.px"), _dec(_get(t, "sz", "trade"), "trade.sz")) for t in data]


def parse_asset_ctxs(message: Any) -> dict[str, list[Decimal]]:
    """allDexsAssetCtxs: each dex's mark prices, in universe order."""
    ctxs = _get(_get(message, "data", "allDexsAssetCtxs"), "ctxs", "allDexsAssetCtxs.data")
    return {dex: [_dec(_get(c, "markPx", "ctx"), "markPx") for c in entries] for dex, entries in ctxs}


# -- /exchange answers -------------------------------------------------------------------------
def reject_reason(text: str) -> RejectReason:
    for prefix, reason in _REASONS:
        if text.startswith(prefix):
            return reason
    return RejectReason.OTHER


def _statuses(response: Any, kind: str) -> list:
    if not isinstance(response, dict):
        raise WireError(f"{kind}: answer is not an object: {response!r}")
    if response.get("status") != "ok":
        raise WireError(f"{kind}: {response.get('response', response)!r}")
    data = _get(_get(response, "response", kind), "data", kind)
    statuses = _get(data, "statuses", kind)
    if not isinstance(statuses, list):
        raise WireError(f"{kind}: statuses is not a list")
    return statuses


def parse_place_statuses(response: Any, count: int) -> list[tuple[str, Any]]:
    """One (kind, detail) per order: ("resting", oid), ("filled", oid) or ("error", text)."""
    statuses = _statuses(response, "order")
    if len(statuses) != count:
        raise WireError(f"order: {len(statuses)} statuses for {count} orders")
    out = []
    for status in statuses:
        if isinstance(status, dict) and "resting" in status:
            out.append(("resting", str(_get(status["resting"], "oid", "resting"))))
        elif isinstance(status, dict) and "filled" in status:
            out.append(("filled", str(_get(status["filled"], "oid", "filled"))))
        elif isinstance(status, dict) and "error" in status:
            out.append(("error", str(status["error"])))
        else:
            raise WireError(f"order: unexpected status {status!r}")
    return out


def parse_cancel_statuses(response: Any, count: int) -> list[str | None]:
    """None for "success", else the error text."""
    statuses = _statuses(response, "cancel")
    if len(statuses) != count:
        raise WireError(f"cancel: {len(statuses)} statuses for {count} cancels")
    out: list[str | None] = []
    for status in statuses:
        if status == "success":
            out.append(None)
        elif isinstance(status, dict) and "error" in status:
            out.append(str(status["error"]))
        else:
            raise WireError(f"cancel: unexpected status {status!r}")
    return out


# -- WebSocket ---------------------------------------------------------------------------------
def parse_ws_message(message: Any, coin: str) -> tuple[str, Any, list[str]]:
    """(kind, payload, problems): ("fills", [FillReport], ..) from userFills or the `user` channel,
    ("mid", Decimal | None) from allMids, ("other", None) for anything else."""
    channel = _get(message, "channel", "ws message")
    data = message.get("data")
    if channel == "userFills" or (channel == "user" and isinstance(data, dict) and "fills" in data):
        fills, problems = parse_fills(_get(data, "fills", channel), coin)
        return "fills", fills, problems
    if channel == "allMids":
        return "mid", parse_mid(_get(data, "mids", "allMids"), coin), []
    return "other", None, []
