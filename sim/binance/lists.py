"""Operations on several orders at once: OCO lists (POST /api/v3/orderList/oco, its queries and cancel),
cancel-all, and cancel-replace with Binance's partial-failure answers (-2021 as HTTP 409, -2022)."""
from __future__ import annotations

from dataclasses import dataclass

from messages.types import ZERO, Side
from sim.binance import protocol as P
from sim.binance.orders import NewOrder, Trading, new_client_id
from sim.binance.params import INSUFFICIENT, ApiError

__all__ = ["OcoOrder", "Lists"]

RELATION = "The relationship of the prices for the orders is not correct."


@dataclass(frozen=True)
class OcoOrder:
    """POST /api/v3/orderList/oco, parsed: `above`/`below` are the legs (type, price, stop, tif, id)."""
    symbol: str
    side: Side
    qty: object
    above: NewOrder
    below: NewOrder
    list_client_id: str | None = None


def _leg_rules(side: Side, position: str, kind: str) -> ApiError | None:
    """Which leg may be where: the limit leg of a sell OCO above, of a buy OCO below; stop-losses
    on the losing side, take-profits on the winning side."""
    sell = side is Side.SELL
    if kind == "LIMIT_MAKER" and sell and position == "below":
        return ApiError(-1166, "A limit order in a sell OCO must be above.")
    if kind == "LIMIT_MAKER" and not sell and position == "above":
        return ApiError(-1165, "A limit order in a buy OCO must be below.")
    if kind.startswith("STOP_LOSS") and sell and position == "above":
        return ApiError(-1197, "A stop loss order in a sell OCO must be below.")
    if kind.startswith("STOP_LOSS") and not sell and position == "below":
        return ApiError(-1196, "A stop loss order in a buy OCO must be above.")
    if kind.startswith("TAKE_PROFIT") and sell and position == "below":
        return ApiError(-1199, "A take profit order in a sell OCO must be above.")
    if kind.startswith("TAKE_PROFIT") and not sell and position == "above":
        return ApiError(-1198, "A take profit order in a buy OCO must be below.")
    return None


