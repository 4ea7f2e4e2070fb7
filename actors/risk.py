"""RiskActor: limits on every order intent, whatever its origin.

It rejects intents computed from a position older than the one it knows (M-4, C-1) and holds those
computed from a newer one until the position reaches it. Exposure counts the position plus every
approved order still live, so a burst of intents cannot together break max_position.
"""
from __future__ import annotations

from decimal import Decimal

from actors.outbox import REPLY, After, Out
from actors.shell import ActorShell
from messages.commands import ApprovedIntents, OrderIntents, OrderSpec
from messages.events import (
    ExchangeError,
    FillsRecorded,
    IntentRefused,
    IntentsRefused,
    OrdersChanged,
    PositionChanged,
)
from messages.lifecycle import ModeChanged, Rebuild, Reconciled, StatusReport, StatusRequest
from messages.types import ZERO, Mode, Origin, Side

_HOLD_EXPIRY = "hold-expiry"
_HOLD_SECONDS = 2.0


def _origin_role(origin: Origin) -> str:
    return {Origin.GRID: "grid", Origin.RISK: "risk", Origin.ADMIN: "supervisor"}[origin]


class RiskBook:
    def __init__(self, max_position: Decimal, max_open_orders: int):
        self.max_position = max_position
        self.max_open_orders = max_open_orders
        self.position = ZERO
        self.version = -1
        self.fills_version = 0       # the newest journaled fill we know of: intents older than it are stale
        self.mode = Mode.STARTING
        self.live: dict[str, tuple[Side, Decimal]] = {}   # cid -> (side, remaining)
        self.held: list[OrderIntents] = []
        self.refused = {"stale": 0, "limit": 0, "mode": 0}
        self.errors: dict[str, int] = {}
        self.last_error = ""

    def exposure(self, side: Side) -> Decimal:
        return sum((rem for s, rem in self.live.values() if s is side), ZERO)

    def _check(self, spec: OrderSpec) -> str | None:
        if spec.reduce_only:
            reduces = (self.position > 0 and spec.side is Side.SELL) or (self.position < 0 and spec.side is Side.BUY)
            return None if reduces and spec.size <= abs(self.position) else "reduce-only order would not reduce"
        if len(self.live) >= self.max_open_orders:
            return f"max open orders {self.max_open_orders}"
        if spec.side is Side.BUY and self.position + self.exposure(Side.BUY) + spec.size > self.max_position:
            return f"max position {self.max_position}"
        if spec.side is Side.SELL and self.position - self.exposure(Side.SELL) - spec.size < -self.max_position:
            return f"max position {self.max_position}"
        return None

    def _evaluate(self, intents: OrderIntents) -> list:
        refusals, approved = [], []
        for spec in intents.orders:
            if self.mode is not Mode.TRADING and spec.origin is Origin.GRID:
                reason, key = f"mode is {self.mode.value}", "mode"
            elif intents.position_version < self.version:
                reason, key = f"stale position version {intents.position_version} < {self.version}", "stale"
            elif 0 <= intents.position_version < self.fills_version * 1000:
                reason, key = (f"position version {intents.position_version} predates journaled fill "
                               f"{self.fills_version}", "stale")
            else:
                reason = self._check(spec)
                key = "limit"
            if reason:
                self.refused[key] += 1
                refusals.append(IntentRefused(spec.client_id, reason, spec.origin, spec.level))
            else:
                self.live[spec.client_id] = (spec.side, spec.size)
                approved.append(spec)
        out = []
        if approved:
            out.append(Out("balance", ApprovedIntents(tuple(approved), intents.position_version)))
        if refusals:
            out.append(Out(_origin_role(intents.origin), IntentsRefused(tuple(refusals))))
        return out

    def on_intents(self, msg: OrderIntents) -> list:
        if msg.position_version > self.version:
            self.held.append(msg)
            return [After(_HOLD_SECONDS, _HOLD_EXPIRY)]
        return self._evaluate(msg)

    def _release_held(self, expire: bool = False) -> list:
        out, keep = [], []
        for intents in self.held:
            if intents.position_version <= self.version or expire:
                if expire and intents.position_version > self.version:
                    intents = OrderIntents(intents.orders, -1, intents.origin)
                out += self._evaluate(intents)
            else:
                keep.append(intents)
        self.held = keep
        return out

    def on_position(self, msg: PositionChanged) -> list:
        if msg.version < self.version:
            return []
        self.position, self.version = msg.position, msg.version
        return self._release_held()

    def on_fills(self, msg: FillsRecorded) -> list:
        """A fill is journaled: until the ledger's PositionChanged includes it, intents computed
        without it are refused (M-4), even if they arrive first."""
        self.fills_version = max(self.fills_version, msg.version)
        return []

    def on_timer(self, payload) -> list:
        return self._release_held(expire=True) if payload == _HOLD_EXPIRY else []

    def on_orders(self, msg: OrdersChanged) -> list:
        for u in msg.updates:
            if u.state.terminal:
                self.live.pop(u.client_id, None)
            else:
                self.live[u.client_id] = (u.side, u.size - u.filled)
        return []

    def on_refused(self, msg: IntentsRefused) -> list:
        for r in msg.refusals:
            self.live.pop(r.client_id, None)
        return []

    def on_error(self, msg: ExchangeError) -> list:
        self.errors[msg.kind] = self.errors.get(msg.kind, 0) + 1
        self.last_error = msg.message
        return []

    def on_mode(self, msg: ModeChanged) -> list:
        self.mode = msg.mode
        return []

    def on_rebuild(self, msg: Rebuild) -> list:
        self.position = msg.state.position.size
        self.version = max(self.version, msg.journal_version * 1000)
        self.live = {o.client_id: (o.side, o.remaining) for o in msg.state.open_orders if o.client_id}
        return [Out(REPLY, Reconciled("risk", True, f"{len(self.live)} live orders"))]

    def on_status(self, msg: StatusRequest) -> list:
        data = {"position": self.position, "version": self.version, "live_orders": len(self.live),
                "refused": dict(self.refused), "fills_version": self.fills_version,
                "errors": dict(self.errors), "last_error": self.last_error,
                "max_position": self.max_position}
        return [Out(REPLY, StatusReport("risk", msg.request_id, data))]


class RiskActor(ActorShell):
    role = "risk"
    routes = {OrderIntents: "on_intents", PositionChanged: "on_position", OrdersChanged: "on_orders",
              FillsRecorded: "on_fills",
              IntentsRefused: "on_refused", ExchangeError: "on_error", ModeChanged: "on_mode",
              Rebuild: "on_rebuild", StatusRequest: "on_status"}

    def make_state(self, wire):
        return RiskBook(wire.config.risk.max_position, wire.config.risk.max_open_orders)
