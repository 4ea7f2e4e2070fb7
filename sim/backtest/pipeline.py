"""The bot's state classes wired together in one process, without Thespian, on the paper exchange and
its simulated clock: every message goes through the same `routes` the actor shells use, in the order
they were sent (one FIFO queue stands for the mailboxes), and timers fire on simulated time.

Why not Thespian's simpleSystemBase: its timers (`wakeupAfter`) are wall-clock and fire only while an
ask/tell runs, so a replay through it cannot be driven by the candles' clock and is not bit-for-bit
repeatable. The state classes built here through each actor class's `make_state` ARE the actors' code
(the shells only translate Thespian messages into calls on them), so this is the faithful rehearsal.

It stands in for the supervisor only where a backtest needs it: the first rebuild, the trading mode,
and an emergency stop (cancel everything, flatten if asked).

Wall-clock time is kept out of every decision: the order book, the risk and the balance books take a
clock and get the simulated one (the order book ages orders by it: an order younger than 5 s at an
audit is not "lost", and its creation time starts a backfill); the venue's pacing clock is the
simulated one (the pipeline never pumps it). The journal is opened without fsync: a backtest's state
directory is scratch.
"""
from __future__ import annotations

import heapq
import importlib
from collections import deque
from itertools import count
from types import SimpleNamespace

from actors.gateway import Gateway
from actors.outbox import REPLY, SUPERVISOR, After, Out
from actors.roster import ACTOR_CLASSES, REBUILT
from adapters.factory import paper_settings
from adapters.journal import Journal
from adapters.paper import PaperExchange
from messages.commands import EmergencyStop, RequestCancels, RequestSnapshot
from messages.events import ExchangeSnapshot
from messages.lifecycle import Flatten, ModeChanged, Rebuild, Wire
from messages.types import Mode

__all__ = ["Pipeline", "BacktestVenue"]

_IMMEDIATE_S = 0.05         # timers this short (batch windows) fire as soon as the cascade ends


class BacktestVenue(PaperExchange):
    """The paper venue with one more way to walk: a candle leg by leg, stopping after every point
    that filled one of our orders, as the live paper venue's pump does (`stop_on_fill`). Every fill
    it pushes is also kept in `new_fills` until the backtest takes it (the report's markers)."""

    def __init__(self, *args, **kwargs):
        self.new_fills: list = []
        super().__init__(*args, **kwargs)

    def _push_fills(self, fills) -> None:
        self.new_fills.extend(fills)
        super()._push_fills(fills)

    def walk_until_fill(self, until_candle: int) -> int:
        """Walk the path up to the start of candle `until_candle`, stopping after the first point that
        filled something. Returns the points walked (0: nothing left before that candle)."""
        return self._walk(4, None, until_candle, stop_on_fill=True)


