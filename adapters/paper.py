"""The paper venue: the matching engine plus a price path, in-process, no keys, no network.

It plays the exchange, so its state must outlive the actors that use it: with `state_file` set, the
whole venue (engine and path cursor) is written atomically after every call that changes it and read
back at construction; a restarted venue resumes the path where it stopped, never jumping over the
downtime. Fills and prices are pushed like a stream (once `start_stream` was called) and stamped with
the path's simulated time.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Sequence

from adapters.base import CancelResult, Exchange, PlaceResult
from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    PriceTick,
    StreamUp,
)
from messages.reports import BalanceReport, FillReport, OrderReport, PositionReport, VenueState
from messages.types import FillSource, MarketRules, OrderState, RejectReason, Side
from sim.book import EngineFill, EngineOrder, read_json, write_json_atomic
from sim.engine import DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE, MatchingEngine
from sim.paths import PricePath, SyntheticCandles, load_candles_csv
from sim.stops import StopBook, StopOrder

__all__ = ["PaperSettings", "PaperExchange", "hyperliquid_btc_rules"]

_STATE_FORMAT = "gridbot-paper/1"


def hyperliquid_btc_rules() -> MarketRules:
    """BTC perp as Hyperliquid lists it: szDecimals 5, 5 significant figures, 6 - 5 = 1 price decimal."""
    return MarketRules(symbol="BTC", base_asset="BTC", quote_asset="USDC", lot_size=Decimal("0.00001"),
                       sig_figs=5, max_price_decimals=1, min_notional=Decimal("10"), max_orders=1000)


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """`speed` is simulated seconds per real second; `data` a candle CSV (None: synthetic candles from
    `seed`, starting at `start_price`). `max_points_per_pump` bounds one pump's work after a pause."""
    symbol: str = "BTC"
    kind: str = "perp"
    rules: MarketRules = field(default_factory=hyperliquid_btc_rules)
    data: str | None = None
    seed: int = 7
    speed: float = 120.0
    balances: tuple[tuple[str, Decimal], ...] = (("USDC", Decimal("10000")),)
    maker_fee: Decimal = DEFAULT_MAKER_FEE
    taker_fee: Decimal = DEFAULT_TAKER_FEE
    partial_fills: bool = False
    leverage: int = 10
    state_file: str | None = None
    account: str = "paper"
    start_price: Decimal = Decimal("40000")
    max_points_per_pump: int = 2000
    stop_on_fill: bool = True
    history_limit: int | None = 5_000


