"""Pure translation between the simulator's records and Binance spot JSON.

No sockets, no clock, no state: every function takes what it needs, so the wire shapes are unit-tested
without a server. Shapes follow `shared/fixtures/binance/spot/` (key order included); numbers are
strings with 8 decimals, the way Binance writes them ("47000.00000000").
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from messages.types import ZERO, MarketRules, OrderState, Side
from sim.book import EngineFill, EngineOrder

__all__ = [
    "SymbolSpec", "SPECS", "market_rules", "d8", "exchange_info", "rate_limits", "OrderInfo", "OrderList",
    "order_status", "new_order_response", "query_order", "cancel_response", "list_wire", "trade_wire",
    "execution_report", "account_position", "balance_update", "list_status", "book_levels",
    "FEE_RATE", "EIGHT",
]

EIGHT = Decimal("0.00000001")
FEE_RATE = Decimal("0.001")                 # 0.1% maker and taker, the standard spot tier
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET") + STOP_TYPES


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One listed symbol; `start_price` seeds its synthetic path (January 2022 levels)."""
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    max_qty: Decimal
    start_price: Decimal
    min_notional: Decimal = Decimal(5)
    max_num_orders: int = 200


SPECS = {s.symbol: s for s in (
    SymbolSpec("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal(9000), Decimal(47000)),
    SymbolSpec("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001"), Decimal(9000), Decimal(3700)),
    SymbolSpec("BNBUSDT", "BNB", "USDT", Decimal("0.01"), Decimal("0.001"), Decimal(9000), Decimal(510)),
    SymbolSpec("SOLUSDT", "SOL", "USDT", Decimal("0.01"), Decimal("0.001"), Decimal(90000), Decimal(170)),
)}


def market_rules(spec: SymbolSpec) -> MarketRules:
    return MarketRules(symbol=spec.symbol, base_asset=spec.base, quote_asset=spec.quote, lot_size=spec.step,
                       min_size=spec.step, max_size=spec.max_qty, tick_size=spec.tick, min_price=spec.tick,
                       max_price=Decimal(1_000_000), min_notional=spec.min_notional,
                       max_notional=Decimal(9_000_000), max_orders=spec.max_num_orders)


def d8(value) -> str:
    """Binance's number strings: fixed 8 decimals."""
    return format(Decimal(value).quantize(EIGHT), "f")


def _opt(value: Decimal | None, default: str = "0") -> str:
    return d8(value if value is not None else Decimal(default))


# -- metadata --------------------------------------------------------------------------------------
def rate_limits(weight_1m: int, orders_10s: int, orders_1d: int) -> list[dict]:
    return [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_1m},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_10s},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": orders_1d},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]


def _symbol_info(rules: MarketRules, max_algo: int) -> dict:
    filters = [
        {"filterType": "PRICE_FILTER", "minPrice": _opt(rules.min_price), "maxPrice": _opt(rules.max_price),
         "tickSize": d8(rules.tick_size)},
        {"filterType": "LOT_SIZE", "minQty": d8(rules.min_size), "maxQty": _opt(rules.max_size),
         "stepSize": d8(rules.lot_size)},
        {"filterType": "NOTIONAL", "minNotional": d8(rules.min_notional), "applyMinToMarket": True,
         "maxNotional": _opt(rules.max_notional), "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": rules.max_orders},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": max_algo},
    ]
    return {"symbol": rules.symbol, "status": "TRADING", "baseAsset": rules.base_asset, "baseAssetPrecision": 8,
            "quoteAsset": rules.quote_asset, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8, "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": False, "ocoAllowed": True, "otoAllowed": False, "opoAllowed": False,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": True,
            "amendAllowed": False, "pegInstructionsAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "filters": filters, "permissions": [],
            "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"]}


def exchange_info(rules: list[MarketRules], now: int, limits: list[dict], max_algo: int) -> dict:
    return {"timezone": "UTC", "serverTime": now, "rateLimits": limits, "exchangeFilters": [],
            "symbols": [_symbol_info(r, max_algo) for r in rules], "sors": []}


# -- the venue's order records ---------------------------------------------------------------------
@dataclass(slots=True)
class OrderInfo:
    """What Binance knows of an order beyond the engine's record: its wire type and time in force, its
    stop, its list, and (`status`) the status the venue set itself: "NEW" for an untriggered stop order
    the engine has not seen, "EXPIRED"/"CANCELED" when the venue ended it."""
    oid: int
    account: str
    symbol: str
    side: Side
    type: str
    tif: str
    client_id: str
    price: Decimal
    qty: Decimal
    created_ms: int
    stop: Decimal = ZERO
    list_id: int = -1
    quote_qty: Decimal = ZERO
    working_ms: int = -1
    status: str | None = None
    trigger: str = ""                      # "above"/"below" while an untriggered stop order waits
    hold: tuple[str, str] | None = None    # (asset, amount) locked by the venue for it
    updated_ms: int = 0

    def to_list(self) -> list:
        return [self.oid, self.account, self.symbol, self.side.value, self.type, self.tif, self.client_id,
                str(self.price), str(self.qty), self.created_ms, str(self.stop), self.list_id,
                str(self.quote_qty), self.working_ms, self.status, self.trigger,
                list(self.hold) if self.hold else None, self.updated_ms]

    @classmethod
    def from_list(cls, data: list) -> "OrderInfo":
        (oid, account, symbol, side, kind, tif, cid, price, qty, created, stop, list_id, quote_qty, working,
         status, trigger, hold, updated) = data
        return cls(oid, account, symbol, Side(side), kind, tif, cid, Decimal(price), Decimal(qty), created,
                   Decimal(stop), list_id, Decimal(quote_qty), working, status, trigger,
                   tuple(hold) if hold else None, updated)


