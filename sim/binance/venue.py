"""The simulated Binance spot venue's state: the matching engine, one price path per symbol, the API
keys, what Binance knows of each order beyond the engine's record (wire type, stop, list), the OCO
lists, and persistence.

The clock is the wall clock (epoch ms) plus the `clock_skew_ms` fault: fills, orders and `serverTime`
carry it, while each symbol's candle path only supplies prices, walked at `speed` simulated seconds per
real second. Every operation collects its user-data events in an `Outbox`; `commit()` persists the venue
first and only then hands the outbox to the listener (the WebSocket hubs), so a pushed fill is never
one a restarted venue has forgotten. Trading lives in `orders.Trading` (orders, stops) and
`lists.Lists` (OCO, cancel-all, cancel-replace).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from sim.binance import protocol as P
from sim.binance.limits import Limits
from sim.binance.lists import Lists
from sim.book import read_json, write_json_atomic
from sim.engine import MatchingEngine
from sim.paths import PricePath, SyntheticCandles, load_candles_csv

__all__ = ["VenueSettings", "Outbox", "BnVenue", "wall_ms"]

_FORMAT = "gridbot-bn-sim/1"
_MAX_POINTS_PER_TICK = 20_000
HISTORY = 100_000        # finished orders and fills kept per account (myTrades/allOrders reach this far)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class VenueSettings:
    """`data` drives the first symbol; the others follow SyntheticCandles(seed + index)."""
    symbols: tuple[str, ...] = ("BTCUSDT",)
    data: str | None = None
    speed: float = 60.0
    seed: int = 7
    state: str | None = None


@dataclass
class Outbox:
    """What one operation produced: user-data events per account (in order), public trades per symbol,
    and the symbols whose book changed."""
    events: list[tuple[str, dict]] = field(default_factory=list)
    trades: list[tuple[str, dict]] = field(default_factory=list)
    books: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.events or self.trades or self.books)


class BnVenue(Lists):
    def __init__(self, settings: VenueSettings, clock: Callable[[], int] = wall_ms,
                 listener: Callable[[Outbox], None] | None = None, state: dict | None = None):
        """Resume from `state` (an in-memory restart), else from the settings' state file if it exists,
        else start fresh."""
        unknown = [s for s in settings.symbols if s not in P.SPECS]
        if unknown:
            raise ValueError(f"unknown symbol {unknown[0]!r} (listed: {', '.join(P.SPECS)})")
        self.settings = settings
        self.clock = clock
        self.listener = listener
        self.skew_ms = 0
        self.limits = Limits()
        self.symbols = list(settings.symbols)
        self._sources = {}
        for index, symbol in enumerate(self.symbols):
            if index == 0 and settings.data:
                self._sources[symbol] = (load_candles_csv(settings.data), os.path.realpath(settings.data))
            else:
                start = P.SPECS[symbol].start_price
                self._sources[symbol] = (SyntheticCandles(settings.seed + index, start),
                                         f"synthetic:{settings.seed + index}:{start}")
        self.out = Outbox()
        self._touched: dict[str, set[str]] = {}
        self.dirty = False
        self._generation = 0
        self._last_cursor_save = 0
        if settings.state:
            os.makedirs(os.path.dirname(os.path.abspath(settings.state)), exist_ok=True)
        if state is not None:
            self.restore(state)
        elif settings.state and os.path.exists(settings.state):
            self.restore(read_json(settings.state))
        else:
            self._fresh()
            self.save()

    # -- setup and persistence ------------------------------------------------------------------
    def _fresh(self) -> None:
        now = self.now()
        self.engine = MatchingEngine(client_id_scope="open", history_limit=HISTORY, seed=self.settings.seed,
                                     fee_quantum=P.EIGHT)
        self.paths: dict[str, PricePath] = {}
        self.sim_ms: dict[str, int] = {}
        for symbol in self.symbols:
            self.engine.add_market(P.market_rules(P.SPECS[symbol]), "spot", maker_fee=P.FEE_RATE,
                                   taker_fee=P.FEE_RATE)
            path = PricePath(self._sources[symbol][0])
            first = path.next_point()
            if first is None:
                raise ValueError(f"price path for {symbol} has no candles")
            self.engine.advance(symbol, now, first[1])
            self.paths[symbol], self.sim_ms[symbol] = path, first[0]
        self.secrets: dict[str, str] = {}
        self.infos: dict[int, P.OrderInfo] = {}
        self.lists: dict[int, P.OrderList] = {}
        self.by_cid: dict[tuple[str, str], int] = {}
        self.next_list_id = 1
        self.book_seq = 1
        self.paused = False
        self._last_real = self.clock()

    def to_state(self) -> dict:
        return {"format": _FORMAT, "generation": self._generation,
                "sources": {s: self._sources[s][1] for s in self.symbols},
                "engine": self.engine.to_state(),
                "paths": {s: {"cursor": list(self.paths[s].cursor), "sim_ms": self.sim_ms[s]} for s in self.symbols},
                "secrets": self.secrets, "orders": [i.to_list() for i in self.infos.values()],
                "lists": [lst.to_list() for lst in self.lists.values()], "next_list_id": self.next_list_id,
                "book_seq": self.book_seq, "paused": self.paused}

    def restore(self, state: dict) -> None:
        """Resume from a saved venue; the paths continue where they stopped (no jump over downtime)."""
        if state.get("format") != _FORMAT:
            raise ValueError(f"{self.settings.state}: not a Binance simulator state file")
        sources = {s: self._sources[s][1] for s in self.symbols}
        if state["sources"] != sources:
            raise ValueError(f"{self.settings.state}: saved for price paths {state['sources']}, not {sources}")
        self.engine = MatchingEngine.from_state(state["engine"])
        self._generation = int(state["generation"])
        cursor_file = f"{self.settings.state}.cursor" if self.settings.state else None
        moved = read_json(cursor_file) if cursor_file and os.path.exists(cursor_file) else None
        if moved is not None and moved.get("generation") != self._generation:
            moved = None
        now = self.now()
        self.paths, self.sim_ms = {}, {}
        for symbol in self.symbols:
            saved = moved["paths"][symbol] if moved else state["paths"][symbol]
            self.paths[symbol] = PricePath(self._sources[symbol][0], cursor=tuple(saved["cursor"]))
            self.sim_ms[symbol] = int(saved["sim_ms"])
            if moved:   # those points reached no resting order, so replaying the last one fills nothing
                self.engine.advance(symbol, now, Decimal(saved["price"]))
        self.secrets = dict(state["secrets"])
        self.infos = {}
        self.by_cid = {}
        for data in state["orders"]:
            info = P.OrderInfo.from_list(data)
            self.infos[info.oid] = info
            self.by_cid[(info.account, info.client_id)] = info.oid
        self.lists = {lst.list_id: lst for lst in map(P.OrderList.from_list, state["lists"])}
        self.next_list_id = int(state["next_list_id"])
        self.book_seq = int(state["book_seq"])
        self.paused = bool(state["paused"])
        self._last_real = self.clock()

    def save(self) -> None:
        """Persist everything (after any change other than a quiet price move)."""
        if not self.settings.state:
            return
        self._generation += 1
        write_json_atomic(self.settings.state, self.to_state())

    def save_cursor(self, now: int) -> None:
        """Persist only the paths' positions and prices: cheap, so quiet price moves stay cheap."""
        if not self.settings.state:
            return
        self._last_cursor_save = now
        write_json_atomic(f"{self.settings.state}.cursor", {"generation": self._generation, "paths": {
            s: {"cursor": list(self.paths[s].cursor), "sim_ms": self.sim_ms[s],
                "price": str(self.engine.mid(s))} for s in self.symbols}})

    def commit(self) -> bool:
        """Persist if anything but a quiet price move changed, then publish what changed (a push must
        never run ahead of the saved state). Returns whether it saved."""
        out, self.out = self.out, Outbox()
        saved = self.dirty or bool(out.events)
        if saved:
            self.dirty = False
            self._prune()
            self.save()
        if out and self.listener is not None:
            self.listener(out)
        return saved

    def _prune(self) -> None:
        """Forget what the engine forgot: finished orders beyond its history."""
        if len(self.infos) <= HISTORY + HISTORY // 4:
            return
        for oid in sorted(self.infos)[:len(self.infos) - HISTORY]:
            info = self.infos[oid]
            if not info.trigger and self.engine.order_status(info.account, oid=oid) is None:
                del self.infos[oid]
                if self.by_cid.get((info.account, info.client_id)) == oid:
                    del self.by_cid[(info.account, info.client_id)]

    # -- time and accounts ------------------------------------------------------------------------
    def now(self) -> int:
        """Server time: the wall clock plus the clock-skew fault."""
        return self.clock() + self.skew_ms

    def add_account(self, api_key: str, secret: str) -> None:
        self.secrets[api_key] = secret
        self.dirty = True

    def fund(self, account: str, asset: str, amount: Decimal) -> None:
        """A deposit (or, negative, a withdrawal): balanceUpdate then outboundAccountPosition."""
        if account not in self.secrets:
            raise ValueError(f"unknown account {account!r}")
        self.engine.fund(account, asset, Decimal(amount))
        now = self.now()
        self.out.events.append((account, P.balance_update(asset, Decimal(amount), now)))
        self.position_event(account, {asset}, now)
        self.dirty = True

    def position_event(self, account: str, assets, now: int) -> None:
        self.out.events.append((account, P.account_position(self.engine.balances(account), assets, now)))

    # -- the market moves -------------------------------------------------------------------------
    def set_price(self, symbol: str, price: Decimal) -> None:
        self.advance(symbol, self.now(), price)
        self.dirty = True

    def tick(self, real_now: int) -> None:
        """Walk every path by the real time since the last tick times `speed`."""
        elapsed = max(0, real_now - self._last_real)
        self._last_real = real_now
        now = self.now()
        if not self.paused and elapsed:
            for symbol in self.symbols:
                path = self.paths[symbol]
                target = self.sim_ms[symbol] + int(elapsed * self.settings.speed)
                for _ in range(_MAX_POINTS_PER_TICK):
                    point = path.peek()
                    if point is None or point[0] > target:
                        break
                    path.next_point()
                    self.advance(symbol, now, point[1])
                else:   # a long stall is walked over several ticks, never skipped
                    target = point[0]
                self.sim_ms[symbol] = target
        if not self.commit() and self.settings.state and real_now - self._last_cursor_save >= 1000:
            self.save_cursor(real_now)
