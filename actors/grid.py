"""GridActor: the ladder. Desired orders are a pure function of (config, anchor, position, mid); every
intent carries the position version it was computed from (C-1).

With anchor A and levels -N..N, the grid's fills since anchoring move the "empty" level: e = -round(
(position - base_position) / order_size). Levels below e hold buys, levels above hold sells. A buy filled
at level i makes e = i, so a sell appears at i + 1: the counter-order one level away. Because the
function depends only on the position, a restart recomputes exactly the orders that should rest.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from loguru import logger

from actors.outbox import REPLY, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import OrderIntents, OrderSpec
from messages.events import FillsRecorded, IntentsRefused, OrdersChanged, PositionChanged, PriceTick
from messages.lifecycle import ModeChanged, Rebuild, Reconciled, StatusReport, StatusRequest
from messages.types import ZERO, MarketRules, Mode, OrderState, Origin, Side, client_order_id

HUNDRED = Decimal(100)


def level_prices(anchor: Decimal, levels: int, spacing: str, pct: Decimal, rules: MarketRules,
                 min_ticks: int = 1) -> dict[int, Decimal] | None:
    """Prices of levels -N..N, rounded to the market; None when rounding would make two levels meet
    or the spacing falls under the floor (C-4)."""
    prices = {}
    for i in range(-levels, levels + 1):
        raw = anchor + anchor * pct / HUNDRED * i if spacing == "arithmetic" else anchor * (1 + pct / HUNDRED) ** i
        prices[i] = rules.round_price(raw)
    ordered = [prices[i] for i in range(-levels, levels + 1)]
    for lower, upper in zip(ordered, ordered[1:]):
        if upper <= lower or upper - lower < rules.tick_at(lower) * min_ticks:
            return None
    return prices


def empty_level(position: Decimal, base_position: Decimal, order_size: Decimal, levels: int) -> int:
    units = ((position - base_position) / order_size).to_integral_value(rounding=ROUND_HALF_EVEN)
    return max(-levels - 1, min(levels + 1, -int(units)))


def desired_orders(prices: dict[int, Decimal], empty: int, mid: Decimal | None) -> dict[int, Side]:
    """level -> side for every level that should hold an order now; levels on the wrong side of the
    mid wait (a post-only order there would cross)."""
    wanted = {}
    for level, price in prices.items():
        if level == empty:
            continue
        side = Side.BUY if level < empty else Side.SELL
        if mid is not None and ((side is Side.BUY and price >= mid) or (side is Side.SELL and price <= mid)):
            continue
        wanted[level] = side
    return wanted


class Grid:
    def __init__(self, config, journal: Journal | None = None):
        self.cfg = config.grid
        self.bot_id = config.bot.id
        self.symbol = config.market.symbol
        self.journal = journal
        self.rules: MarketRules | None = None
        self.mode = Mode.STARTING
        self.anchor: Decimal | None = None
        self.base_position = ZERO
        self.epoch = 0
        self.position = ZERO
        self.version = -1
        self.mid: Decimal | None = None
        self.prices: dict[int, Decimal] | None = None
        self.working: dict[int, str] = {}          # level -> client id (pending or live)
        self.sizes: dict[str, list] = {}           # client id -> [level, size, filled, side]
        self.fills_version = -1
        self.done: dict[str, None] = {}            # recently ended client ids (late updates ignored)
        self.attempts: dict[tuple[int, str, int], int] = {}
        self.refused_reason = ""
        self.intents_sent = 0

    # -- persistence -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self.journal is None:
            return
        anchor = self.journal.get_state("anchor")
        if anchor is not None:
            self.anchor = Decimal(anchor)
            self.base_position = Decimal(self.journal.get_state("base_position") or "0")
            self.epoch = int(self.journal.get_state("epoch") or "0")

    def _set_anchor(self, anchor: Decimal) -> None:
        self.anchor = self.rules.round_price(anchor)
        self.base_position = self.position
        self.epoch += 1
        if self.journal is not None:
            self.journal.put_state("anchor", str(self.anchor))
            self.journal.put_state("base_position", str(self.base_position))
            self.journal.put_state("epoch", str(self.epoch))
        self.prices = None
        logger.info("grid anchored at {} (epoch {}, base position {})", self.anchor, self.epoch, self.base_position)

    # -- the pure core ---------------------------------------------------------------------------
    def recompute(self) -> list:
        """Only from a consistent view: the position and the fills that made it (same journal version)."""
        if self.mode is not Mode.TRADING or self.rules is None or self.version < 0:
            return []
        if self.version // 1000 != self.fills_version:
            return []
        if self.anchor is None:
            start = self.cfg.anchor if self.cfg.anchor > 0 else self.mid
            if start is None:
                return []
            self._set_anchor(start)
        if self.prices is None:
            self.prices = level_prices(self.anchor, self.cfg.levels_per_side, self.cfg.spacing,
                                       self.cfg.spacing_pct, self.rules, self.cfg.min_spacing_ticks)
            if self.prices is None:
                self.refused_reason = "grid refused: levels collapse after rounding (C-4)"
                logger.error(self.refused_reason)
                return []
        size = self.rules.round_size(self.cfg.order_size)
        empty = empty_level(self.position, self.base_position, size, self.cfg.levels_per_side)
        specs = []
        for level, side in sorted(desired_orders(self.prices, empty, self.mid).items()):
            if level in self.working:
                continue               # never two orders at one level
            key = (level, side.value, self.version)
            cid = client_order_id(self.bot_id, self.epoch, level, side, self.version, self.attempts.get(key, 0))
            specs.append(OrderSpec(cid, self.symbol, side, self.prices[level], size, Origin.GRID, level,
                                   self.version))
            self.working[level] = cid
            self.sizes[cid] = [level, size, ZERO, side]
        if not specs:
            return []
        self.intents_sent += len(specs)
        return [Out("risk", OrderIntents(tuple(specs), self.version, Origin.GRID))]

    # -- messages --------------------------------------------------------------------------------
    def on_position(self, msg: PositionChanged) -> list:
        if msg.version < self.version:
            return []
        self.position, self.version = msg.position, msg.version
        return self.recompute()

    def on_fills(self, msg: FillsRecorded) -> list:
        """A level is free the moment its order is complete, before the order book says so, so the
        counter-order is computed from the same fill that moved the position."""
        if msg.version <= self.fills_version:
            return []
        for fill in msg.fills:
            held = self.sizes.get(fill.client_id or "")
            if held is None:
                continue
            held[2] += fill.size
            if self.rules is not None and self.rules.is_complete(held[1] - held[2]):
                self._free(held[0], fill.client_id)
        self.fills_version = msg.version
        return self.recompute()

    def _free(self, level: int, client_id: str) -> None:
        if self.working.get(level) == client_id:
            del self.working[level]
        self.sizes.pop(client_id, None)
        self.done[client_id] = None
        if len(self.done) > 50_000:
            del self.done[next(iter(self.done))]

    def on_tick(self, msg: PriceTick) -> list:
        self.mid = msg.mid
        return self.recompute()

    def on_orders(self, msg: OrdersChanged) -> list:
        for u in msg.updates:
            if u.origin is not Origin.GRID or u.level is None:
                continue
            if u.state is OrderState.FILLED:
                self.done[u.client_id] = None      # the level is freed by the fill itself (on_fills)
            elif u.state.terminal:
                if self.working.get(u.level) == u.client_id:
                    key = (u.level, u.side.value, self.version)
                    self.attempts[key] = self.attempts.get(key, 0) + 1   # a retry needs a fresh id
                self._free(u.level, u.client_id)
            elif u.client_id not in self.done and self.working.get(u.level) in (None, u.client_id):
                self.working[u.level] = u.client_id
                self.sizes.setdefault(u.client_id, [u.level, u.size, u.filled, u.side])
        return self.recompute()

    def on_refused(self, msg: IntentsRefused) -> list:
        for r in msg.refusals:
            if r.level is not None and self.working.get(r.level) == r.client_id:
                side = self.sizes[r.client_id][3]
                key = (r.level, side.value, self.version)
                self.attempts[key] = self.attempts.get(key, 0) + 1    # a retry needs a fresh id
                self._free(r.level, r.client_id)
            self.refused_reason = r.reason
        return []                    # retried on the next tick or position change, not in a loop

    def on_mode(self, msg: ModeChanged) -> list:
        self.mode = msg.mode
        return self.recompute()

    def on_rebuild(self, msg: Rebuild) -> list:
        state = msg.state
        self.rules = state.rules
        self.position = state.position.size
        self.version = msg.journal_version * 1000
        self.fills_version = msg.journal_version
        self.mid = state.mid
        self.prices = None
        self._load()
        self.working.clear()
        self.sizes.clear()
        rows = {r["client_id"]: r for r in self.journal.orders()} if self.journal else {}
        for order in state.open_orders:
            row = rows.get(order.client_id or "")
            if row and row["origin"] == Origin.GRID.value and row["level"] is not None:
                self.working[row["level"]] = order.client_id
                self.sizes[order.client_id] = [row["level"], order.size, order.filled, order.side]
        return [Out(REPLY, Reconciled("grid", True, f"anchor {self.anchor}, {len(self.working)} live levels"))]

    def on_status(self, msg: StatusRequest) -> list:
        data = {"anchor": self.anchor, "epoch": self.epoch, "levels": self.cfg.levels_per_side,
                "working": len(self.working), "mid": self.mid, "intents_sent": self.intents_sent,
                "refused_reason": self.refused_reason}
        return [Out(REPLY, StatusReport("grid", msg.request_id, data))]

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


class GridActor(ActorShell):
    role = "grid"
    routes = {FillsRecorded: "on_fills", PositionChanged: "on_position", PriceTick: "on_tick", OrdersChanged: "on_orders",
              IntentsRefused: "on_refused", ModeChanged: "on_mode", Rebuild: "on_rebuild",
              StatusRequest: "on_status"}

    def make_state(self, wire):
        return Grid(wire.config, Journal(wire.config.state_path / "journal.db"))
