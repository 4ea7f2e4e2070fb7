"""RiskActor: limits on every order intent, whatever its origin.

It rejects intents computed from a position older than the one it knows (M-4, C-1) and holds those
computed from a newer one until the position reaches it. Exposure counts the position plus every
approved order still live, so a burst of intents cannot together break max_position or max_notional.
It also owns the grid-wide exits: the drawdown kill switch, stop-loss and take-profit prices, and the
circuit breaker (H-3); each asks the supervisor for an emergency stop, and a flatten closes the
position with reduce-only orders through the normal pipeline.
"""
from __future__ import annotations

import time
from decimal import Decimal

from loguru import logger

from actors.breaker import CircuitBreaker
from actors.outbox import REPLY, SUPERVISOR, After, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from config.schema import RiskSection
from messages.commands import ApprovedIntents, EmergencyStop, OrderIntents, OrderSpec
from messages.events import (
    ExchangeError,
    ExchangeSnapshot,
    FillsRecorded,
    IntentRefused,
    IntentsRefused,
    OrdersChanged,
    PositionChanged,
    PriceTick,
)
from messages.lifecycle import Flatten, ModeChanged, Rebuild, Reconciled, StatusReport, StatusRequest
from messages.types import ZERO, MarketRules, Mode, Origin, Side, client_order_id

_HOLD_EXPIRY = "hold-expiry"
_HOLD_SECONDS = 2.0


def _origin_role(origin: Origin) -> str:
    return {Origin.GRID: "grid", Origin.RISK: "risk", Origin.ADMIN: "supervisor", Origin.REBALANCE: "balance"}[origin]


