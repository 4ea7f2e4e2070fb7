"""The REST endpoints under /api/v3: parameter rules per endpoint, weights, and the venue calls.

`ENDPOINTS` maps (method, path) to an `Endpoint`: the handler `(venue, params, account, now) -> JSON`,
its request weight (a number, or a function of the params where Binance varies it), whether it is
SIGNED, and whether it places orders (those answers carry the X-MBX-ORDER-COUNT headers).
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Callable

from messages.types import ZERO, Side
from sim.binance import market as M
from sim.binance import protocol as P
from sim.binance.lists import OcoOrder
from sim.binance.orders import MAX_ALGO_ORDERS, NewOrder
from sim.binance.params import ApiError, Params

__all__ = ["Endpoint", "ENDPOINTS"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Endpoint:
    handler: Callable
    weight: int | Callable[[Params], int]
    signed: bool = False
    orders: bool = False


ENDPOINTS: dict[tuple[str, str], Endpoint] = {}


def endpoint(method: str, path: str, weight, signed: bool = False, orders: bool = False):
    def register(handler):
        ENDPOINTS[(method, path)] = Endpoint(handler, weight, signed, orders)
        return handler
    return register


# -- parameters --------------------------------------------------------------------------------------
def _symbol(venue, params: Params, required: bool = True) -> str | None:
    symbol = params.str("symbol", required)
    if symbol is not None and symbol not in venue.symbols:
        raise ApiError(-1121, "Invalid symbol.")
    return symbol


def _limit(params: Params, default: int, most: int) -> int:
    limit = params.int("limit", default=default)
    if not 1 <= limit <= most:
        raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _side(params: Params, name: str = "side") -> Side:
    text = params.enum(name, ("BUY", "SELL"), -1117, "Invalid side.")
    return Side.BUY if text == "BUY" else Side.SELL


def _order_ref(params: Params, oid_name: str = "orderId", cid_name: str = "origClientOrderId"):
    oid, cid = params.int(oid_name), params.str(cid_name)
    if oid is None and cid is None:
        raise ApiError(-1102, f"Param '{cid_name}' or '{oid_name}' must be sent, but both were empty/null!")
    return oid, cid


def parse_new_order(venue, params: Params) -> NewOrder:
    """POST /api/v3/order's parameters by type, with Binance's errors for what is missing or extra."""
    symbol, side = _symbol(venue, params), _side(params)
    kind = params.enum("type", P.ORDER_TYPES, -1116, "Invalid orderType.")
    cid = params.client_id("newClientOrderId")
    resp = params.enum("newOrderRespType", ("ACK", "RESULT", "FULL"), -1100,
                       "Illegal characters found in parameter 'newOrderRespType'.", required=False)
    tif, price, stop, quote_qty = "GTC", None, None, None
    if kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        tif = params.enum("timeInForce", ("GTC", "IOC", "FOK"), -1115, "Invalid timeInForce.")
        price = params.decimal("price", True)
    else:
        params.not_sent("timeInForce")
        if kind == "LIMIT_MAKER":
            price = params.decimal("price", True)
        else:
            params.not_sent("price")
    if kind in P.STOP_TYPES:
        stop = params.decimal("stopPrice", True)
    else:
        params.not_sent("stopPrice")
    qty = params.decimal("quantity", kind != "MARKET")
    if kind == "MARKET":
        quote_qty = params.decimal("quoteOrderQty")
        if qty is None and quote_qty is None:
            raise ApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        if qty is not None and quote_qty is not None:
            raise ApiError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    else:
        params.not_sent("quoteOrderQty")
    return NewOrder(symbol, side, kind, tif, qty, price or ZERO, quote_qty or ZERO, stop or ZERO, cid, resp)


# -- general and market data -----------------------------------------------------------------------
@endpoint("GET", "ping", 1)
def ping(venue, params, account, now):
    return {}


@endpoint("GET", "time", 1)
def server_time(venue, params, account, now):
    return {"serverTime": now}


@endpoint("GET", "exchangeInfo", 20)
def exchange_info(venue, params, account, now):
    wanted = venue.symbols
    if "symbol" in params:
        wanted = [_symbol(venue, params)]
    elif "symbols" in params:
        try:
            wanted = json.loads(params.str("symbols"))
        except ValueError:
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(wanted, list) or any(s not in venue.symbols for s in wanted):
            raise ApiError(-1121, "Invalid symbol.")
    limits = P.rate_limits(venue.limits.weight_1m, venue.limits.orders_10s, venue.limits.orders_1d)
    return P.exchange_info([venue.engine.rules(s) for s in wanted], now, limits, MAX_ALGO_ORDERS)


def _per_symbol(weight_one: int, weight_all: int):
    return lambda params: weight_one if "symbol" in params else weight_all


@endpoint("GET", "ticker/price", _per_symbol(2, 4))
def ticker_price(venue, params, account, now):
    symbol = _symbol(venue, params, required=False)
    return M.ticker_price(venue, symbol) if symbol else [M.ticker_price(venue, s) for s in venue.symbols]


@endpoint("GET", "ticker/bookTicker", _per_symbol(2, 4))
def book_ticker(venue, params, account, now):
    symbol = _symbol(venue, params, required=False)
    return M.book_ticker(venue, symbol) if symbol else [M.book_ticker(venue, s) for s in venue.symbols]


@endpoint("GET", "avgPrice", 2)
def avg_price(venue, params, account, now):
    return {"mins": 5, "price": P.d8(venue.engine.mid(_symbol(venue, params))), "closeTime": now}


def _depth_weight(params: Params) -> int:
    limit = int(params.str("limit") or 100) if (params.str("limit") or "100").isdigit() else 1
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


@endpoint("GET", "depth", _depth_weight)
def depth(venue, params, account, now):
    symbol, limit = _symbol(venue, params), _limit(params, 100, 5000)
    bids, asks = M.book(venue, symbol, limit)
    return {"lastUpdateId": venue.book_seq, "bids": bids, "asks": asks}


@endpoint("GET", "klines", 2)
def klines(venue, params, account, now):
    symbol = _symbol(venue, params)
    interval = params.str("interval", True)
    if interval not in M.INTERVALS:
        raise ApiError(-1120, "Invalid interval.")
    return M.klines(venue, symbol, interval, params.int("startTime"), params.int("endTime"),
                    _limit(params, 500, 1000))


# -- account -----------------------------------------------------------------------------------------
@endpoint("GET", "account", 20, signed=True)
def account_info(venue, params, account, now):
    omit = params.str("omitZeroBalances") == "true"
    balances = [{"asset": b.asset, "free": P.d8(b.free), "locked": P.d8(b.locked)}
                for b in sorted(venue.engine.balances(account).values(), key=lambda b: b.asset)
                if not (omit and b.free == 0 and b.locked == 0)]
    rate = P.d8(P.FEE_RATE)
    return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": P.d8(0), "seller": P.d8(0)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"],
            "uid": zlib.crc32(account.encode()) % 900_000_000 + 100_000_000}


@endpoint("GET", "myTrades", lambda p: 5 if "orderId" in p else 20, signed=True)
def my_trades(venue, params, account, now):
    """fromId (inclusive) pages by trade id; startTime/endTime span at most 24 h; default: the latest."""
    symbol, limit = _symbol(venue, params), _limit(params, 500, 1000)
    oid, start, end, from_id = (params.int("orderId"), params.int("startTime"), params.int("endTime"),
                                params.int("fromId"))
    if from_id is not None and (start is not None or end is not None):
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    if start is not None and end is not None and end - start > DAY_MS:
        raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
    fills = [f for f in venue.engine.fills(account) if f.symbol == symbol and (oid is None or f.oid == oid)]
    if from_id is not None:
        fills = sorted((f for f in fills if f.trade_id >= from_id), key=lambda f: f.trade_id)[:limit]
    elif start is not None or end is not None:
        lo = start if start is not None else end - DAY_MS
        hi = end if end is not None else start + DAY_MS
        fills = [f for f in fills if lo <= f.time_ms <= hi][:limit]
    else:
        fills = fills[-limit:]
    return [P.trade_wire(f, venue.infos[f.oid].list_id if f.oid in venue.infos else -1) for f in fills]


# -- orders ------------------------------------------------------------------------------------------
@endpoint("POST", "order", 1, signed=True, orders=True)
def new_order(venue, params, account, now):
    return venue.place(account, parse_new_order(venue, params), now)


@endpoint("DELETE", "order", 1, signed=True)
def cancel_order(venue, params, account, now):
    symbol = _symbol(venue, params)
    oid, cid = _order_ref(params)
    return venue.cancel(account, symbol, oid, cid, params.client_id("newClientOrderId"), now)


@endpoint("GET", "order", 4, signed=True)
def query_order(venue, params, account, now):
    symbol = _symbol(venue, params)
    oid, cid = _order_ref(params)
    info = venue.find(account, symbol, oid, cid)
    if info is None:
        raise ApiError(-2013, "Order does not exist.")
    return P.query_order(info, venue.record(info))


@endpoint("GET", "openOrders", _per_symbol(6, 80), signed=True)
def open_orders(venue, params, account, now):
    symbol = _symbol(venue, params, required=False)
    infos = sorted((i for i in venue.infos.values() if i.account == account
                    and (symbol is None or i.symbol == symbol) and venue.is_open(i)), key=lambda i: i.oid)
    return [P.query_order(i, venue.record(i)) for i in infos]


@endpoint("DELETE", "openOrders", 1, signed=True)
def cancel_open_orders(venue, params, account, now):
    return venue.cancel_all(account, _symbol(venue, params), now)


@endpoint("GET", "allOrders", 20, signed=True)
def all_orders(venue, params, account, now):
    symbol, limit = _symbol(venue, params), _limit(params, 500, 1000)
    oid, start, end = params.int("orderId"), params.int("startTime"), params.int("endTime")
    infos = sorted((i for i in venue.infos.values() if i.account == account and i.symbol == symbol),
                   key=lambda i: i.oid)
    if oid is not None:
        infos = [i for i in infos if i.oid >= oid][:limit]
    elif start is not None or end is not None:
        infos = [i for i in infos if (start is None or i.created_ms >= start)
                 and (end is None or i.created_ms <= end)][:limit]
    else:
        infos = infos[-limit:]
    return [P.query_order(i, venue.record(i)) for i in infos]


@endpoint("POST", "order/cancelReplace", 1, signed=True, orders=True)
def cancel_replace(venue, params, account, now):
    mode = params.enum("cancelReplaceMode", ("STOP_ON_FAILURE", "ALLOW_FAILURE"), -1100,
                       "Illegal characters found in parameter 'cancelReplaceMode'.")
    new = parse_new_order(venue, params)
    oid, cid = _order_ref(params, "cancelOrderId", "cancelOrigClientOrderId")
    return venue.cancel_replace(account, mode, oid, cid, params.client_id("cancelNewClientOrderId"), new, now)


def _leg(venue, params: Params, symbol: str, side: Side, where: str) -> NewOrder:
    kind = params.enum(f"{where}Type", P.ORDER_TYPES, -1116, "Invalid orderType.")
    price = params.decimal(f"{where}Price", kind.endswith("LIMIT") or kind == "LIMIT_MAKER")
    stop = params.decimal(f"{where}StopPrice", kind in P.STOP_TYPES)
    tif = (params.enum(f"{where}TimeInForce", ("GTC", "IOC", "FOK"), -1115, "Invalid timeInForce.")
           if kind.endswith("_LIMIT") else "GTC")
    return NewOrder(symbol, side, kind, tif, None, price or ZERO, stop=stop or ZERO,
                    client_id=params.client_id(f"{where}ClientOrderId"))


@endpoint("POST", "orderList/oco", 1, signed=True, orders=True)
def new_oco(venue, params, account, now):
    symbol, side = _symbol(venue, params), _side(params)
    qty = params.decimal("quantity", True)
    oco = OcoOrder(symbol, side, qty, _leg(venue, params, symbol, side, "above"),
                   _leg(venue, params, symbol, side, "below"), params.client_id("listClientOrderId"))
    return venue.place_oco(account, oco, now)


@endpoint("GET", "orderList", 4, signed=True)
def query_order_list(venue, params, account, now):
    lst = venue.find_list(account, *_order_ref(params, "orderListId", "origClientOrderId"))
    if lst is None:
        raise ApiError(-2013, "Order list does not exist.")
    return venue.list_wire(lst)


@endpoint("DELETE", "orderList", 1, signed=True)
def cancel_order_list(venue, params, account, now):
    symbol = _symbol(venue, params)
    list_id, list_cid = _order_ref(params, "orderListId", "listClientOrderId")
    return venue.cancel_list(account, symbol, list_id, list_cid, params.client_id("newClientOrderId"), now)


@endpoint("GET", "openOrderList", 6, signed=True)
def open_order_lists(venue, params, account, now):
    return venue.open_lists(account)
