"""BalanceActor: funds and reservations. Every order, whatever its origin, reserves here before it is
sent (B-1.1); an order without funds is refused without an API call. Reservations are released when
an order ends (cancel, reject, fill)."""
from __future__ import annotations

import time
from decimal import Decimal

from actors.outbox import REPLY, Out
from actors.rebalance import Rebalancer
from actors.shell import ActorShell
from messages.commands import ApprovedIntents, OrderIntents, OrderSpec, RequestCancels, SubmitOrders
from messages.events import (
    ExchangeSnapshot,
    FillsRecorded,
    IntentRefused,
    IntentsRefused,
    OrdersChanged,
    PositionChanged,
    PriceTick,
)
from messages.lifecycle import Rebuild, Reconciled, StatusReport, StatusRequest
from messages.reports import VenueState
from messages.types import ZERO, Origin, Side


class Funds:
    """Spot: per-asset totals minus reservations. Perp: collateral minus position margin minus order
    margin (price * size / leverage); reduce-only orders need no margin."""

    def __init__(self, kind: str, base: str, quote: str, leverage: int):
        self.kind, self.base, self.quote, self.leverage = kind, base, quote, Decimal(leverage)
        self.totals: dict[str, Decimal] = {}
        self.reserved: dict[str, tuple[str, Decimal, Decimal]] = {}   # cid -> (asset, amount, size)
        self.position = ZERO
        self.mark = ZERO
        self.refusals = 0

    def _need(self, spec: OrderSpec) -> tuple[str, Decimal]:
        if self.kind == "perp":
            return (self.quote, ZERO if spec.reduce_only else spec.price * spec.size / self.leverage)
        if spec.side is Side.BUY:
            return (self.quote, spec.price * spec.size)
        return (self.base, spec.size)

    def available(self, asset: str) -> Decimal:
        total = self.totals.get(asset, ZERO)
        if self.kind == "perp" and asset == self.quote:
            total -= abs(self.position) * self.mark / self.leverage
        return total - sum((amt for a, amt, _ in self.reserved.values() if a == asset), ZERO)

    def reserve(self, spec: OrderSpec) -> bool:
        if spec.client_id in self.reserved:
            return True
        asset, amount = self._need(spec)
        if amount > self.available(asset):
            self.refusals += 1
            return False
        self.reserved[spec.client_id] = (asset, amount, spec.size)
        return True

    def release(self, client_id: str, size: Decimal | None = None) -> None:
        """Release all of a reservation, or the part that `size` of it used."""
        held = self.reserved.get(client_id)
        if held is None:
            return
        asset, amount, left = held
        if size is None or size >= left:
            del self.reserved[client_id]
            return
        self.reserved[client_id] = (asset, amount * (left - size) / left, left - size)

    def on_fill(self, fill) -> None:
        if self.kind == "spot":
            notional = fill.price * fill.size
            sign = 1 if fill.side is Side.BUY else -1
            self.totals[self.base] = self.totals.get(self.base, ZERO) + sign * fill.size
            self.totals[self.quote] = self.totals.get(self.quote, ZERO) - sign * notional
        self.totals[fill.fee_asset] = self.totals.get(fill.fee_asset, ZERO) - fill.fee
        if fill.client_id:
            self.release(fill.client_id, fill.size)

    def load(self, state: VenueState) -> None:
        self.totals = {b.asset: b.total for b in state.balances}
        self.position = state.position.size
        if state.mid is not None:
            self.mark = state.mid
        self.reserved.clear()
        for order in state.open_orders:
            if order.client_id:
                spec = OrderSpec(order.client_id, order.symbol, order.side, order.price, order.remaining,
                                 reduce_only=order.reduce_only)
                asset, amount = self._need(spec)
                self.reserved[order.client_id] = (asset, amount, order.remaining)