class Lists(Trading):
    # -- OCO -------------------------------------------------------------------------------------
    def place_oco(self, account: str, o: OcoOrder, now: int) -> dict:
        self.limits.check_new_order(account, now, count=2)
        legs = {"above": o.above, "below": o.below}
        for position, leg in sorted(legs.items(), key=lambda item: item[1].type != "LIMIT_MAKER"):
            if leg.type != "LIMIT_MAKER" and leg.type not in P.STOP_TYPES:
                raise ApiError(-1158, "Order type not supported in OCO.")
            error = _leg_rules(o.side, position, leg.type)
            if error is not None:
                raise error
        if o.above.type == o.below.type == "LIMIT_MAKER":
            raise ApiError(-1168, "At least one OCO order must be contingent.")
        mid = self.engine.mid(o.symbol)
        level = {p: (leg.price if leg.type == "LIMIT_MAKER" else leg.stop) for p, leg in legs.items()}
        if not level["above"] > mid > level["below"]:
            raise ApiError(-2010, RELATION)
        for leg in legs.values():
            self.check_rules(o.symbol, leg.stop if leg.type in ("STOP_LOSS", "TAKE_PROFIT") else leg.price, o.qty)
            if leg.type in P.STOP_TYPES:
                self.check_rules(o.symbol, leg.stop, o.qty)
            self.check_client_id(account, leg.client_id)
        stops = [p for p, leg in legs.items() if leg.type != "LIMIT_MAKER"]
        self.check_open_count(account, o.symbol, new_stops=len(stops), new_orders=2)
        rules = self.engine.rules(o.symbol)
        prices = [leg.price if leg.type.endswith("LIMIT") or leg.type == "LIMIT_MAKER" else leg.stop
                  for leg in legs.values()]
        asset, need = ((rules.base_asset, o.qty) if o.side is Side.SELL
                       else (rules.quote_asset, max(prices) * o.qty))
        balance = self.engine.balances(account).get(asset)
        if balance is None or balance.free < need:
            raise ApiError(-2010, INSUFFICIENT)
        limit_leg = next((leg for leg in legs.values() if leg.type == "LIMIT_MAKER"), None)
        locked_by_limit = ZERO if limit_leg is None else (
            o.qty if o.side is Side.SELL else limit_leg.price * o.qty)
        list_id = self.next_list_id
        self.next_list_id += 1
        infos: list[P.OrderInfo] = []
        hold = need - locked_by_limit
        for position in stops:
            leg = legs[position]
            order = NewOrder(o.symbol, o.side, leg.type, leg.tif, o.qty, leg.price, stop=leg.stop)
            infos.append(self.place_stop(account, order, leg.client_id or new_client_id(), now, list_id,
                                         position, hold))
            hold = ZERO
        if limit_leg is not None:
            cid = limit_leg.client_id or new_client_id()
            out = self.engine.place(account, o.symbol, o.side, limit_leg.price, o.qty, client_id=cid,
                                    tif="Alo", time_ms=now)
            if not out.accepted:      # validated above; only a venue bug gets here
                raise ApiError(-2010, out.message)
            info = P.OrderInfo(out.oid, account, o.symbol, o.side, "LIMIT_MAKER", "GTC", cid, limit_leg.price,
                               o.qty, now, list_id=list_id, working_ms=now, updated_ms=now)
            self._enter(info, list(out.fills), out.status, now)
            infos.append(info)
        lst = P.OrderList(list_id, account, o.symbol, o.list_client_id or new_client_id(),
                          [i.oid for i in infos], now, updated_ms=now)
        self.lists[list_id] = lst
        self.out.events.append((account, P.list_status(lst, infos, now)))
        self.flush_positions(now)
        reports = [P.new_order_response(i, self.record(i), (), "RESULT", now) for i in infos]
        return P.list_wire(lst, infos, now, reports)

    def find_list(self, account: str, list_id: int | None, list_cid: str | None) -> P.OrderList | None:
        if list_id is not None:
            lst = self.lists.get(list_id)
        else:
            lst = next((x for x in reversed(self.lists.values())
                        if x.account == account and x.client_id == list_cid), None)
        return lst if lst is not None and lst.account == account else None

    def list_wire(self, lst: P.OrderList, now: int | None = None, reports=None) -> dict:
        return P.list_wire(lst, [self.infos[o] for o in lst.oids], now, reports)

    def cancel_list(self, account: str, symbol: str, list_id: int | None, list_cid: str | None,
                    cancel_cid: str | None, now: int) -> dict:
        lst = self.find_list(account, list_id, list_cid)
        if lst is None or lst.symbol != symbol or lst.done:
            raise ApiError(-2011, "Unknown order sent.")
        reports = self.cancel_list_legs(lst, cancel_cid or new_client_id(), now)
        self.flush_positions(now)
        return self.list_wire(lst, now, reports)

    def open_lists(self, account: str) -> list[dict]:
        return [self.list_wire(x) for x in self.lists.values() if x.account == account and not x.done]

    # -- many orders ------------------------------------------------------------------------------
    def cancel_all(self, account: str, symbol: str, now: int) -> list[dict]:
        """DELETE /api/v3/openOrders: plain orders as cancel reports, each OCO once as a list."""
        infos = sorted((i for i in self.infos.values() if i.account == account and i.symbol == symbol
                        and self.is_open(i)), key=lambda i: i.oid)
        if not infos:
            raise ApiError(-2011, "Unknown order sent.")
        cancel_cid = new_client_id()
        out, lists_done = [], set()
        for info in infos:
            if info.list_id != -1:
                if info.list_id not in lists_done:
                    lists_done.add(info.list_id)
                    lst = self.lists[info.list_id]
                    out.append(self.list_wire(lst, now, self.cancel_list_legs(lst, cancel_cid, now)))
            elif self.is_open(info):
                self.cancel_one(info, cancel_cid, now)
                out.append(P.cancel_response(info, self.record(info), cancel_cid, now))
        self.flush_positions(now)
        return out

    def cancel_replace(self, account: str, mode: str, oid: int | None, cid: str | None,
                       cancel_cid: str | None, new: NewOrder, now: int) -> dict:
        """Cancel then place; what failed goes in `data` of a -2021 (HTTP 409) or -2022 answer."""
        self.limits.check_new_order(account, now)
        info = self.find(account, new.symbol, oid, cid)
        cancel_error = None if info is not None and self.is_open(info) else {"code": -2011,
                                                                             "msg": "Unknown order sent."}
        if cancel_error and mode == "STOP_ON_FAILURE":
            raise ApiError(-2022, "Order cancel-replace failed.", data={
                "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED", "cancelResponse": cancel_error,
                "newOrderResponse": None})
        cancel = cancel_error or self.cancel(account, new.symbol, info.oid, None, cancel_cid, now)
        try:
            placed, new_ok = self.place(account, new, now, check=False), True
        except ApiError as exc:
            placed, new_ok = {"code": exc.code, "msg": exc.msg}, False
        data = {"cancelResult": "FAILURE" if cancel_error else "SUCCESS",
                "newOrderResult": "SUCCESS" if new_ok else "FAILURE",
                "cancelResponse": cancel, "newOrderResponse": placed}
        if new_ok and not cancel_error:
            return data
        if new_ok or not cancel_error:
            raise ApiError(-2021, "Order cancel-replace partially failed.", status=409, data=data)
        raise ApiError(-2022, "Order cancel-replace failed.", data=data)