class RiskBook:
    def __init__(self, max_position: Decimal, max_open_orders: int, limits: RiskSection | None = None,
                 bot_id: str = "bot", symbol: str = "BTC", kind: str = "perp", journal: Journal | None = None,
                 clock=time.time):
        self.max_position = max_position
        self.max_open_orders = max_open_orders
        self.limits = limits or RiskSection(max_position=max_position, max_open_orders=max_open_orders)
        lim = self.limits
        self.breaker = CircuitBreaker(lim.breaker_network_errors, lim.breaker_rejections, lim.breaker_window_s,
                                      lim.breaker_cooldown_s)
        self.bot_id, self.symbol, self.kind, self.journal, self.clock = bot_id, symbol, kind, journal, clock
        self.rules: MarketRules | None = None
        self.mid: Decimal | None = None
        self.collateral = ZERO          # quote total (perp collateral, or spot quote balance)
        self.entry = ZERO
        self.realized = ZERO
        self.fees = ZERO
        self.peak_pnl: Decimal | None = None
        self.stopped = ""               # the emergency reason, once asked for
        self.protective: dict[str, str] = {}        # bound -> client id of its resting stop
        self.protective_attempt: dict[str, int] = {}
        self.adopted = 0
        self.flattening = False
        self.flatten_attempts = 0
        self.position = ZERO
        self.version = -1
        self.fills_version = 0       # the newest journaled fill we know of: intents older than it are stale
        self.mode = Mode.STARTING
        self.live: dict[str, tuple[Side, Decimal]] = {}   # cid -> (side, remaining)
        self.held: list[OrderIntents] = []
        self.refused = {"stale": 0, "limit": 0, "mode": 0, "breaker": 0}
        self.flatten_ids: set[str] = set()
        self.errors: dict[str, int] = {}
        self.last_error = ""

    def exposure(self, side: Side) -> Decimal:
        return sum((rem for s, rem in self.live.values() if s is side), ZERO)

    def _check(self, spec: OrderSpec) -> str | None:
        if spec.trigger_price is not None:
            return None if spec.reduce_only else "a stop order must be reduce-only"
        if spec.reduce_only:
            reduces = (self.position > 0 and spec.side is Side.SELL) or (self.position < 0 and spec.side is Side.BUY)
            return None if reduces and spec.size <= abs(self.position) else "reduce-only order would not reduce"
        if len(self.live) >= self.max_open_orders:
            return f"max open orders {self.max_open_orders}"
        if spec.side is Side.BUY and self.position + self.exposure(Side.BUY) + spec.size > self.max_position:
            return f"max position {self.max_position}"
        if spec.side is Side.SELL and self.position - self.exposure(Side.SELL) - spec.size < -self.max_position:
            return f"max position {self.max_position}"
        projected = (self.position + self.exposure(Side.BUY) + spec.size if spec.side is Side.BUY
                     else self.position - self.exposure(Side.SELL) - spec.size)
        price = self.mid or spec.price
        lim = self.limits
        if lim.max_notional > 0 and abs(projected) * price > lim.max_notional and abs(projected) > abs(self.position):
            return f"max notional {lim.max_notional}"
        equity = self.equity()
        if lim.max_skew > 0 and abs(projected) > abs(self.position) and (
                equity <= 0 or abs(projected) * price / equity > lim.max_skew):
            return f"max skew {lim.max_skew} of equity {equity:.2f}"
        return None

    # -- PnL, equity and the grid-wide exits --------------------------------------------------------
    def unrealized(self) -> Decimal:
        return (self.mid - self.entry) * self.position if self.mid is not None and self.position else ZERO

    def pnl(self) -> Decimal:
        return self.realized - self.fees + self.unrealized()

    def equity(self) -> Decimal:
        """Collateral already holds realized PnL and fees; only the open position is added."""
        if self.kind == "spot":
            return self.collateral + (self.position * self.mid if self.mid is not None else ZERO)
        return self.collateral + self.unrealized()

    def _exits(self) -> list:
        """Kill switch, stop-loss and take-profit: each trips once and asks for a stop and a flatten."""
        if self.stopped or self.mid is None or self.mode is not Mode.TRADING:
            return []
        lim, mid, reason = self.limits, self.mid, ""
        pnl = self.pnl()
        if self.peak_pnl is None or pnl > self.peak_pnl:
            self.peak_pnl = pnl
            if self.journal is not None:
                self.journal.put_state("risk_peak_pnl", str(pnl))
        if lim.max_drawdown > 0 and self.peak_pnl - pnl >= lim.max_drawdown:
            reason = f"kill switch: drawdown {self.peak_pnl - pnl:.2f} >= max_drawdown {lim.max_drawdown}"
        elif lim.stop_loss_price > 0 and mid <= lim.stop_loss_price:
            reason = f"stop-loss: mid {mid} <= {lim.stop_loss_price}"
        elif lim.take_profit_price > 0 and mid >= lim.take_profit_price:
            reason = f"take-profit: mid {mid} >= {lim.take_profit_price}"
        if not reason:
            return []
        self.stopped = reason
        logger.error("emergency stop: {}", reason)
        return [Out(SUPERVISOR, EmergencyStop(reason, flatten=True, source="risk"))]

    # -- protective orders (B-1.3) -------------------------------------------------------------
    def _protective_id(self, bound: str, attempt: int) -> str:
        side = Side.SELL if bound == "lower" else Side.BUY
        return client_order_id(self.bot_id, -3, 0 if bound == "lower" else 1, side, 0, attempt)

    def _bounds(self) -> list[tuple[str, Decimal, Side]]:
        lim = self.limits
        bounds = [("lower", lim.stop_loss_price, Side.SELL)]
        if self.kind != "spot":     # spot holds no short to protect above: the software exit covers it
            bounds.append(("upper", lim.take_profit_price, Side.BUY))
        return [(bound, price, side) for bound, price, side in bounds if price > 0]

    def _protect(self) -> list:
        """Keep one exchange-native reduce-only stop resting at each configured exit price. Ids are
        deterministic (bound, attempt), so a restart finds its own stops instead of adding more."""
        if not self.limits.protective_orders or self.mode is not Mode.TRADING or self.rules is None:
            return []
        out = []
        for bound, price, side in self._bounds():
            if bound in self.protective:
                continue
            attempt = self.protective_attempt.get(bound, 0)
            cid = self._protective_id(bound, attempt)
            self.protective[bound] = cid
            trigger = self.rules.round_price(price)
            spec = OrderSpec(cid, self.symbol, side, trigger, self.rules.round_size(self.max_position), Origin.RISK,
                             None, self.version, reduce_only=True, post_only=False, trigger_price=trigger)
            out += self._evaluate(OrderIntents((spec,), max(self.version, 0), Origin.RISK))
        return out

    def _protective_ended(self, client_id: str) -> None:
        for bound, cid in list(self.protective.items()):
            if cid == client_id:
                del self.protective[bound]
                self.protective_attempt[bound] = self.protective_attempt.get(bound, 0) + 1
                if self.journal is not None:
                    self.journal.put_state(f"protective_attempt_{bound}", str(self.protective_attempt[bound]))

    def on_flatten(self, msg: Flatten) -> list:
        self.flattening = True
        return self._flatten_step()

    def _flatten_step(self) -> list:
        """One reduce-only order for the whole position, a limit through the mid; another after each
        position change until flat. Never more than one live at a time."""
        if not self.flattening or self.rules is None or self.mid is None:
            return []
        size = self.rules.round_size(abs(self.position))
        if size <= 0:
            self.flattening = False
            logger.info("flatten done: position {}", self.position)
            return []
        if any(cid in self.flatten_ids for cid in self.live):
            return []
        side = Side.SELL if self.position > 0 else Side.BUY
        slip = self.limits.flatten_slippage_pct / 100
        price = self.rules.round_price(self.mid * (1 - slip if side is Side.SELL else 1 + slip))
        self.flatten_attempts += 1
        cid = client_order_id(self.bot_id, -1, 0, side, self.version, self.flatten_attempts)
        self.flatten_ids.add(cid)
        spec = OrderSpec(cid, self.symbol, side, price, size, Origin.RISK, None, self.version,
                         reduce_only=True, post_only=False)
        return self._evaluate(OrderIntents((spec,), self.version, Origin.RISK))

    def _evaluate(self, intents: OrderIntents) -> list:
        refusals, approved = [], []
        for spec in intents.orders:
            if self.mode is not Mode.TRADING and spec.origin in (Origin.GRID, Origin.REBALANCE):
                reason, key = f"mode is {self.mode.value}", "mode"
            elif spec.origin in (Origin.GRID, Origin.REBALANCE) and self.breaker.is_open(self.clock()):
                reason, key = f"circuit breaker open: {self.breaker.reason}", "breaker"
            elif intents.position_version < self.version:
                reason, key = f"stale position version {intents.position_version} < {self.version}", "stale"
            elif 0 <= intents.position_version < self.fills_version * 1000:
                reason, key = (f"position version {intents.position_version} predates journaled fill "
                               f"{self.fills_version}", "stale")
            else:
                reason = self._check(spec)
                key = "limit"
            if reason:
                self.refused[key] = self.refused.get(key, 0) + 1
                refusals.append(IntentRefused(spec.client_id, reason, spec.origin, spec.level, key))
            else:
                if spec.trigger_price is None:      # a protective stop is not exposure
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
        self.entry, self.realized, self.fees = msg.average_entry, msg.realized_pnl, msg.fees
        return self._release_held() + self._exits() + self._flatten_step()

    def on_tick(self, msg: PriceTick) -> list:
        self.mid = msg.mid
        return self._exits() + self._flatten_step()

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        self.collateral = msg.state.balance(self.rules.quote_asset if self.rules else "USDC").total
        return []

    def on_fills(self, msg: FillsRecorded) -> list:
        """A fill is journaled: until the ledger's PositionChanged includes it, intents computed
        without it are refused (M-4), even if they arrive first."""
        self.fills_version = max(self.fills_version, msg.version)
        return []

    def on_timer(self, payload) -> list:
        return self._release_held(expire=True) if payload == _HOLD_EXPIRY else []

    def on_orders(self, msg: OrdersChanged) -> list:
        protective = set(self.protective.values())
        for u in msg.updates:
            if u.client_id in protective:
                if u.state.terminal:
                    self._protective_ended(u.client_id)
            elif u.state.terminal:
                self.live.pop(u.client_id, None)
            else:
                self.live[u.client_id] = (u.side, u.size - u.filled)
        return []

    def on_refused(self, msg: IntentsRefused) -> list:
        for r in msg.refusals:
            self.live.pop(r.client_id, None)
            self._protective_ended(r.client_id)
        return []

    def on_error(self, msg: ExchangeError) -> list:
        self.errors[msg.kind] = self.errors.get(msg.kind, 0) + 1
        self.last_error = msg.message
        if self.breaker.record(msg.kind, self.clock(), msg.retry_after, msg.message):
            logger.warning("circuit breaker open for {:.1f}s: {}", self.breaker.open_until - self.clock(),
                           self.breaker.reason)
        return []

    def on_mode(self, msg: ModeChanged) -> list:
        if msg.mode is Mode.TRADING and self.stopped:
            # An operator resumed after a stop: the drawdown is measured from here on.
            self.stopped, self.flattening, self.peak_pnl = "", False, self.pnl()
        self.mode = msg.mode
        return self._protect()

    def on_rebuild(self, msg: Rebuild) -> list:
        self.rules = msg.state.rules
        self.mid = msg.state.mid if msg.state.mid is not None else self.mid
        self.collateral = msg.state.balance(self.rules.quote_asset).total
        if self.journal is not None and self.peak_pnl is None:
            peak = self.journal.get_state("risk_peak_pnl")
            self.peak_pnl = Decimal(peak) if peak else None
        self.position = msg.state.position.size
        self.version = max(self.version, msg.journal_version * 1000)
        self._adopt_protective(msg.state.open_orders)
        protective = set(self.protective.values())
        self.live = {o.client_id: (o.side, o.remaining) for o in msg.state.open_orders
                     if o.client_id and o.client_id not in protective}
        return [Out(REPLY, Reconciled("risk", True, f"{len(self.live)} live orders"))]

    def _adopt_protective(self, open_orders) -> None:
        """Stops already resting on the exchange are ours again, never placed twice (B-1.3)."""
        resting = {o.client_id for o in open_orders if o.client_id}
        self.protective.clear()
        for bound, _, _ in self._bounds():
            stored = self.journal.get_state(f"protective_attempt_{bound}") if self.journal else None
            start = max(self.protective_attempt.get(bound, 0), int(stored or 0))
            self.protective_attempt[bound] = start
            for attempt in range(start + 1):
                cid = self._protective_id(bound, attempt)
                if cid in resting:
                    self.protective[bound] = cid
                    self.adopted += 1
                    break

    def on_status(self, msg: StatusRequest) -> list:
        data = {"position": self.position, "version": self.version, "live_orders": len(self.live),
                "refused": dict(self.refused), "fills_version": self.fills_version,
                "errors": dict(self.errors), "last_error": self.last_error,
                "max_position": self.max_position, "breaker": self.breaker.view(self.clock()),
                "pnl": self.pnl(), "peak_pnl": self.peak_pnl, "equity": self.equity(),
                "emergency": self.stopped, "flattening": self.flattening,
                "protective": dict(self.protective), "protective_adopted": self.adopted}
        return [Out(REPLY, StatusReport("risk", msg.request_id, data))]


class RiskActor(ActorShell):
    role = "risk"
    routes = {OrderIntents: "on_intents", PositionChanged: "on_position", OrdersChanged: "on_orders",
              FillsRecorded: "on_fills", PriceTick: "on_tick", ExchangeSnapshot: "on_snapshot", Flatten: "on_flatten",
              IntentsRefused: "on_refused", ExchangeError: "on_error", ModeChanged: "on_mode",
              Rebuild: "on_rebuild", StatusRequest: "on_status"}

    def make_state(self, wire):
        cfg = wire.config
        return RiskBook(cfg.risk.max_position, cfg.risk.max_open_orders, cfg.risk, cfg.bot.id, cfg.market.symbol,
                        "spot" if cfg.bot.exchange == "binance" else cfg.paper.kind,
                        Journal(cfg.state_path / "journal.db"))

    def on_exit(self) -> None:
        if self.state is not None and self.state.journal is not None:
            self.state.journal.close()