class Balances:
    def __init__(self, funds: Funds, rebalancer: Rebalancer | None = None, clock=time.time):
        self.funds = funds
        self.rebalancer = rebalancer if funds.kind == "spot" else None
        self.clock = clock
        self.rules = None
        self.version = 0

    def on_rebuild(self, msg: Rebuild) -> list:
        self.rules = msg.state.rules
        self.funds.base, self.funds.quote = msg.state.rules.base_asset, msg.state.rules.quote_asset
        self.funds.load(msg.state)
        self.version = max(self.version, msg.journal_version * 1000)
        return [Out(REPLY, Reconciled("balance", True, "balances loaded"))]

    def on_approved(self, msg: ApprovedIntents) -> list:
        accepted, refused, short = [], [], {}
        for spec in msg.orders:
            if self.funds.reserve(spec):
                accepted.append(spec)
            else:
                refused.append(IntentRefused(spec.client_id, "insufficient funds", spec.origin, spec.level,
                                             "funds"))
                if spec.origin is Origin.GRID:
                    short[spec.side] = short.get(spec.side, ZERO) + spec.size
                elif spec.origin is Origin.REBALANCE and self.rebalancer:
                    self.rebalancer.ended(spec.client_id)
        out = self._rebalance(short)
        if accepted:
            out.append(Out("orderbook", SubmitOrders(tuple(accepted))))
        if refused:
            origins = {r.origin for r in refused}
            targets = tuple({"grid" if o is Origin.GRID else "risk" for o in origins} | {"risk"})
            out.append(Out(targets, IntentsRefused(tuple(refused))))
        return out

    def _rebalance(self, short: dict) -> list:
        """Grid intents refused for funds on one side only: a deadlock worth one rebalance order."""
        if self.rebalancer is None or len(short) != 1:
            return []
        (side, need), = short.items()
        f = self.funds
        spec = self.rebalancer.propose(side, need, f.available(f.base), f.available(f.quote), f.mark or None,
                                       self.rules, self.version, self.clock())
        return [Out("risk", OrderIntents((spec,), self.version, Origin.REBALANCE))] if spec else []

    def on_refused(self, msg: IntentsRefused) -> list:
        for r in msg.refusals:
            if r.origin is Origin.REBALANCE and self.rebalancer:
                self.rebalancer.ended(r.client_id)
        return []

    def on_fills(self, msg: FillsRecorded) -> list:
        for fill in msg.fills:
            self.funds.on_fill(fill)
        return []

    def on_orders(self, msg: OrdersChanged) -> list:
        for u in msg.updates:
            if u.state.terminal:
                self.funds.release(u.client_id)
                if u.origin is Origin.REBALANCE and self.rebalancer:
                    self.rebalancer.ended(u.client_id, u.filled)
        return []

    def on_position(self, msg: PositionChanged) -> list:
        self.funds.position = msg.position
        self.version = max(self.version, msg.version)
        return []

    def on_tick(self, msg: PriceTick) -> list:
        self.funds.mark = msg.mid
        stale = self.rebalancer.expired(self.clock()) if self.rebalancer else None
        if stale:
            self.rebalancer.next_at = self.clock() + self.rebalancer.cooldown_s
            return [Out("orderbook", RequestCancels((stale,), reason="rebalance order did not fill in time"))]
        return []

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        """Audit: totals come from the exchange again (fees, funding and PnL settle there)."""
        self.funds.totals = {b.asset: b.total for b in msg.state.balances}
        return []

    def on_status(self, msg: StatusRequest) -> list:
        f = self.funds
        data = {"totals": dict(f.totals), "reserved": sum((a for _, a, _ in f.reserved.values()), ZERO),
                "reservations": len(f.reserved), "available_quote": f.available(f.quote),
                "refusals": f.refusals, **({"rebalance": self.rebalancer.view()} if self.rebalancer else {})}
        return [Out(REPLY, StatusReport("balance", msg.request_id, data))]


class BalanceActor(ActorShell):
    role = "balance"
    routes = {Rebuild: "on_rebuild", ApprovedIntents: "on_approved", FillsRecorded: "on_fills",
              OrdersChanged: "on_orders", PositionChanged: "on_position", PriceTick: "on_tick",
              ExchangeSnapshot: "on_snapshot", StatusRequest: "on_status", IntentsRefused: "on_refused"}

    def make_state(self, wire):
        cfg = wire.config
        quote = cfg.paper.quote_asset
        kind = "spot" if cfg.bot.exchange == "binance" else cfg.paper.kind
        g = cfg.grid
        rebalancer = Rebalancer(cfg.bot.id, cfg.market.symbol, g.rebalance_attempts, g.rebalance_cooldown_s,
                                g.rebalance_market, cfg.risk.flatten_slippage_pct)
        return Balances(Funds(kind, cfg.market.symbol, quote, cfg.paper.leverage), rebalancer)