class PaperExchange(Exchange):
    name = "paper"
    paced = True

    def __init__(self, settings: PaperSettings = PaperSettings(), clock: Callable[[], float] = time.time):
        if settings.rules.symbol != settings.symbol:
            raise ValueError(f"rules are for {settings.rules.symbol}, the venue trades {settings.symbol}")
        self.settings = settings
        self._events: list = []
        self._streaming = False
        self._last_real_ms = int(clock() * 1000)
        self._generation = 0
        self._stops = StopBook()
        source = (load_candles_csv(settings.data) if settings.data
                  else SyntheticCandles(settings.seed, settings.start_price))
        if settings.state_file:
            os.makedirs(os.path.dirname(os.path.abspath(settings.state_file)), exist_ok=True)
        if settings.state_file and os.path.exists(settings.state_file):
            self._restore(source)
        else:
            self._engine = MatchingEngine(partial_fills=settings.partial_fills, seed=settings.seed,
                                          history_limit=settings.history_limit)
            self._engine.add_market(settings.rules, settings.kind, maker_fee=settings.maker_fee,
                                    taker_fee=settings.taker_fee, leverage=settings.leverage)
            for asset, amount in settings.balances:
                self._engine.fund(settings.account, asset, Decimal(amount))
            self._path = PricePath(source)
            first = self._path.next_point()
            if first is None:
                raise ValueError(f"price path {settings.data} has no candles")
            self._engine.advance(settings.symbol, first[0], first[1])
            self._sim_ms = first[0]
            self._save()

    # -- introspection (tests, backtests) ------------------------------------------------------
    @property
    def engine(self) -> MatchingEngine:
        return self._engine

    @property
    def path(self) -> PricePath:
        return self._path

    @property
    def sim_time_ms(self) -> int:
        return self._engine.time_ms(self.settings.symbol)

    # -- the Exchange interface ---------------------------------------------------------------
    def connect(self) -> None:
        """Nothing to open: the venue is in-process."""

    def rules(self) -> MarketRules:
        return self.settings.rules

    def snapshot(self, fills_since_ms: int | None = None) -> VenueState:
        s, engine = self.settings, self._engine
        rules = s.rules
        open_orders = tuple(_order_report(o) for o in engine.open_orders(s.account, s.symbol, copy=False)) + tuple(
            _stop_report(stop, s.symbol) for stop in self._stops.orders.values())
        fills = () if fills_since_ms is None else tuple(self.fills_since(fills_since_ms))
        balances = engine.balances(s.account)
        if s.kind == "perp":
            pos = engine.position(s.account, s.symbol)
            position = PositionReport(s.symbol, pos.size, pos.entry_price, pos.unrealized_pnl)
            margin = engine.margin(s.account, rules.quote_asset)
            reports = [BalanceReport(rules.quote_asset, margin.available, margin.used)]
            reports += [BalanceReport(a, b.free, b.locked) for a, b in balances.items()
                        if a != rules.quote_asset]
        else:
            base = balances.get(rules.base_asset)
            position = PositionReport(s.symbol, base.total if base else Decimal(0))
            reports = [BalanceReport(a, b.free, b.locked) for a, b in balances.items()]
        return VenueState(rules=rules, position=position, balances=tuple(reports),
                          open_orders=open_orders, fills=fills, mid=engine.mid(s.symbol),
                          time_ms=self.sim_time_ms)

    def place(self, orders: Sequence[OrderSpec]) -> list[PlaceResult]:
        if not orders:
            return []
        s = self.settings
        results: list[PlaceResult] = []
        taker: list[EngineFill] = []
        for spec in orders:
            if spec.symbol != s.symbol:
                results.append(OrderRejected(spec.client_id, RejectReason.OTHER,
                                             f"unknown symbol {spec.symbol}: this venue trades {s.symbol}"))
                continue
            if spec.trigger_price is not None:
                results.append(self._place_stop(spec))
                continue
            out = self._engine.place(s.account, s.symbol, spec.side, spec.price, spec.size,
                                     client_id=spec.client_id, tif="Alo" if spec.post_only else "Gtc",
                                     reduce_only=spec.reduce_only)
            if out.accepted:
                results.append(OrderAcked(spec.client_id, str(out.oid), out.status))
                taker.extend(out.fills)
            else:
                results.append(OrderRejected(spec.client_id, out.reason, out.message))
        if taker:
            self._push_fills(taker)
        self._save()
        return results

    def _place_stop(self, spec: OrderSpec):
        """Protective stops are reduce-only and rest off the book; the venue keeps them (and persists
        them) until the price reaches the trigger or they are cancelled."""
        if not spec.reduce_only:
            return OrderRejected(spec.client_id, RejectReason.REDUCE_ONLY, "stop orders must be reduce-only")
        if spec.client_id in self._stops.orders or self._engine.order_status(self.settings.account,
                                                                              client_id=spec.client_id):
            return OrderRejected(spec.client_id, RejectReason.DUPLICATE_CLIENT_ID, "duplicate client order id")
        oid = self._engine.reserve_oid()
        self._stops.add(StopOrder(oid, spec.client_id, spec.side, spec.trigger_price, spec.size, self.sim_time_ms))
        return OrderAcked(spec.client_id, str(oid), OrderState.OPEN)

    def _fire_stops(self, price: Decimal, time_ms: int) -> list[EngineFill]:
        fills: list[EngineFill] = []
        s = self.settings
        slip = Decimal("0.05")        # a stop-market order: executes at once, whatever the price
        for stop in self._stops.fire(price):
            held = self.snapshot().position.size
            closable = held if stop.side is Side.SELL else -held
            size = s.rules.round_size(min(stop.size, max(closable, Decimal(0))))
            if size <= 0:
                continue                # nothing to reduce: a triggered reduce-only stop just ends
            limit = s.rules.round_price(price * (1 - slip if stop.side is Side.SELL else 1 + slip))
            out = self._engine.place(s.account, s.symbol, stop.side, limit, size, client_id=stop.client_id,
                                     tif="Ioc", reduce_only=s.kind == "perp", time_ms=time_ms, oid=stop.oid)
            fills.extend(out.fills)
        return fills

    def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[CancelResult]:
        if not orders:
            return []
        s = self.settings
        results: list[CancelResult] = []
        for client_id, exchange_id in orders:
            oid = int(exchange_id) if exchange_id and exchange_id.isdigit() else None
            if oid is None and client_id is None:
                results.append(CancelFailed(client_id, "no order id given", ambiguous=False))
                continue
            if self._stops.cancel(client_id, oid) is not None:
                results.append(OrderCancelled(client_id))
                continue
            out = self._engine.cancel(s.account, s.symbol, oid=oid, client_id=client_id)
            if out.ok:
                results.append(OrderCancelled(client_id))
            else:
                # A known order that is no longer open was filled or cancelled: ask its status.
                results.append(CancelFailed(client_id, out.message, ambiguous=out.order is not None))
        self._save()
        return results

    def order_status(self, client_ids: Sequence[str]) -> list[OrderReport | None]:
        account = self.settings.account
        reports = []
        for cid in client_ids:
            stop = self._stops.orders.get(cid)
            record = None if stop else self._engine.order_status(account, client_id=cid)
            reports.append(_stop_report(stop, self.settings.symbol) if stop else
                           None if record is None else _order_report(record))
        return reports

    def fills_since(self, since_ms: int) -> list[FillReport]:
        return [_fill_report(f) for f in self._engine.fills(self.settings.account, since_ms=since_ms)]

    def start_stream(self) -> None:
        if not self._streaming:
            self._streaming = True
            self._events.append(StreamUp(self.sim_time_ms))

    def drain_events(self) -> list:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        self._save()

    # -- the market moves ---------------------------------------------------------------------
    def pump(self, now_ms: int) -> None:
        """Walk the path by the real time since the last pump times `speed`, at most
        `max_points_per_pump` points; what is left over is walked by the next pumps."""
        elapsed = now_ms - self._last_real_ms
        self._last_real_ms = now_ms
        if elapsed > 0:
            self._sim_ms += int(elapsed * self.settings.speed)
        self._walk(self.settings.max_points_per_pump, self._sim_ms, stop_on_fill=self.settings.stop_on_fill)

    def advance_points(self, count: int) -> int:
        """Walk exactly `count` path points (fewer at the end of a CSV), ignoring the wall clock:
        the driver of a simulated-clock backtest. Returns how many points were walked."""
        return self._walk(count, None)

    def advance_candles(self, count: int = 1) -> int:
        """Walk to the start of the candle `count` candles ahead (the whole current candle for 1):
        one call per candle gives a backtest the bar-by-bar rhythm. Returns the points walked."""
        return self._walk(4 * count, None, self._path.cursor[0] + count)

    def _walk(self, max_points: int, until_ms: int | None, until_candle: int | None = None,
              stop_on_fill: bool = False) -> int:
        path, advance, symbol = self._path, self._engine.advance, self.settings.symbol
        fills: list[EngineFill] = []
        last = None
        walked = 0
        while walked < max_points:
            if until_candle is not None and path.cursor[0] >= until_candle:
                break
            if until_ms is not None:
                upcoming = path.peek()
                if upcoming is None or upcoming[0] > until_ms:
                    break
            point = path.next_point()
            if point is None:
                break
            got = advance(symbol, point[0], point[1])
            if self._stops.orders:
                got = got + self._fire_stops(point[1], point[0])
            last = point
            walked += 1
            if got:
                fills.extend(got)
                if stop_on_fill:
                    break           # the bot reacts before the price moves on
        if last is not None:
            self._sim_ms = max(self._sim_ms, last[0])
            if fills:
                self._push_fills(fills)
            if self._streaming:
                self._events.append(PriceTick(symbol, last[1], last[0]))
            self._save(price_only=not fills)
        return walked

    def _push_fills(self, fills: list[EngineFill]) -> None:
        if self._streaming:
            self._events.append(FillsReceived(FillSource.WS, tuple(_fill_report(f) for f in fills)))

    # -- persistence --------------------------------------------------------------------------
    def _source_id(self) -> dict:
        """What the saved cursor is a position in: resuming it on another path would be nonsense."""
        s = self.settings
        path = os.path.realpath(s.data) if s.data else f"synthetic:{s.seed}:{s.start_price}"
        return {"symbol": s.symbol, "kind": s.kind, "account": s.account, "path": path}

    def _save(self, price_only: bool = False) -> None:
        """Persist the venue. A walk that filled nothing changed only the price and the cursor: it
        rewrites a small cursor file tagged with the generation of the full state it extends, so
        quiet pumps stay cheap however long the fill history is."""
        state_file = self.settings.state_file
        if not state_file:
            return
        if price_only:
            write_json_atomic(state_file + ".cursor", {
                "generation": self._generation, "cursor": list(self._path.cursor), "sim_ms": self._sim_ms,
                "price": str(self._engine.mid(self.settings.symbol)), "time_ms": self.sim_time_ms})
            return
        self._generation += 1
        write_json_atomic(state_file, {
            "format": _STATE_FORMAT, "source": self._source_id(), "generation": self._generation,
            "cursor": list(self._path.cursor), "sim_ms": self._sim_ms, "engine": self._engine.to_state(),
            "stops": self._stops.to_list()})

    def _restore(self, source) -> None:
        state_file = self.settings.state_file
        state = read_json(state_file)
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"{state_file}: not a paper venue state file")
        if state["source"] != self._source_id():
            raise ValueError(f"{state_file}: saved for {state['source']}, not for {self._source_id()}")
        self._engine = MatchingEngine.from_state(state["engine"])
        self._stops = StopBook.from_list(state.get("stops", []))
        self._generation = int(state["generation"])
        cursor, self._sim_ms = tuple(state["cursor"]), int(state["sim_ms"])
        if os.path.exists(state_file + ".cursor"):
            moved = read_json(state_file + ".cursor")
            if moved["generation"] == self._generation:
                # Those points filled nothing, so the last price reaches no resting order either.
                self._engine.advance(self.settings.symbol, int(moved["time_ms"]), Decimal(moved["price"]))
                cursor, self._sim_ms = tuple(moved["cursor"]), int(moved["sim_ms"])
        self._path = PricePath(source, cursor=cursor)


def _fill_report(fill: EngineFill) -> FillReport:
    return FillReport(trade_id=str(fill.trade_id), symbol=fill.symbol, side=fill.side, price=fill.price,
                      size=fill.size, fee=fill.fee, fee_asset=fill.fee_asset, time_ms=fill.time_ms,
                      client_id=fill.client_id, exchange_order_id=str(fill.oid), maker=fill.maker)


def _stop_report(stop: StopOrder, symbol: str) -> OrderReport:
    return OrderReport(client_id=stop.client_id, exchange_order_id=str(stop.oid), symbol=symbol, side=stop.side,
                       price=stop.trigger, size=stop.size, filled=Decimal(0), state=OrderState.OPEN,
                       reduce_only=True, time_ms=stop.created_ms, trigger_price=stop.trigger)


def _order_report(order: EngineOrder) -> OrderReport:
    return OrderReport(client_id=order.client_id,
                       exchange_order_id=None if order.oid is None else str(order.oid),
                       symbol=order.symbol, side=order.side, price=order.price, size=order.size,
                       filled=order.filled, state=order.status, reduce_only=order.reduce_only,
                       time_ms=order.created_ms)
