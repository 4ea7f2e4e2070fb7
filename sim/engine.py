"""An in-process exchange that matches *our* resting limit orders against a price path.

Venue-neutral: the paper adapter and the Hyperliquid/Binance protocol servers drive one engine and only
translate its outcomes (`RejectReason` plus a message). The market is one price moved by the caller,
with no other liquidity: a crossing order fills in full at that price, a resting order fills at its
limit when the price touches it. Time comes from the caller, never the wall clock, so backtests replay.
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import replace
from decimal import Decimal
from typing import Callable

from messages.types import ZERO, MarketRules, OrderState, RejectReason, Side, to_decimal
from sim.accounts import Balance, Ledger, MarginSummary, Position
from sim.book import (
    CancelOutcome,
    EngineFill,
    EngineOrder,
    FillLog,
    Market,
    PlaceOutcome,
    read_json,
    rule_message,
    split_size,
    write_json_atomic,
)

__all__ = [
    "MatchingEngine", "MarginSummary", "EngineFill", "EngineOrder", "PlaceOutcome", "CancelOutcome",
    "Balance", "Position", "DEFAULT_MAKER_FEE", "DEFAULT_TAKER_FEE", "write_json_atomic",
]

DEFAULT_MAKER_FEE = Decimal("0.00015")
DEFAULT_TAKER_FEE = Decimal("0.00045")
TIFS = ("Alo", "Gtc", "Ioc")
_STATE_FORMAT = "gridbot-engine/1"
_NO_FILLS: tuple = ()


class MatchingEngine:
    """Markets, accounts, our orders and their fills.

    `client_id_scope`: "ever" (a client id may be used once, Hyperliquid) or "open" (unique among open
    orders, Binance). `partial_fills`: every fill is cut into 2-3 lot-aligned parts with distinct trade
    ids, by an RNG seeded with `seed` (persisted, so replays stay identical). `history_limit` bounds the
    finished orders and fills kept per engine/account (None: keep all). `fee_quantum` rounds spot fees
    (half up) to what the venue settles in, e.g. 1e-8 on Binance (None: exact).
    """

    def __init__(self, *, partial_fills: bool = False, seed: int = 0, client_id_scope: str = "ever",
                 history_limit: int | None = None, clock: Callable[[], int] | None = None,
                 first_trade_id: int = 1, first_oid: int = 1, fee_quantum: Decimal | None = None):
        if client_id_scope not in ("ever", "open"):
            raise ValueError("client_id_scope must be 'ever' or 'open'")
        self.partial_fills = partial_fills
        self.client_id_scope = client_id_scope
        self.history_limit = history_limit
        self.clock = clock
        self.fee_quantum = to_decimal(fee_quantum) if fee_quantum is not None else None
        self._rng = random.Random(seed)
        self._next_tid = first_trade_id
        self._next_oid = first_oid
        self._markets: dict[str, Market] = {}
        self._ledger = Ledger()
        self._orders: dict[int, EngineOrder] = {}
        self._open: dict[str, dict[str, dict[int, EngineOrder]]] = {}
        self._by_cid: dict[tuple[str, str], EngineOrder] = {}
        self._used_cids: dict[str, set[str]] = {}
        self._terminal: deque[int] = deque()
        self._fills = FillLog(history_limit)

    # -- setup --------------------------------------------------------------------------------
    def add_market(self, rules: MarketRules, kind: str = "perp", *, maker_fee: Decimal = DEFAULT_MAKER_FEE,
                   taker_fee: Decimal = DEFAULT_TAKER_FEE, leverage: int = 10,
                   price: Decimal | None = None, time_ms: int = 0) -> None:
        if kind not in ("perp", "spot"):
            raise ValueError(f"market kind must be 'perp' or 'spot', got {kind!r}")
        if leverage < 1:
            raise ValueError("leverage must be >= 1")
        self._markets[rules.symbol] = Market(rules, kind, to_decimal(maker_fee), to_decimal(taker_fee),
                                             int(leverage), price, time_ms)

    def rules(self, symbol: str) -> MarketRules:
        return self._markets[symbol].rules

    def kind(self, symbol: str) -> str:
        return self._markets[symbol].kind

    def symbols(self) -> list[str]:
        return list(self._markets)

    def fund(self, account: str, asset: str, amount: Decimal) -> None:
        self._ledger.fund(account, asset, to_decimal(amount))

    def set_rules(self, rules: MarketRules) -> None:
        """Replace a listed market's rules (a venue changing a filter); resting orders stay."""
        self._markets[rules.symbol].rules = rules

    # -- hooks for venues with orders the engine does not match (e.g. untriggered stop orders) -----
    def hold(self, account: str, asset: str, amount: Decimal) -> bool:
        """Lock `amount` of the free balance for an order the venue keeps itself; False if short."""
        amount = to_decimal(amount)
        if amount > self._ledger.free(account, asset):
            return False
        self._ledger.lock(account, asset, amount)
        return True

    def release(self, account: str, asset: str, amount: Decimal) -> None:
        self._ledger.unlock(account, asset, to_decimal(amount))

    def reserve_oid(self) -> int:
        """An order id for an order the venue announces now and hands to `place(oid=...)` later."""
        oid, self._next_oid = self._next_oid, self._next_oid + 1
        return oid

    def next_trade_id(self) -> int:
        """A trade id for a public trade that is not ours, so venue-wide trade ids stay unique."""
        tid, self._next_tid = self._next_tid, self._next_tid + 1
        return tid

    # -- queries ------------------------------------------------------------------------------
    def mid(self, symbol: str) -> Decimal | None:
        return self._markets[symbol].price

    def time_ms(self, symbol: str) -> int:
        return self._markets[symbol].time_ms

    def balances(self, account: str) -> dict[str, Balance]:
        return self._ledger.balances(account)

    def position(self, account: str, symbol: str) -> Position:
        return self._ledger.position(account, symbol, self._markets[symbol].price)

    def margin(self, account: str, asset: str) -> MarginSummary:
        cash = self._ledger.free(account, asset)
        upnl = used = ZERO
        for symbol, (size, entry) in self._ledger.positions(account).items():
            market = self._markets.get(symbol)
            if market is None or market.kind != "perp" or market.rules.quote_asset != asset or not size:
                continue
            mark = market.price if market.price is not None else entry
            upnl += size * (mark - entry)
            used += abs(size) * mark / market.leverage
        for symbol, orders in self._open.get(account, {}).items():
            market = self._markets[symbol]
            if market.kind == "perp" and market.rules.quote_asset == asset:
                used += sum((o.price * o.remaining for o in orders.values() if not o.reduce_only),
                            ZERO) / market.leverage
        return MarginSummary(asset, cash + upnl, used)

    def order_status(self, account: str, oid: int | None = None,
                     client_id: str | None = None) -> EngineOrder | None:
        """A copy of the order's record (latest order for a client id), or None if never seen."""
        order = self._find(account, oid, client_id)
        return replace(order) if order is not None else None

    def open_orders(self, account: str, symbol: str | None = None, copy: bool = True) -> list[EngineOrder]:
        """Copies by default; `copy=False` hands out the live records, for callers that only read them
        at once (a venue building its snapshot)."""
        by_symbol = self._open.get(account, {})
        symbols = [symbol] if symbol is not None else list(by_symbol)
        orders = sorted((o for s in symbols for o in by_symbol.get(s, {}).values()), key=lambda o: o.oid)
        return [replace(o) for o in orders] if copy else orders

    def fills(self, account: str, since_ms: int | None = None, until_ms: int | None = None,
              limit: int | None = None) -> list[EngineFill]:
        """Fills with since_ms <= time <= until_ms, in (time, trade id) order, the first `limit`."""
        return self._fills.query(account, since_ms, until_ms, limit)

    # -- placing and cancelling ---------------------------------------------------------------
    def place(self, account: str, symbol: str, side: Side, price: Decimal, size: Decimal,
              client_id: str | None = None, tif: str = "Alo", reduce_only: bool = False, *,
              time_ms: int | None = None, oid: int | None = None) -> PlaceOutcome:
        """`oid`: one taken from `reserve_oid()` (default: the next id)."""
        market = self._markets.get(symbol)
        side = side if isinstance(side, Side) else Side(side)
        price, size = to_decimal(price), to_decimal(size)
        now = self._now(market, time_ms)
        order = EngineOrder(None, account, symbol, side, price, size, client_id, tif, reduce_only, now,
                            updated_ms=now)
        reason, message = self._refusal(market, order)
        if reason is not None:
            return self._reject(order, reason, message)
        if oid is None:
            oid, self._next_oid = self._next_oid, self._next_oid + 1
        order.oid = oid
        self._orders[order.oid] = order
        if client_id is not None:
            self._by_cid[(account, client_id)] = order
            if self.client_id_scope == "ever":
                self._used_cids.setdefault(account, set()).add(client_id)
        if market.kind == "spot":
            base, quote = market.rules.base_asset, market.rules.quote_asset
            self._ledger.lock(account, *((quote, price * size) if side is Side.BUY else (base, size)))
        if market.price is not None and _crosses(side, price, market.price):
            fills = self._fill(market, order, market.price, order.size, False, now)
            if order.is_open:
                self._finish(order, OrderState.CANCELLED, now)
            return PlaceOutcome(True, order.oid, order.status, tuple(fills), client_id=client_id)
        if tif == "Ioc":
            self._finish(order, OrderState.CANCELLED, now, "Ioc order could not match")
            return PlaceOutcome(True, order.oid, order.status, _NO_FILLS, client_id=client_id,
                                message=order.message)
        market.book.add(order)
        self._open.setdefault(account, {}).setdefault(symbol, {})[order.oid] = order
        return PlaceOutcome(True, order.oid, order.status, _NO_FILLS, client_id=client_id)

    def _refusal(self, market: Market | None, order: EngineOrder) -> tuple[RejectReason | None, str]:
        """The first venue rule the order breaks, in the order venues check them."""
        if market is None:
            return RejectReason.OTHER, f"unknown market {order.symbol}"
        cid = order.client_id
        if cid is not None:
            existing = self._by_cid.get((order.account, cid))
            if (cid in self._used_cids.get(order.account, ()) if self.client_id_scope == "ever"
                    else existing is not None and existing.is_open):
                return RejectReason.DUPLICATE_CLIENT_ID, f"duplicate client order id {cid}"
        if order.tif not in TIFS:
            return RejectReason.OTHER, f"unknown time in force {order.tif!r}"
        rules = market.rules
        open_count = len(self._open.get(order.account, {}).get(order.symbol, ()))
        reason = rules.check(order.price, order.size, open_count)
        if reason is not None:
            return reason, rule_message(reason, rules, order, open_count)
        if order.reduce_only:
            if market.kind == "spot":
                return RejectReason.REDUCE_ONLY, "reduce-only orders exist only on perp markets"
            pos = self._ledger.position_size(order.account, order.symbol)
            if pos == 0 or (pos > 0) == (order.side is Side.BUY) or order.size > abs(pos):
                return RejectReason.REDUCE_ONLY, f"reduce-only order would increase position {pos}"
        price = market.price
        if order.tif == "Alo" and price is not None and _crosses(order.side, order.price, price):
            return (RejectReason.POST_ONLY_WOULD_CROSS,
                    f"post-only {order.side.value} at {order.price} would cross the price {price}")
        return self._funds_refusal(market, order)

    def _funds_refusal(self, market: Market, order: EngineOrder) -> tuple[RejectReason | None, str]:
        rules, account = market.rules, order.account
        if market.kind == "perp":
            if order.reduce_only:
                return None, ""
            need = order.price * order.size / market.leverage
            available = self.margin(account, rules.quote_asset).available
            if need > available:
                return (RejectReason.INSUFFICIENT_FUNDS,
                        f"order needs {need} {rules.quote_asset} margin, {available} available")
            return None, ""
        asset, need = ((rules.quote_asset, order.price * order.size) if order.side is Side.BUY
                       else (rules.base_asset, order.size))
        free = self._ledger.free(account, asset)
        if need > free:
            return RejectReason.INSUFFICIENT_FUNDS, f"order needs {need} {asset}, {free} free"
        return None, ""

    def _reject(self, order: EngineOrder, reason: RejectReason, message: str) -> PlaceOutcome:
        """Rejected orders get no id; a client id keeps pointing at an accepted order if it had one."""
        order.status, order.reason, order.message = OrderState.REJECTED, reason, message
        key = (order.account, order.client_id)
        if (order.client_id is not None and reason is not RejectReason.DUPLICATE_CLIENT_ID
                and (key not in self._by_cid or self._by_cid[key].oid is None)):
            self._by_cid[key] = order
        return PlaceOutcome(False, None, OrderState.REJECTED, _NO_FILLS, reason, message, order.client_id)

    def cancel(self, account: str, symbol: str, oid: int | None = None, client_id: str | None = None,
               *, time_ms: int | None = None) -> CancelOutcome:
        order = self._find(account, oid, client_id)
        if order is None or order.symbol != symbol or not order.is_open:
            what = f"oid {oid}" if oid is not None else f"client id {client_id}"
            return CancelOutcome(False, replace(order) if order else None, RejectReason.UNKNOWN_ORDER,
                                 f"order {what} was never placed, already cancelled, or filled")
        market = self._markets[symbol]
        market.book.remove(order)
        self._finish(order, OrderState.CANCELLED, self._now(market, time_ms))
        return CancelOutcome(True, replace(order))

    def fill_resting(self, account: str, oid: int, *, time_ms: int | None = None) -> list[EngineFill]:
        """Fill one resting order at its limit now, whatever the price: fault injection for a fill that
        races the client's cancel (C-6)."""
        order = self._find(account, oid, None)
        if order is None or not order.is_open:
            return []
        market = self._markets[order.symbol]
        size = self._fillable(market, order)
        if not size:
            return []
        market.book.remove(order)
        return self._fill(market, order, order.price, size, True, self._now(market, time_ms))

    def cancel_all(self, account: str, symbol: str, *, time_ms: int | None = None) -> list[EngineOrder]:
        """Cancel every open order of the account in the market; returns what was cancelled."""
        orders = list(self._open.get(account, {}).get(symbol, {}).values())
        return [self.cancel(account, symbol, o.oid, time_ms=time_ms).order for o in orders]

    # -- the market moves ---------------------------------------------------------------------
    def advance(self, symbol: str, time_ms: int, price: Decimal) -> list[EngineFill]:
        """Move the market to `price`; every resting order the move reaches fills at its limit
        (maker), nearest to the old price first. Cheap when nothing is reached."""
        market = self._markets[symbol]
        market.price = price
        market.time_ms = time_ms
        book = market.book
        best_bid, best_ask = book.best_bid, book.best_ask
        if (best_bid is None or price > best_bid) and (best_ask is None or price < best_ask):
            return []
        fills: list[EngineFill] = []
        for oid in book.pop_crossed(price):
            order = self._orders[oid]
            size = self._fillable(market, order)
            if size:
                fills.extend(self._fill(market, order, order.price, size, True, time_ms))
            if order.is_open:
                self._finish(order, OrderState.CANCELLED, time_ms,
                             "reduce-only remainder cancelled: it would increase the position")
        return fills

    def _fillable(self, market: Market, order: EngineOrder) -> Decimal:
        """A reduce-only order fills only as far as it still reduces the position."""
        if not order.reduce_only:
            return order.remaining
        pos = self._ledger.position_size(order.account, order.symbol)
        if pos == 0 or (pos > 0) == (order.side is Side.BUY):
            return ZERO
        return min(order.remaining, abs(pos))

    def _fill(self, market: Market, order: EngineOrder, price: Decimal, size: Decimal, maker: bool,
              now: int) -> list[EngineFill]:
        parts = split_size(self._rng, size, market.rules.lot_size) if self.partial_fills else (size,)
        fills = [self._execute(market, order, price, part, maker, now) for part in parts]
        if market.rules.is_complete(order.remaining):
            self._finish(order, OrderState.FILLED, now)
        return fills

    def _execute(self, market: Market, order: EngineOrder, price: Decimal, size: Decimal, maker: bool,
                 now: int) -> EngineFill:
        rate = market.maker_fee if maker else market.taker_fee
        rules = market.rules
        start = pnl = ZERO
        if market.kind == "perp":
            fee, fee_asset = price * size * rate, rules.quote_asset
            start, pnl = self._ledger.apply_perp_fill(order.account, order.symbol, fee_asset, order.side,
                                                      price, size, fee)
        else:
            fee, fee_asset = self._ledger.apply_spot_fill(order.account, rules.base_asset,
                                                          rules.quote_asset, order.side, order.price,
                                                          price, size, rate, self.fee_quantum)
        order.filled += size
        order.filled_notional += price * size
        order.updated_ms = now
        order.status = OrderState.PARTIALLY_FILLED
        fill = EngineFill(self._next_tid, order.oid, order.account, order.symbol, order.side, price,
                          size, fee, fee_asset, now, maker, order.client_id, start, pnl)
        self._next_tid += 1
        self._fills.add(fill)
        return fill

    def _finish(self, order: EngineOrder, status: OrderState, now: int, message: str = "") -> None:
        """Close an order (already out of the book); a spot order's unfilled part is unlocked."""
        remaining = order.remaining
        order.status, order.updated_ms = status, now
        if message:
            order.message = message
        self._open.get(order.account, {}).get(order.symbol, {}).pop(order.oid, None)
        market = self._markets[order.symbol]
        if market.kind == "spot" and remaining > 0:
            rules = market.rules
            if order.side is Side.BUY:
                self._ledger.unlock(order.account, rules.quote_asset, order.price * remaining)
            else:
                self._ledger.unlock(order.account, rules.base_asset, remaining)
        self._terminal.append(order.oid)
        limit = self.history_limit
        if limit is not None and len(self._terminal) > limit + limit // 4 + 1:
            while len(self._terminal) > limit:
                old = self._orders.pop(self._terminal.popleft(), None)
                if old is not None and self._by_cid.get((old.account, old.client_id)) is old:
                    del self._by_cid[(old.account, old.client_id)]

    def _find(self, account: str, oid: int | None, client_id: str | None) -> EngineOrder | None:
        order = self._orders.get(oid) if oid is not None else self._by_cid.get((account, client_id))
        if order is None or order.account != account:
            return None
        if oid is not None and client_id is not None and order.client_id != client_id:
            return None
        return order

    def _now(self, market: Market | None, time_ms: int | None) -> int:
        if time_ms is not None:
            return time_ms
        if self.clock is not None:
            return int(self.clock())
        return market.time_ms if market is not None else 0

    # -- persistence --------------------------------------------------------------------------
    def to_state(self) -> dict:
        """Everything the venue knows, as JSON-ready data (Decimals as strings)."""
        version, internal, gauss = self._rng.getstate()
        return {
            "format": _STATE_FORMAT,
            "settings": {"partial_fills": self.partial_fills, "client_id_scope": self.client_id_scope,
                         "history_limit": self.history_limit,
                         **({"fee_quantum": str(self.fee_quantum)} if self.fee_quantum is not None else {})},
            "next_tid": self._next_tid, "next_oid": self._next_oid,
            "rng": [version, list(internal), gauss],
            "markets": [m.to_dict() for m in self._markets.values()],
            "ledger": self._ledger.to_dict(),
            "orders": [o.to_list() for o in self._orders.values()],
            "terminal": list(self._terminal),
            "rejected": [o.to_list() for o in self._by_cid.values() if o.oid is None],
            "used_cids": {a: sorted(cids) for a, cids in self._used_cids.items()},
            "fills": [f.to_list() for f in self._fills],
        }

    @classmethod
    def from_state(cls, state: dict, clock: Callable[[], int] | None = None) -> "MatchingEngine":
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a matching engine state (format {state.get('format')!r})")
        settings = state["settings"]
        engine = cls(partial_fills=settings["partial_fills"], client_id_scope=settings["client_id_scope"],
                     history_limit=settings["history_limit"], clock=clock,
                     first_trade_id=state["next_tid"], first_oid=state["next_oid"],
                     fee_quantum=settings.get("fee_quantum"))
        version, internal, gauss = state["rng"]
        engine._rng.setstate((version, tuple(internal), gauss))
        for data in state["markets"]:
            market = Market.from_dict(data)
            engine._markets[market.rules.symbol] = market
        engine._ledger = Ledger.from_dict(state["ledger"])
        for data in state["rejected"]:
            order = EngineOrder.from_list(data)
            engine._by_cid[(order.account, order.client_id)] = order
        for data in state["orders"]:
            order = EngineOrder.from_list(data)
            engine._orders[order.oid] = order
            if order.client_id is not None:
                engine._by_cid[(order.account, order.client_id)] = order
            if order.is_open:
                engine._markets[order.symbol].book.add(order)
                engine._open.setdefault(order.account, {}).setdefault(order.symbol, {})[order.oid] = order
        engine._terminal = deque(state["terminal"])
        engine._used_cids = {a: set(cids) for a, cids in state["used_cids"].items()}
        for data in state["fills"]:
            engine._fills.add(EngineFill.from_list(data))
        return engine

    def save(self, path) -> None:
        write_json_atomic(path, self.to_state())

    @classmethod
    def load(cls, path, clock: Callable[[], int] | None = None) -> "MatchingEngine":
        return cls.from_state(read_json(path), clock)


def _crosses(side: Side, price: Decimal, market_price: Decimal) -> bool:
    return price >= market_price if side is Side.BUY else price <= market_price