class Pipeline:
    def __init__(self, config, durable: bool = False):
        """`durable`: keep the journal's fsync (a benchmark of the live path); a backtest drops it."""
        self.config = config
        self.durable = durable
        wire = Wire((), config, None)
        self.exchange = BacktestVenue(paper_settings(config, persist=False), clock=self._clock_s)
        classes = {role: _actor_class(path) for role, path in ACTOR_CLASSES.items()}
        self.states = {"gateway": Gateway(self.exchange, 1.0, 0.0)}
        for role in REBUILT:
            self.states[role] = classes[role].make_state(SimpleNamespace(), wire)
        self._simulated_time()
        self.routes = {role: classes[role].routes for role in self.states}
        self.queue: deque = deque()
        self.timers: list[tuple[int, int, str, object]] = []     # heap of (due ms, seq, role, payload)
        self._seq = count()
        self.mode = Mode.STARTING
        self.emergencies: list[EmergencyStop] = []
        self.observers: list = []       # called as f(role, msg) for every message delivered
        self.delivered = 0              # messages handled by a state class

    @property
    def now_ms(self) -> int:
        return self.exchange.sim_time_ms

    def _clock_s(self) -> float:
        """The simulated clock in seconds (0 until the venue exists)."""
        exchange = getattr(self, "exchange", None)
        return exchange.sim_time_ms / 1000 if exchange is not None and hasattr(exchange, "_engine") else 0.0

    def _simulated_time(self) -> None:
        """Give every state class that takes a clock the simulated one, and drop the journal's fsync:
        neither changes what the actors decide, only what they would read from the wall clock."""
        for state in self.states.values():
            if callable(getattr(state, "clock", None)):
                state.clock = self._clock_s
            journal = getattr(state, "journal", None)
            if isinstance(journal, Journal) and not self.durable:
                journal._db.execute("PRAGMA synchronous=OFF")

    # -- delivery --------------------------------------------------------------------------------
    def send(self, role: str, msg, sender: str = SUPERVISOR) -> None:
        self.queue.append((role, msg, sender))

    def run(self) -> None:
        """Deliver until every mailbox is empty; timers of 50 ms or less fire when the cascade ends,
        longer ones when the simulated clock has reached them."""
        self._deliver()

    def _deliver(self) -> None:
        queue, routes, states, emit, observers = self.queue, self.routes, self.states, self._emit, self.observers
        delivered = 0
        try:
            while True:
                while queue:
                    role, msg, sender = queue.popleft()
                    if role == SUPERVISOR:
                        self._supervise(msg)
                        continue
                    if observers:
                        for observe in observers:
                            observe(role, msg)
                    method = routes[role].get(type(msg))
                    if method is None:
                        continue
                    delivered += 1
                    emit(role, sender, getattr(states[role], method)(msg))
                if not self._fire(self.now_ms):
                    return
        finally:
            self.delivered += delivered

    def _emit(self, role: str, sender: str, outputs) -> None:
        for item in outputs or ():
            if isinstance(item, Out):
                to = item.to
                if isinstance(to, str):
                    self.queue.append((sender if to == REPLY else to, item.msg, role))
                else:
                    for target in to:
                        self.queue.append((sender if target == REPLY else target, item.msg, role))
            elif isinstance(item, After):
                due = self.now_ms + (0 if item.seconds <= _IMMEDIATE_S else int(item.seconds * 1000))
                heapq.heappush(self.timers, (due, next(self._seq), role, item.payload))

    def _fire(self, now: int) -> bool:
        """Fire every timer due by `now`, earliest first (ties in the order they were set)."""
        timers = self.timers
        if not timers or timers[0][0] > now:
            return False
        due = []
        while timers and timers[0][0] <= now:
            due.append(heapq.heappop(timers))
        for _, _, role, payload in due:
            if payload == "pump":
                continue                # the pipeline drives the venue itself
            self._emit(role, role, self.states[role].on_timer(payload))
        return True

    def _supervise(self, msg) -> None:
        if isinstance(msg, ExchangeSnapshot) and self.mode is Mode.STARTING:
            version = Journal(self.config.state_path / "journal.db").version()
            for role in REBUILT:
                self.send(role, Rebuild(msg.state, version))
            self.set_mode(Mode.TRADING)
        elif isinstance(msg, EmergencyStop) and self.mode is Mode.TRADING:
            self.emergencies.append(msg)
            self.set_mode(Mode.EMERGENCY)
            self.send("orderbook", RequestCancels(all_orders=True, reason=msg.reason))
            if msg.flatten:
                self.send("risk", Flatten(msg.reason))

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        for role in REBUILT:
            self.send(role, ModeChanged(mode))

    # -- driving ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._emit("gateway", "gateway", self.states["gateway"].start())
        self.timers.clear()
        self.send("gateway", RequestSnapshot(1), SUPERVISOR)
        self.run()

    def step(self, candles: int = 1) -> int:
        """Walk whole candles, then let the bot react, as the gateway's pump would. Returns the
        points walked (0 at the end of the data)."""
        walked = self.exchange.advance_candles(candles)
        self._react()
        return walked

    def candle(self) -> int:
        """Finish the current candle with the bot reacting after every point that filled one of our
        orders (before the price moves on), and once at the close. Returns the points walked."""
        exchange = self.exchange
        path = exchange.path
        target = path.cursor[0] + 1
        walked = 0
        while not path.exhausted and path.cursor[0] < target:
            points = exchange.walk_until_fill(target)
            if not points:
                break
            walked += points
            self._react()
        return walked

    def _react(self) -> None:
        self._emit("gateway", "gateway", self.states["gateway"].drain())
        self.run()

    def status(self, role: str) -> dict:
        return self.states[role].on_status(SimpleNamespace(request_id=0))[0].msg.data

    def close(self) -> None:
        for state in self.states.values():
            closer = getattr(state, "close", None)
            if closer:
                closer()


def _actor_class(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)
