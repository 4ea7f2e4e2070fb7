"""Binance's order semantics over the venue-neutral matching engine: new orders (LIMIT GTC/IOC/FOK,
LIMIT_MAKER, MARKET, and the stop types the engine does not match), cancels, and the user-data events
each change produces, in Binance's order (executionReport NEW, TRADE..., then outboundAccountPosition).

Stop-type orders wait in the venue (their funds held through `engine.hold`) with an order id reserved
from the engine, and become an engine order with that same id when the price reaches the stop.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from messages.types import ZERO, OrderState, RejectReason, Side
from sim.binance import protocol as P
from sim.binance.params import DUPLICATE, INSUFFICIENT, TRIGGER_NOW, WOULD_TAKE, ApiError
from sim.book import EngineFill

__all__ = ["NewOrder", "Trading", "FILTER_NAMES"]

FILTER_NAMES = {RejectReason.PRICE_TICK: "PRICE_FILTER", RejectReason.PRICE_RANGE: "PRICE_FILTER",
                RejectReason.SIZE_LOT: "LOT_SIZE", RejectReason.SIZE_RANGE: "LOT_SIZE",
                RejectReason.MIN_NOTIONAL: "NOTIONAL", RejectReason.MAX_NOTIONAL: "NOTIONAL",
                RejectReason.MAX_ORDERS: "MAX_NUM_ORDERS"}
ENGINE_TIF = {"GTC": "Gtc", "IOC": "Ioc", "FOK": "Ioc"}   # a crossing order fills in full: FOK = IOC here
MAX_ALGO_ORDERS = 5
_ALPHABET = string.ascii_letters + string.digits
_rng = random.Random()


@dataclass(frozen=True)
class NewOrder:
    """A validated new order (or OCO leg) as the REST/WebSocket layer parsed it."""
    symbol: str
    side: Side
    type: str
    tif: str = "GTC"
    qty: Decimal | None = None
    price: Decimal = ZERO
    quote_qty: Decimal = ZERO
    stop: Decimal = ZERO
    client_id: str | None = None
    resp_type: str | None = None


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


def rejection(reason: RejectReason | None, message: str) -> ApiError:
    if reason in FILTER_NAMES:
        return filter_failure(FILTER_NAMES[reason])
    text = {RejectReason.INSUFFICIENT_FUNDS: INSUFFICIENT, RejectReason.POST_ONLY_WOULD_CROSS: WOULD_TAKE,
            RejectReason.DUPLICATE_CLIENT_ID: DUPLICATE}.get(reason, message)
    return ApiError(-2010, text)


def new_client_id() -> str:
    """What Binance generates when no client id is sent: 22 letters and digits."""
    return "".join(_rng.choices(_ALPHABET, k=22))


class Trading:
    """Mixed into BnVenue: uses its engine, infos, lists, by_cid, limits, out and now()."""

    # -- lookups ---------------------------------------------------------------------------------
    def record(self, info: P.OrderInfo):
        return None if info.trigger else self.engine.order_status(info.account, oid=info.oid)

    def status(self, info: P.OrderInfo) -> str:
        return "NEW" if info.trigger else P.order_status(info, self.record(info))

    def is_open(self, info: P.OrderInfo) -> bool:
        return self.status(info) in ("NEW", "PARTIALLY_FILLED")

    def find(self, account: str, symbol: str, oid: int | None, cid: str | None) -> P.OrderInfo | None:
        info = self.infos.get(oid) if oid is not None else self.infos.get(self.by_cid.get((account, cid)))
        if info is None or info.account != account or info.symbol != symbol:
            return None
        if oid is not None and cid is not None and info.client_id != cid:
            return None
        return info

    def pending(self, account: str, symbol: str) -> list[P.OrderInfo]:
        return [i for i in self.infos.values() if i.trigger and i.account == account and i.symbol == symbol]

    def _add(self, info: P.OrderInfo) -> None:
        self.infos[info.oid] = info
        self.by_cid[(info.account, info.client_id)] = info.oid
        self.dirty = True

    # -- events ----------------------------------------------------------------------------------
    def report(self, info: P.OrderInfo, x: str, now: int, **kw) -> None:
        record = self.record(info)
        status = kw.pop("status", None) or self.status(info)
        filled = kw.pop("filled", record.filled if record else ZERO)
        notional = kw.pop("notional", record.filled_notional if record else ZERO)
        self.book_seq += 1
        self.out.events.append((info.account, P.execution_report(
            info, x, status, now, filled=filled, notional=notional, seq=self.book_seq, **kw)))

    def touch(self, info: P.OrderInfo) -> None:
        rules = self.engine.rules(info.symbol)
        self._touched.setdefault(info.account, set()).update((rules.base_asset, rules.quote_asset))
        self.out.books.add(info.symbol)

    def flush_positions(self, now: int) -> None:
        """One outboundAccountPosition per account whose balances the operation moved."""
        touched, self._touched = self._touched, {}
        for account, assets in touched.items():
            self.position_event(account, assets, now)

    # -- new orders -----------------------------------------------------------------------------
    def crossing_price(self, symbol: str, side: Side) -> Decimal:
        """A limit that crosses the market price (so a MARKET order fills there), on the tick grid."""
        rules, mid = self.engine.rules(symbol), self.engine.mid(symbol)
        return rules.round_price(mid, ROUND_CEILING if side is Side.BUY else ROUND_FLOOR)

    def check_open_count(self, account: str, symbol: str, new_stops: int = 0, new_orders: int = 1) -> None:
        rules = self.engine.rules(symbol)
        stops = len(self.pending(account, symbol))
        if len(self.engine.open_orders(account, symbol)) + stops + new_orders > rules.max_orders:
            raise filter_failure("MAX_NUM_ORDERS")
        if new_stops and stops + new_stops > MAX_ALGO_ORDERS:
            raise filter_failure("MAX_NUM_ALGO_ORDERS")

    def check_client_id(self, account: str, cid: str | None) -> None:
        """Client ids are unique among open orders, the venue's untriggered stops included."""
        oid = self.by_cid.get((account, cid)) if cid is not None else None
        if oid is not None and oid in self.infos and self.is_open(self.infos[oid]):
            raise ApiError(-2010, DUPLICATE)

    def check_rules(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        reason = self.engine.rules(symbol).check(price, qty)
        if reason is not None:
            raise rejection(reason, "")

    def place(self, account: str, o: NewOrder, now: int, check: bool = True) -> dict:
        """POST /api/v3/order: the response in `o.resp_type` (FULL for LIMIT/MARKET by default, as Binance)."""
        if check:
            self.limits.check_new_order(account, now)
        self.check_client_id(account, o.client_id)
        cid = o.client_id or new_client_id()
        if o.type in P.STOP_TYPES:
            info = self.place_stop(account, o, cid, now)
            self.flush_positions(now)
            return P.new_order_response(info, None, (), o.resp_type or "ACK", now)
        qty, price, tif = o.qty, o.price, ENGINE_TIF.get(o.tif, "Gtc")
        if o.type == "MARKET":
            price, tif = self.crossing_price(o.symbol, o.side), "Ioc"
            if qty is None:
                qty = self.engine.rules(o.symbol).round_size(o.quote_qty / self.engine.mid(o.symbol))
                if qty <= 0:
                    raise filter_failure("LOT_SIZE")
        elif o.type == "LIMIT_MAKER":
            tif = "Alo"
        self.check_open_count(account, o.symbol)
        out = self.engine.place(account, o.symbol, o.side, price, qty, client_id=cid, tif=tif, time_ms=now)
        if not out.accepted:
            raise rejection(out.reason, out.message)
        info = P.OrderInfo(out.oid, account, o.symbol, o.side, o.type, o.tif if o.type == "LIMIT" else "GTC",
                           cid, ZERO if o.type == "MARKET" else price, qty, now, quote_qty=o.quote_qty,
                           working_ms=now, updated_ms=now)
        self._enter(info, list(out.fills), out.status, now)
        self.flush_positions(now)
        return P.new_order_response(info, self.record(info), out.fills, o.resp_type or "FULL", now)

    def _enter(self, info: P.OrderInfo, fills: list[EngineFill], status: OrderState, now: int,
               count: bool = True) -> None:
        """An order the engine accepted: NEW, its fills, EXPIRED if an IOC/MARKET found nothing."""
        if status is OrderState.CANCELLED:
            info.status = "EXPIRED"
        self._add(info)
        if count:
            self.limits.count_order(info.account, now)
        self.report(info, "NEW", now, status="NEW", filled=ZERO, notional=ZERO)
        self.touch(info)
        self.on_fills(fills, now)
        if info.status == "EXPIRED":
            self.report(info, "EXPIRED", now, expiry="INSUFFICIENT_LIQUIDITY")

    def place_stop(self, account: str, o: NewOrder, cid: str, now: int, list_id: int = -1,
                   direction: str | None = None, hold: Decimal | None = None) -> P.OrderInfo:
        """A stop-type order: held by the venue until the price reaches `o.stop`."""
        direction = direction or ("above" if (o.side is Side.BUY) == o.type.startswith("STOP") else "below")
        mid = self.engine.mid(o.symbol)
        if (direction == "above" and mid >= o.stop) or (direction == "below" and mid <= o.stop):
            raise ApiError(-2010, TRIGGER_NOW)
        if list_id == -1:
            self.check_open_count(account, o.symbol, new_stops=1)
        rules = self.engine.rules(o.symbol)
        limit = o.price if o.type.endswith("LIMIT") else o.stop
        self.check_rules(o.symbol, limit, o.qty)
        asset, amount = (rules.quote_asset, limit * o.qty) if o.side is Side.BUY else (rules.base_asset, o.qty)
        amount = amount if hold is None else hold
        if amount and not self.engine.hold(account, asset, amount):
            raise ApiError(-2010, INSUFFICIENT)
        info = P.OrderInfo(self.engine.reserve_oid(), account, o.symbol, o.side, o.type,
                           o.tif if o.type.endswith("LIMIT") else "GTC", cid,
                           o.price if o.type.endswith("LIMIT") else ZERO, o.qty, now, stop=o.stop,
                           list_id=list_id, status="NEW", trigger=direction,
                           hold=(asset, str(amount)) if amount else None, updated_ms=now)
        self._add(info)
        self.limits.count_order(account, now)
        self.report(info, "NEW", now)
        if amount:
            self.touch(info)
        return info

    # -- fills and triggers ------------------------------------------------------------------------
    def on_fills(self, fills: list[EngineFill], now: int) -> None:
        """TRADE reports (cumulative per order), public trades, the order count, OCO siblings."""
        groups: dict[int, list[EngineFill]] = {}
        for fill in fills:
            groups.setdefault(fill.oid, []).append(fill)
        for oid, group in groups.items():
            info = self.infos.get(oid)
            if info is None:
                continue
            record = self.record(info)
            filled = record.filled - sum((f.size for f in group), ZERO)
            notional = record.filled_notional - sum((f.price * f.size for f in group), ZERO)
            if filled == 0:
                self.limits.first_fill(info.account, now)
            for index, fill in enumerate(group):
                filled += fill.size
                notional += fill.price * fill.size
                status = self.status(info) if index == len(group) - 1 else "PARTIALLY_FILLED"
                self.report(info, "TRADE", now, fill=fill, status=status, filled=filled, notional=notional)
                self.out.trades.append((info.symbol, {
                    "e": "trade", "E": now, "s": info.symbol, "t": fill.trade_id, "p": P.d8(fill.price),
                    "q": P.d8(fill.size), "T": fill.time_ms, "m": (fill.side is Side.BUY) == fill.maker,
                    "M": True}))
            info.updated_ms = now
            self.touch(info)
            lst = self.lists.get(info.list_id)
            if lst is not None and not lst.done:
                self.finish_list(lst, info, now)
        if fills:
            self.dirty = True

    def advance(self, symbol: str, now: int, price: Decimal) -> None:
        """The market moves to `price`: resting orders it reaches fill, stops it reaches trigger."""
        old = self.engine.mid(symbol)
        fills = self.engine.advance(symbol, now, price)
        if fills:
            self.on_fills(fills, now)
        for info in sorted((i for i in self.infos.values() if i.trigger and i.symbol == symbol),
                           key=lambda i: i.oid):
            if info.trigger and (price >= info.stop if info.trigger == "above" else price <= info.stop):
                self.fire(info, now)
        lot = self.engine.rules(symbol).lot_size
        self.out.trades.append((symbol, {
            "e": "trade", "E": now, "s": symbol, "t": self.engine.next_trade_id(), "p": P.d8(price),
            "q": P.d8(lot * (1 + int(price * 100) % 97)), "T": now, "m": price < old, "M": True}))
        self.out.books.add(symbol)
        self.book_seq += 1
        self.flush_positions(now)

    def release(self, info: P.OrderInfo) -> None:
        if info.hold:
            self.engine.release(info.account, info.hold[0], Decimal(info.hold[1]))
            info.hold = None
            self.touch(info)

    def fire(self, info: P.OrderInfo, now: int) -> None:
        """A stop reached: its OCO sibling expires and it enters the engine as MARKET or LIMIT."""
        lst = self.lists.get(info.list_id)
        if lst is not None and not lst.done:
            self.finish_list(lst, info, now)
        self.release(info)
        info.trigger, info.status, info.working_ms, info.updated_ms = "", None, now, now
        market = not info.type.endswith("LIMIT")
        price = self.crossing_price(info.symbol, info.side) if market else info.price
        out = self.engine.place(info.account, info.symbol, info.side, price, info.qty,
                                client_id=info.client_id, tif="Ioc" if market else ENGINE_TIF[info.tif],
                                time_ms=now, oid=info.oid)
        self.dirty = True
        if not out.accepted:
            info.status = "EXPIRED"
            self.report(info, "EXPIRED", now)
            return
        self._enter(info, list(out.fills), out.status, now, count=False)

    def expire(self, info: P.OrderInfo, now: int) -> None:
        """The venue ends an open order (an OCO sibling): EXPIRED."""
        if not self.is_open(info):
            return
        if info.trigger:
            self.release(info)
            info.trigger = ""
        else:
            self.engine.cancel(info.account, info.symbol, oid=info.oid, time_ms=now)
            self.touch(info)
        info.status, info.updated_ms = "EXPIRED", now
        self.report(info, "EXPIRED", now)
        self.dirty = True

    def finish_list(self, lst: P.OrderList, leg: P.OrderInfo, now: int) -> None:
        """One leg of an OCO traded or triggered: the others expire and the list is ALL_DONE."""
        lst.done, lst.updated_ms = True, now
        for oid in lst.oids:
            if oid != leg.oid:
                self.expire(self.infos[oid], now)
        self.out.events.append((lst.account, P.list_status(lst, [self.infos[o] for o in lst.oids], now)))

    # -- cancels -----------------------------------------------------------------------------------
    def cancel_one(self, info: P.OrderInfo, cancel_cid: str, now: int) -> None:
        if info.trigger:
            self.release(info)
            info.trigger, info.status = "", "CANCELED"
        else:
            self.engine.cancel(info.account, info.symbol, oid=info.oid, time_ms=now)
            self.touch(info)
        info.updated_ms = now
        self.report(info, "CANCELED", now, cancel_cid=cancel_cid)
        self.dirty = True

    def cancel(self, account: str, symbol: str, oid: int | None, cid: str | None, cancel_cid: str | None,
               now: int) -> dict:
        """DELETE /api/v3/order; cancelling one leg of an OCO cancels the whole list, as Binance does."""
        info = self.find(account, symbol, oid, cid)
        if info is None or not self.is_open(info):
            raise ApiError(-2011, "Unknown order sent.")
        cancel_cid = cancel_cid or new_client_id()
        lst = self.lists.get(info.list_id)
        if lst is not None and not lst.done:
            self.cancel_list_legs(lst, cancel_cid, now)
        else:
            self.cancel_one(info, cancel_cid, now)
        self.flush_positions(now)
        return P.cancel_response(info, self.record(info), cancel_cid, now)

    def cancel_list_legs(self, lst: P.OrderList, cancel_cid: str, now: int) -> list[dict]:
        reports = []
        lst.done, lst.updated_ms = True, now
        for oid in lst.oids:
            info = self.infos[oid]
            if self.is_open(info):
                self.cancel_one(info, cancel_cid, now)
            reports.append(P.cancel_response(info, self.record(info), cancel_cid, now))
        self.out.events.append((lst.account, P.list_status(lst, [self.infos[o] for o in lst.oids], now)))
        return reports