@dataclass(slots=True)
class OrderList:
    """An OCO: `oids` in Binance's order (the stop-type leg first)."""
    list_id: int
    account: str
    symbol: str
    client_id: str
    oids: list[int]
    created_ms: int
    done: bool = False
    updated_ms: int = 0

    def to_list(self) -> list:
        return [self.list_id, self.account, self.symbol, self.client_id, self.oids, self.created_ms, self.done,
                self.updated_ms]

    @classmethod
    def from_list(cls, data: list) -> "OrderList":
        return cls(*data)


_STATUS = {OrderState.OPEN: "NEW", OrderState.PARTIALLY_FILLED: "PARTIALLY_FILLED",
           OrderState.FILLED: "FILLED", OrderState.CANCELLED: "CANCELED", OrderState.REJECTED: "REJECTED"}


def order_status(info: OrderInfo, order: EngineOrder | None) -> str:
    if order is None:
        return info.status or "NEW"
    if order.status is OrderState.CANCELLED and info.status:
        return info.status
    return _STATUS.get(order.status, "NEW")


def _amounts(order: EngineOrder | None) -> tuple[Decimal, Decimal]:
    return (order.filled, order.filled_notional) if order is not None else (ZERO, ZERO)


def _core(info: OrderInfo, order: EngineOrder | None) -> dict:
    filled, notional = _amounts(order)
    out = {"price": d8(info.price), "origQty": d8(info.qty), "executedQty": d8(filled),
           "origQuoteOrderQty": d8(info.quote_qty), "cummulativeQuoteQty": d8(notional),
           "status": order_status(info, order), "timeInForce": info.tif, "type": info.type,
           "side": info.side.name}
    if info.type in STOP_TYPES:
        out["stopPrice"] = d8(info.stop)
    return out


def fill_wire(fill: EngineFill) -> dict:
    return {"price": d8(fill.price), "qty": d8(fill.size), "commission": d8(fill.fee),
            "commissionAsset": fill.fee_asset, "tradeId": fill.trade_id}


def new_order_response(info: OrderInfo, order: EngineOrder | None, fills, resp_type: str, now: int) -> dict:
    out = {"symbol": info.symbol, "orderId": info.oid, "orderListId": info.list_id,
           "clientOrderId": info.client_id, "transactTime": now}
    if resp_type == "ACK":
        return out
    out.update(_core(info, order))
    out["workingTime"] = info.working_ms
    out["selfTradePreventionMode"] = "NONE"
    if resp_type == "FULL":
        out["fills"] = [fill_wire(f) for f in fills]
    return out


def query_order(info: OrderInfo, order: EngineOrder | None) -> dict:
    filled, notional = _amounts(order)
    status = order_status(info, order)
    return {"symbol": info.symbol, "orderId": info.oid, "orderListId": info.list_id,
            "clientOrderId": info.client_id, "price": d8(info.price), "origQty": d8(info.qty),
            "executedQty": d8(filled), "cummulativeQuoteQty": d8(notional), "status": status,
            "timeInForce": info.tif, "type": info.type, "side": info.side.name, "stopPrice": d8(info.stop),
            "icebergQty": d8(0), "time": info.created_ms,
            "updateTime": max(info.updated_ms, order.updated_ms if order else 0, info.created_ms),
            "isWorking": info.working_ms >= 0, "workingTime": info.working_ms,
            "origQuoteOrderQty": d8(info.quote_qty), "selfTradePreventionMode": "NONE"}


def cancel_response(info: OrderInfo, order: EngineOrder | None, cancel_cid: str, now: int) -> dict:
    return {"symbol": info.symbol, "origClientOrderId": info.client_id, "orderId": info.oid,
            "orderListId": info.list_id, "clientOrderId": cancel_cid, "transactTime": now,
            **_core(info, order), "selfTradePreventionMode": "NONE"}


