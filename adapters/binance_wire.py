"""Binance spot payloads in, gridbot reports out: pure functions, no SDK, no sockets.

Every parser takes the JSON python-binance returns (or a user-data event) and raises `BinanceWireError`
on a payload without the shape it needs, so the adapter logs and drops it and nothing else is lost (a
malformed event never kills the gateway). Numbers arrive as strings and become Decimal directly.

Market rules come from exchangeInfo's filters: PRICE_FILTER (tick, min/max price), LOT_SIZE (step,
min/max quantity), NOTIONAL or the legacy MIN_NOTIONAL (either may be present), MAX_NUM_ORDERS. A
symbol listed without a filter falls back to its precision fields, so an order is still rounded to
what the venue can represent.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from messages.reports import BalanceReport, FillReport, OrderReport
from messages.types import ZERO, MarketRules, OrderState, RejectReason, Side

__all__ = [
    "BinanceWireError", "rules_from_exchange_info", "rate_limits", "ORDER_STATES", "STOP_TYPES",
    "NewOrderResult", "OrderListReport", "UserEvent", "reject_reason", "parse_order", "parse_orders",
    "parse_new_order", "parse_cancel_open_orders", "parse_order_list", "parse_my_trade", "parse_my_trades",
    "parse_account", "parse_book_ticker", "parse_book_ticker_mid", "parse_ticker_price", "parse_ticker_24hr",
    "parse_avg_price", "parse_server_time", "parse_ping", "parse_depth", "parse_klines", "parse_public_trades",
    "parse_execution_report", "parse_account_position", "parse_balance_update", "parse_list_status",
    "parse_user_event", "parse_subscriptions",
]

# Every order status Binance documents, as our order states. EXPIRED (an IOC remainder, a LIMIT_MAKER the
# venue refused after accepting, the losing leg of an OCO) and EXPIRED_IN_MATCH (self-trade prevention)
# end an order without filling the rest, which is what CANCELLED means here.
ORDER_STATES = {
    "NEW": OrderState.OPEN, "PENDING_NEW": OrderState.OPEN, "PARTIALLY_FILLED": OrderState.PARTIALLY_FILLED,
    "FILLED": OrderState.FILLED, "CANCELED": OrderState.CANCELLED, "PENDING_CANCEL": OrderState.OPEN,
    "REJECTED": OrderState.REJECTED, "EXPIRED": OrderState.CANCELLED, "EXPIRED_IN_MATCH": OrderState.CANCELLED,
}
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")

# -1013 "Filter failure: NAME" and -2010's texts, as the reason the bot acts on.
_FILTER_REASONS = {
    "PRICE_FILTER": RejectReason.PRICE_TICK, "PERCENT_PRICE": RejectReason.PRICE_RANGE,
    "PERCENT_PRICE_BY_SIDE": RejectReason.PRICE_RANGE, "LOT_SIZE": RejectReason.SIZE_LOT,
    "MARKET_LOT_SIZE": RejectReason.SIZE_LOT, "NOTIONAL": RejectReason.MIN_NOTIONAL,
    "MIN_NOTIONAL": RejectReason.MIN_NOTIONAL, "MAX_NUM_ORDERS": RejectReason.MAX_ORDERS,
    "MAX_NUM_ALGO_ORDERS": RejectReason.MAX_ORDERS, "EXCHANGE_MAX_NUM_ORDERS": RejectReason.MAX_ORDERS,
    "EXCHANGE_MAX_NUM_ALGO_ORDERS": RejectReason.MAX_ORDERS,
}
_TEXT_REASONS = (
    ("Account has insufficient balance", RejectReason.INSUFFICIENT_FUNDS),
    ("Order would immediately match and take", RejectReason.POST_ONLY_WOULD_CROSS),
    ("Duplicate order sent", RejectReason.DUPLICATE_CLIENT_ID),
    ("Unknown order sent", RejectReason.UNKNOWN_ORDER),
    ("Order does not exist", RejectReason.UNKNOWN_ORDER),
)


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
    if not isinstance(info, dict):
        raise BinanceWireError("exchangeInfo is not an object")
    out = []
    for r in info.get("rateLimits") or []:
        try:
            out.append((str(r["rateLimitType"]), str(r["interval"]), int(r["intervalNum"]), int(r["limit"])))
        except (KeyError, TypeError, ValueError):
            raise BinanceWireError(f"exchangeInfo.rateLimits: malformed entry {r!r}") from None
    return out


# -- helpers -----------------------------------------------------------------------------------------
def _get(data: Any, key: str, what: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise BinanceWireError(f"{what}: missing {key!r}")
    return data[key]


def _num(value: Any, what: str) -> Decimal:
    """A decimal string (or integer) that may be negative (balance deltas)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BinanceWireError(f"{what}: expected a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BinanceWireError(f"{what}: not a number: {value!r}") from None
    if not number.is_finite():
        raise BinanceWireError(f"{what}: not finite: {value!r}")
    return number


def _amount(value: Any, what: str) -> Decimal:
    number = _num(value, what)
    if number < 0:
        raise BinanceWireError(f"{what}: negative: {value!r}")
    return number


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BinanceWireError(f"{what}: expected an integer, got {value!r}")
    return value


def _side(value: Any, what: str) -> Side:
    if value == "BUY":
        return Side.BUY
    if value == "SELL":
        return Side.SELL
    raise BinanceWireError(f"{what}: side must be BUY or SELL, got {value!r}")


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise BinanceWireError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _state(status: Any, filled: Decimal, what: str) -> OrderState:
    state = ORDER_STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise BinanceWireError(f"{what}: unknown order status {status!r}")
    if state is OrderState.OPEN and filled > 0:
        return OrderState.PARTIALLY_FILLED
    return state


def _cid(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def reject_reason(code: int | None, message: str) -> RejectReason:
    """The reason behind a -1013 filter failure or a -2010/-2011/-2013 refusal."""
    text = message or ""
    if code == -1013 or text.startswith("Filter failure:"):
        return _FILTER_REASONS.get(text.partition(":")[2].strip(), RejectReason.OTHER)
    for prefix, reason in _TEXT_REASONS:
        if text.startswith(prefix):
            return reason
    return RejectReason.OTHER


# -- orders ------------------------------------------------------------------------------------------
def parse_order(data: Any) -> OrderReport:
    """An order as GET /api/v3/order, openOrders, allOrders, a cancel or a RESULT/FULL new-order answer
    shows it. A cancel answer's `clientOrderId` is the cancel's own id: the order's is `origClientOrderId`.
    Stop-type orders carry their stopPrice as `trigger_price` (and as price when they have none)."""
    what = "order"
    size = _amount(_get(data, "origQty", what), "order.origQty")
    filled = _amount(_get(data, "executedQty", what), "order.executedQty")
    price = _amount(_get(data, "price", what), "order.price")
    kind = data.get("type")
    trigger = None
    if kind in STOP_TYPES and data.get("stopPrice") is not None:
        trigger = _amount(data["stopPrice"], "order.stopPrice")
        if price == 0:
            price = trigger
    cid = _cid(data.get("origClientOrderId")) or _cid(data.get("clientOrderId"))
    time_ms = data.get("updateTime", data.get("transactTime", data.get("time", 0)))
    return OrderReport(client_id=cid, exchange_order_id=str(_int(_get(data, "orderId", what), "order.orderId")),
                       symbol=str(_get(data, "symbol", what)), side=_side(_get(data, "side", what), "order.side"),
                       price=price, size=size, filled=filled,
                       state=_state(_get(data, "status", what), filled, "order.status"),
                       time_ms=_int(time_ms, "order.time"), trigger_price=trigger)


def parse_orders(items: Any) -> list[OrderReport]:
    """openOrders / allOrders."""
    return [parse_order(item) for item in _list(items, "orders")]


@dataclass(frozen=True, slots=True)
class NewOrderResult:
    """POST /api/v3/order's answer: ACK carries ids only (`report` None), RESULT the order, FULL also
    the fills it made at once (taker fills: the order crossed)."""
    client_id: str | None
    exchange_order_id: str
    report: OrderReport | None
    fills: tuple[FillReport, ...] = ()

    @property
    def state(self) -> OrderState:
        return self.report.state if self.report is not None else OrderState.OPEN


def parse_new_order(data: Any) -> NewOrderResult:
    what = "new order"
    oid = str(_int(_get(data, "orderId", what), "order.orderId"))
    cid = _cid(_get(data, "clientOrderId", what))
    symbol = str(_get(data, "symbol", what))
    if "status" not in data:
        return NewOrderResult(cid, oid, None)
    report = parse_order(data)
    fills = []
    for i, row in enumerate(_list(data.get("fills", []), "new order.fills")):
        w = f"new order.fills[{i}]"
        fills.append(FillReport(
            trade_id=str(_int(_get(row, "tradeId", w), f"{w}.tradeId")), symbol=symbol, side=report.side,
            price=_amount(_get(row, "price", w), f"{w}.price"), size=_amount(_get(row, "qty", w), f"{w}.qty"),
            fee=_amount(_get(row, "commission", w), f"{w}.commission"),
            fee_asset=str(_get(row, "commissionAsset", w)),
            time_ms=_int(_get(data, "transactTime", what), "transactTime"), client_id=cid,
            exchange_order_id=oid, maker=False))
    return NewOrderResult(cid, oid, report, tuple(fills))


@dataclass(frozen=True, slots=True)
class OrderListReport:
    """An OCO (or other order list): its id, client id, status and legs as (orderId, clientOrderId)."""
    list_id: int
    client_id: str | None
    status: str
    symbol: str
    legs: tuple[tuple[str, str | None], ...]
    reports: tuple[OrderReport, ...] = ()

    @property
    def done(self) -> bool:
        return self.status == "ALL_DONE"


def parse_order_list(data: Any) -> OrderListReport:
    """POST orderList/oco, GET/DELETE orderList, openOrderList entries."""
    what = "order list"
    status = _get(data, "listOrderStatus", what)
    if status not in ("EXECUTING", "ALL_DONE", "REJECT"):
        raise BinanceWireError(f"order list: unknown listOrderStatus {status!r}")
    legs = tuple((str(_int(_get(o, "orderId", "order list leg"), "leg.orderId")), _cid(o.get("clientOrderId")))
                 for o in _list(_get(data, "orders", what), "order list.orders"))
    reports = tuple(parse_order(r) for r in _list(data.get("orderReports", []), "order list.orderReports"))
    return OrderListReport(_int(_get(data, "orderListId", what), "orderListId"),
                           _cid(data.get("listClientOrderId")), status, str(_get(data, "symbol", what)), legs,
                           reports)


def parse_cancel_open_orders(items: Any) -> list[OrderReport]:
    """DELETE /api/v3/openOrders: single orders and order lists (whose legs are in orderReports)."""
    out = []
    for item in _list(items, "cancel open orders"):
        if isinstance(item, dict) and "orderListId" in item and "orderReports" in item:
            out.extend(parse_order_list(item).reports)
        else:
            out.append(parse_order(item))
    return out


# -- fills and account ---------------------------------------------------------------------------------
def parse_my_trade(data: Any, client_id: str | None = None) -> FillReport:
    """One GET /api/v3/myTrades row. The trade `id` is the dedup key; myTrades does not say which client
    id the order had, so the adapter passes it in where it knows it."""
    what = "trade"
    is_buyer = _get(data, "isBuyer", what)
    maker = _get(data, "isMaker", what)
    if not isinstance(is_buyer, bool) or not isinstance(maker, bool):
        raise BinanceWireError(f"trade: isBuyer/isMaker must be booleans: {is_buyer!r}/{maker!r}")
    return FillReport(
        trade_id=str(_int(_get(data, "id", what), "trade.id")), symbol=str(_get(data, "symbol", what)),
        side=Side.BUY if is_buyer else Side.SELL, price=_amount(_get(data, "price", what), "trade.price"),
        size=_amount(_get(data, "qty", what), "trade.qty"),
        fee=_amount(_get(data, "commission", what), "trade.commission"),
        fee_asset=str(_get(data, "commissionAsset", what)), time_ms=_int(_get(data, "time", what), "trade.time"),
        client_id=client_id, exchange_order_id=str(_int(_get(data, "orderId", what), "trade.orderId")),
        maker=maker)


def parse_my_trades(items: Any, client_ids: dict[str, str] | None = None) -> tuple[list[FillReport], list[str]]:
    """Fills, and one problem line per malformed row (skipped). `client_ids` maps orderId -> client id."""
    fills, problems = [], []
    for item in _list(items, "myTrades"):
        try:
            oid = str(item.get("orderId")) if isinstance(item, dict) else ""
            fills.append(parse_my_trade(item, (client_ids or {}).get(oid)))
        except BinanceWireError as exc:
            problems.append(f"{exc}: {item!r}"[:300])
    return fills, problems


def parse_account(data: Any) -> list[BalanceReport]:
    """GET /api/v3/account: one report per asset (free, locked)."""
    out = []
    for i, b in enumerate(_list(_get(data, "balances", "account"), "account.balances")):
        w = f"account.balances[{i}]"
        out.append(BalanceReport(str(_get(b, "asset", w)), _amount(_get(b, "free", w), f"{w}.free"),
                                 _amount(_get(b, "locked", w), f"{w}.locked")))
    return out


# -- market data --------------------------------------------------------------------------------------
def parse_book_ticker(data: Any) -> tuple[Decimal, Decimal]:
    """Best bid and ask from REST bookTicker (bidPrice/askPrice) or the bookTicker stream (b/a)."""
    if isinstance(data, dict) and "b" in data and "a" in data:
        bid, ask = _amount(data["b"], "bookTicker.b"), _amount(data["a"], "bookTicker.a")
    else:
        bid = _amount(_get(data, "bidPrice", "bookTicker"), "bookTicker.bidPrice")
        ask = _amount(_get(data, "askPrice", "bookTicker"), "bookTicker.askPrice")
    return bid, ask


def parse_book_ticker_mid(data: Any) -> Decimal | None:
    """The mid of a book ticker; None when a side is empty (Binance writes 0)."""
    bid, ask = parse_book_ticker(data)
    if bid <= 0 or ask <= 0:
        return None
    return (bid + ask) / 2


def parse_ticker_price(data: Any) -> Decimal:
    return _amount(_get(data, "price", "ticker/price"), "ticker.price")


def parse_ticker_24hr(data: Any) -> tuple[Decimal, Decimal, Decimal]:
    """(last, high, low) of a 24 h ticker."""
    return (_amount(_get(data, "lastPrice", "ticker/24hr"), "lastPrice"),
            _amount(_get(data, "highPrice", "ticker/24hr"), "highPrice"),
            _amount(_get(data, "lowPrice", "ticker/24hr"), "lowPrice"))


def parse_avg_price(data: Any) -> Decimal:
    return _amount(_get(data, "price", "avgPrice"), "avgPrice.price")


def parse_server_time(data: Any) -> int:
    return _int(_get(data, "serverTime", "time"), "serverTime")


def parse_ping(data: Any) -> None:
    if data != {}:
        raise BinanceWireError(f"ping: expected {{}}, got {data!r}")


def _levels(rows: Any, what: str) -> list[tuple[Decimal, Decimal]]:
    out = []
    for row in _list(rows, what):
        if not isinstance(row, list) or len(row) < 2:
            raise BinanceWireError(f"{what}: a level must be [price, qty], got {row!r}")
        out.append((_amount(row[0], f"{what}.price"), _amount(row[1], f"{what}.qty")))
    return out


def parse_depth(data: Any) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    return _levels(_get(data, "bids", "depth"), "depth.bids"), _levels(_get(data, "asks", "depth"), "depth.asks")


def parse_klines(rows: Any) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """(open time, open, high, low, close, volume) per candle."""
    out = []
    for row in _list(rows, "klines"):
        if not isinstance(row, list) or len(row) < 6:
            raise BinanceWireError(f"klines: a candle has at least 6 fields, got {row!r}")
        out.append((_int(row[0], "kline.openTime"), *(_amount(v, "kline") for v in row[1:6])))
    return out


def parse_public_trades(rows: Any) -> list[tuple[int, Decimal, Decimal, int]]:
    """GET /api/v3/trades: (id, price, qty, time)."""
    return [(_int(_get(t, "id", "trade"), "trade.id"), _amount(_get(t, "price", "trade"), "trade.price"),
             _amount(_get(t, "qty", "trade"), "trade.qty"), _int(_get(t, "time", "trade"), "trade.time"))
            for t in _list(rows, "trades")]


# -- user data stream ---------------------------------------------------------------------------------
def parse_execution_report(event: Any) -> tuple[OrderReport, FillReport | None]:
    """The order as the event leaves it, and the fill when `x` is TRADE. On a cancel `c` is the cancel's
    own client id and `C` the order's: the order's id is `C` when it is set, else `c`."""
    what = "executionReport"
    x = _get(event, "x", what)
    if not isinstance(x, str):
        raise BinanceWireError(f"executionReport.x: {x!r}")
    cid = _cid(event.get("C")) or _cid(_get(event, "c", what))
    oid = str(_int(_get(event, "i", what), "executionReport.i"))
    symbol = str(_get(event, "s", what))
    side = _side(_get(event, "S", what), "executionReport.S")
    filled = _amount(_get(event, "z", what), "executionReport.z")
    price = _amount(_get(event, "p", what), "executionReport.p")
    trigger = None
    if event.get("o") in STOP_TYPES and event.get("P") is not None:
        trigger = _amount(event["P"], "executionReport.P")
        if price == 0:
            price = trigger
    report = OrderReport(cid, oid, symbol, side, price, _amount(_get(event, "q", what), "executionReport.q"),
                         filled, _state(_get(event, "X", what), filled, "executionReport.X"),
                         time_ms=_int(_get(event, "T", what), "executionReport.T"), trigger_price=trigger)
    if x != "TRADE":
        return report, None
    trade_id = _int(_get(event, "t", what), "executionReport.t")
    if trade_id < 0:
        raise BinanceWireError(f"executionReport: a TRADE without a trade id ({trade_id})")
    maker = _get(event, "m", what)
    if not isinstance(maker, bool):
        raise BinanceWireError(f"executionReport.m: expected a boolean, got {maker!r}")
    fee_asset = _get(event, "N", what)
    if not isinstance(fee_asset, str) or not fee_asset:
        raise BinanceWireError(f"executionReport.N: a trade needs its commission asset, got {fee_asset!r}")
    fill = FillReport(trade_id=str(trade_id), symbol=symbol, side=side,
                      price=_amount(_get(event, "L", what), "executionReport.L"),
                      size=_amount(_get(event, "l", what), "executionReport.l"),
                      fee=_amount(_get(event, "n", what), "executionReport.n"), fee_asset=fee_asset,
                      time_ms=report.time_ms, client_id=cid, exchange_order_id=oid, maker=maker)
    return report, fill


def parse_account_position(event: Any) -> list[BalanceReport]:
    """outboundAccountPosition: the assets this change touched, free and locked."""
    out = []
    for i, b in enumerate(_list(_get(event, "B", "outboundAccountPosition"), "outboundAccountPosition.B")):
        w = f"outboundAccountPosition.B[{i}]"
        out.append(BalanceReport(str(_get(b, "a", w)), _amount(_get(b, "f", w), f"{w}.f"),
                                 _amount(_get(b, "l", w), f"{w}.l")))
    return out


def parse_balance_update(event: Any) -> tuple[str, Decimal, int]:
    """balanceUpdate (a deposit, withdrawal or transfer): (asset, signed delta, time)."""
    return (str(_get(event, "a", "balanceUpdate")), _num(_get(event, "d", "balanceUpdate"), "balanceUpdate.d"),
            _int(_get(event, "T", "balanceUpdate"), "balanceUpdate.T"))


def parse_list_status(event: Any) -> OrderListReport:
    what = "listStatus"
    status = _get(event, "L", what)
    if status not in ("EXECUTING", "ALL_DONE", "REJECT"):
        raise BinanceWireError(f"listStatus.L: unknown list order status {status!r}")
    legs = tuple((str(_int(_get(o, "i", "listStatus leg"), "leg.i")), _cid(o.get("c")))
                 for o in _list(_get(event, "O", what), "listStatus.O"))
    return OrderListReport(_int(_get(event, "g", what), "listStatus.g"), _cid(event.get("C")), status,
                           str(_get(event, "s", what)), legs)


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One user-data event: `kind` is "fill" (payload: FillReport, order: its OrderReport), "order"
    (payload: OrderReport), "balances" (list of BalanceReport), "balance_update" ((asset, delta, time)),
    "list" (OrderListReport), "error" (python-binance's own {"e": "error"}: the connection dropped;
    payload: its text) or "other" (an event type we do not use; payload: its name)."""
    kind: str
    payload: Any
    order: OrderReport | None = None


def parse_user_event(message: Any) -> UserEvent:
    """A user-data event, bare or wrapped as the WebSocket API sends it ({"subscriptionId", "event"})."""
    if isinstance(message, dict) and "event" in message and "subscriptionId" in message:
        message = message["event"]
    kind = _get(message, "e", "user event")
    if kind == "executionReport":
        report, fill = parse_execution_report(message)
        return UserEvent("fill", fill, report) if fill is not None else UserEvent("order", report, report)
    if kind == "outboundAccountPosition":
        return UserEvent("balances", parse_account_position(message))
    if kind == "balanceUpdate":
        return UserEvent("balance_update", parse_balance_update(message))
    if kind == "listStatus":
        return UserEvent("list", parse_list_status(message))
    if kind == "error":
        return UserEvent("error", f"{message.get('type', '?')}: {message.get('m', '')}")
    return UserEvent("other", str(kind))


def parse_subscriptions(result: Any) -> list[int]:
    """session.subscriptions over the WebSocket API: the live subscription ids ([] when none)."""
    return [_int(_get(s, "subscriptionId", "subscription"), "subscriptionId")
            for s in _list(result, "session.subscriptions")]
