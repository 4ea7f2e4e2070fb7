"""The bot's state classes wired together in one process, without Thespian, on the paper exchange and
its simulated clock: every message goes through the same `routes` the actor shells use, in the order
they were sent (one FIFO queue stands for the mailboxes), and timers fire on simulated time. A month
of candles runs in seconds, so a test can check that risk limits hold over a whole month of data.

It stands in for the supervisor only where a test needs it: the first rebuild, the trading mode, and
an emergency stop (cancel everything, flatten if asked)."""
from __future__ import annotations

import importlib
from collections import deque
from types import SimpleNamespace

from actors.gateway import Gateway
from actors.outbox import REPLY, SUPERVISOR, After, Out
from actors.roster import ACTOR_CLASSES, REBUILT
from adapters.factory import paper_settings
from adapters.paper import PaperExchange
from adapters.journal import Journal
from messages.commands import EmergencyStop, RequestCancels, RequestSnapshot
from messages.events import ExchangeSnapshot
from messages.lifecycle import Flatten, ModeChanged, Rebuild, Wire
from messages.types import Mode


class Pipeline:
    def __init__(self, config):
        self.config = config
        wire = Wire((), config, None)
        self.exchange = PaperExchange(paper_settings(config, persist=False))
        classes = {role: _actor_class(path) for role, path in ACTOR_CLASSES.items()}
        self.states = {"gateway": Gateway(self.exchange, 1.0, 0.0)}
        for role in REBUILT:
            self.states[role] = classes[role].make_state(SimpleNamespace(), wire)
        self.routes = {role: classes[role].routes for role in self.states}
        self.queue: deque = deque()
        self.timers: list[tuple[int, str, object]] = []
        self.mode = Mode.STARTING
        self.emergencies: list[EmergencyStop] = []
        self.observers: list = []       # called as f(role, msg) for every message delivered

    @property
    def now_ms(self) -> int:
        return self.exchange.sim_time_ms

    # -- delivery --------------------------------------------------------------------------------
    def send(self, role: str, msg, sender: str = SUPERVISOR) -> None:
        self.queue.append((role, msg, sender))

    def run(self) -> None:
        """Deliver until every mailbox is empty; timers of 50 ms or less fire when the cascade ends."""
        while True:
            while self.queue:
                role, msg, sender = self.queue.popleft()
                if role == SUPERVISOR:
                    self._supervise(msg)
                    continue
                for observe in self.observers:
                    observe(role, msg)
                method = self.routes[role].get(type(msg))
                if method is None:
                    continue
                self._emit(role, sender, getattr(self.states[role], method)(msg))
            if not self._fire(self.now_ms):
                return

    def _emit(self, role: str, sender: str, outputs) -> None:
        for item in outputs or ():
            if isinstance(item, After):
                due = self.now_ms + (0 if item.seconds <= 0.05 else int(item.seconds * 1000))
                self.timers.append((due, role, item.payload))
            elif isinstance(item, Out):
                targets = (item.to,) if isinstance(item.to, str) else item.to
                for target in targets:
                    self.send(sender if target == REPLY else target, item.msg, role)

    def _fire(self, now: int) -> bool:
        due = [t for t in self.timers if t[0] <= now]
        if not due:
            return False
        self.timers = [t for t in self.timers if t[0] > now]
        for _, role, payload in due:
            if payload == "pump":
                continue
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
        """Walk the price path and let the bot react, as the gateway's pump would."""
        walked = self.exchange.advance_candles(candles)
        self._emit("gateway", "gateway", self.states["gateway"].drain())
        self.run()
        return walked

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