def list_wire(lst: OrderList, infos: list[OrderInfo], now: int | None = None, reports=None) -> dict:
    out = {"orderListId": lst.list_id, "contingencyType": "OCO",
           "listStatusType": "ALL_DONE" if lst.done else "EXEC_STARTED",
           "listOrderStatus": "ALL_DONE" if lst.done else "EXECUTING", "listClientOrderId": lst.client_id,
           "transactionTime": now if now is not None else (lst.updated_ms or lst.created_ms),
           "symbol": lst.symbol,
           "orders": [{"symbol": i.symbol, "orderId": i.oid, "clientOrderId": i.client_id} for i in infos]}
    if reports is not None:
        out["orderReports"] = reports
    return out


def trade_wire(fill: EngineFill, list_id: int) -> dict:
    """One row of GET /api/v3/myTrades."""
    return {"symbol": fill.symbol, "id": fill.trade_id, "orderId": fill.oid, "orderListId": list_id,
            "price": d8(fill.price), "qty": d8(fill.size), "quoteQty": d8(fill.price * fill.size),
            "commission": d8(fill.fee), "commissionAsset": fill.fee_asset, "time": fill.time_ms,
            "isBuyer": fill.side is Side.BUY, "isMaker": fill.maker, "isBestMatch": True}


# -- user data events ------------------------------------------------------------------------------
def execution_report(info: OrderInfo, x: str, status: str, now: int, *, filled: Decimal = ZERO,
                     notional: Decimal = ZERO, fill: EngineFill | None = None, cancel_cid: str | None = None,
                     seq: int = 0, expiry: str | None = None) -> dict:
    """`c` is the order's client id, except on a cancel, where it is the cancel's and `C` the order's."""
    event = {"e": "executionReport", "E": now, "s": info.symbol,
             "c": cancel_cid if cancel_cid is not None else info.client_id, "S": info.side.name,
             "o": info.type, "f": info.tif, "q": d8(info.qty), "p": d8(info.price), "P": d8(info.stop),
             "F": d8(0), "g": info.list_id, "C": info.client_id if cancel_cid is not None else "",
             "x": x, "X": status, "r": "NONE", "i": info.oid,
             "l": d8(fill.size if fill else 0), "z": d8(filled), "L": d8(fill.price if fill else 0),
             "n": d8(fill.fee) if fill else "0", "N": fill.fee_asset if fill else None,
             "T": fill.time_ms if fill else now, "t": fill.trade_id if fill else -1, "I": seq,
             "w": status in ("NEW", "PARTIALLY_FILLED") and info.working_ms >= 0,
             "m": bool(fill and fill.maker), "M": False, "O": info.created_ms, "Z": d8(notional),
             "Y": d8(fill.price * fill.size if fill else 0), "Q": d8(info.quote_qty)}
    if info.working_ms >= 0:
        event["W"] = info.working_ms
    event["V"] = "NONE"
    if expiry:
        event["eR"] = expiry
    return event


def account_position(balances: dict, assets, now: int) -> dict:
    rows = []
    for asset in sorted(assets):
        bal = balances.get(asset)
        rows.append({"a": asset, "f": d8(bal.free if bal else 0), "l": d8(bal.locked if bal else 0)})
    return {"e": "outboundAccountPosition", "E": now, "u": now, "B": rows}


def balance_update(asset: str, delta: Decimal, now: int) -> dict:
    return {"e": "balanceUpdate", "E": now, "a": asset, "d": d8(delta), "T": now}


def list_status(lst: OrderList, infos: list[OrderInfo], now: int, status_type: str | None = None) -> dict:
    kind = status_type or ("ALL_DONE" if lst.done else "EXEC_STARTED")
    return {"e": "listStatus", "E": now, "s": lst.symbol, "g": lst.list_id, "c": "OCO", "l": kind,
            "L": "ALL_DONE" if lst.done else "EXECUTING", "r": "NONE", "C": lst.client_id, "T": now,
            "O": [{"s": i.symbol, "i": i.oid, "c": i.client_id} for i in infos]}


# -- the synthetic book ----------------------------------------------------------------------------
def book_levels(rules: MarketRules, mid: Decimal, ours: list[EngineOrder], depth: int) -> tuple[list, list]:
    """Our resting orders aggregated over a synthetic outside book one tick apart around the mid
    (bids < mid < asks), best first: [[price, qty], ...] per side."""
    tick, lot = rules.tick_size, rules.lot_size
    best_bid = rules.round_price(mid - tick / 2, ROUND_FLOOR)
    if best_bid >= mid:
        best_bid -= tick
    best_ask = rules.round_price(mid + tick / 2, ROUND_CEILING)
    if best_ask <= mid:
        best_ask += tick
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for k in range(depth):
        for book, px in ((bids, best_bid - tick * k), (asks, best_ask + tick * k)):
            if px > 0:
                book[px] = lot * (1 + (int(px / tick) * 7919 + k * 104729) % 400)
    for order in ours:
        book = bids if order.side is Side.BUY else asks
        book[order.price] = book.get(order.price, ZERO) + order.remaining
    return ([[d8(p), d8(bids[p])] for p in sorted(bids, reverse=True)[:depth]],
            [[d8(p), d8(asks[p])] for p in sorted(asks)[:depth]])
