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

from actors.grid_levels import GridShape, Volatility, grid_prices, level_range, shape_from_bounds, spacing_pct
from actors.grid_retry import CounterRetries
from actors.outbox import REPLY, SUPERVISOR, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import EmergencyStop, OrderIntents, OrderSpec, RequestCancels
from messages.events import FillsRecorded, IntentsRefused, OrdersChanged, PositionChanged, PriceTick
from messages.lifecycle import ModeChanged, Rebuild, Reconciled, StatusReport, StatusRequest
from messages.types import ZERO, MarketRules, Mode, OrderState, Origin, Side, client_order_id


_NO_LEVEL_BELOW, _NO_LEVEL_ABOVE = Decimal("-Infinity"), Decimal("Infinity")


def level_prices(anchor: Decimal, levels: int, spacing: str, pct: Decimal, rules: MarketRules,
                 min_ticks: int = 1) -> dict[int, Decimal] | None:
    """Prices of a neutral grid's levels -N..N (see grid_levels.grid_prices)."""
    return grid_prices(GridShape(anchor, levels, levels, spacing, pct, min_ticks), rules)[0]


def empty_level(position: Decimal, base_position: Decimal, order_size: Decimal, levels: int,
                above: int | None = None) -> int:
    """Levels -levels..above (above defaults to levels); clamped one step outside the grid."""
    units = ((position - base_position) / order_size).to_integral_value(rounding=ROUND_HALF_EVEN)
    return max(-levels - 1, min((levels if above is None else above) + 1, -int(units)))


def desired_orders(prices: dict[int, Decimal], empty: int, mid: Decimal | None) -> dict[int, Side]:
    """level -> side for every level that should hold an order now; levels on the wrong side of the
    mid wait (a post-only order there would cross)."""
    wanted = {}
    for level, price in prices.items():
        if level == empty:
            continue
        side = Side.BUY if level < empty else Side.SELL
        if not would_cross(side, price, mid):
            wanted[level] = side
    return wanted


def would_cross(side: Side, price: Decimal, mid: Decimal | None) -> bool:
    return mid is not None and ((side is Side.BUY and price >= mid) or (side is Side.SELL and price <= mid))


class Grid:
    def __init__(self, config, journal: Journal | None = None):
        self.cfg = config.grid
        self.bot_id = config.bot.id
        self.symbol = config.market.symbol
        self.journal = journal
        self.rules: MarketRules | None = None
        self.mode = Mode.STARTING
        self.below, self.above = level_range(self.cfg.levels_per_side, self.cfg.bias)
        self.anchor: Decimal | None = None
        self.spacing_pct = self.cfg.spacing_pct
        self.size = self.cfg.order_size
        self.base_position = ZERO
        self.epoch = 0
        self.position = ZERO
        self.version = -1
        self.mid: Decimal | None = None
        self.now_ms = 0
        self.prices: dict[int, Decimal] | None = None
        self.working: dict[int, str] = {}          # level -> client id (pending or live)
        self.sizes: dict[str, list] = {}           # client id -> [level, size, filled, side, price]
        self.cancelling: set[str] = set()
        self.fills_version = -1
        self.done: dict[str, None] = {}            # recently ended client ids (late updates ignored)
        self.attempts: dict[tuple[int, str, int], int] = {}
        self.blocked: dict[int, int] = {}          # level -> exchange ms before which a risk limit stands
        self.refused_reason = ""
        self.intents_sent = 0
        self.cancels_sent = 0
        self.out_since_ms: int | None = None       # price outside the grid since (persisted, B-3.3)
        self.volatility = Volatility(int(self.cfg.volatility_sample_s * 1000), self.cfg.volatility_window)
        self.counters = CounterRetries(self.cfg.counter_retry_limit, self.cfg.counter_retry_initial_s,
                                       self.cfg.counter_retry_max_s)
        self.emergency = ""
        self._band: tuple[Decimal, Decimal] | None = None   # the mid's gap between two levels, last computed

    # -- persistence -----------------------------------------------------------------------------
    def _put(self, **values) -> None:
        if self.journal is not None:
            for key, value in values.items():
                self.journal.put_state(key, "" if value is None else str(value))

    def _load(self) -> None:
        if self.journal is None:
            return
        anchor = self.journal.get_state("anchor")
        if anchor:
            self.anchor = Decimal(anchor)
            self.base_position = Decimal(self.journal.get_state("base_position") or "0")
            self.epoch = int(self.journal.get_state("epoch") or "0")
            self.spacing_pct = Decimal(self.journal.get_state("spacing_pct") or str(self.cfg.spacing_pct))
            self.size = Decimal(self.journal.get_state("order_size") or str(self.cfg.order_size))
        out_since = self.journal.get_state("out_of_range_since_ms")
        self.out_since_ms = int(out_since) if out_since else None

    def _set_anchor(self, anchor: Decimal) -> None:
        """A new epoch: prices, spacing and size are fixed here and persisted with the anchor."""
        cfg = self.cfg
        if cfg.lower > 0:
            shape = shape_from_bounds(cfg.lower, cfg.upper, self.below, self.above, cfg.spacing,
                                      cfg.min_spacing_ticks, cfg.min_width_pct)
            anchor, self.spacing_pct = shape.anchor, shape.pct
        else:
            self.spacing_pct = spacing_pct(cfg.spacing_pct, cfg.volatility_multiplier, self.volatility.pct())
        self.anchor = self.rules.round_price(anchor)
        raw_size = cfg.order_notional / self.anchor if cfg.order_notional > 0 else cfg.order_size
        self.size = self.rules.round_size(raw_size)
        self.base_position = self.position
        self.epoch += 1
        self.out_since_ms = None
        self.counters.forget_all()
        self.blocked.clear()
        self._put(anchor=self.anchor, base_position=self.base_position, epoch=self.epoch,
                  spacing_pct=self.spacing_pct, order_size=self.size, out_of_range_since_ms=None)
        self.prices = None
        logger.info("grid anchored at {} (epoch {}, spacing {}%, size {}, base position {})", self.anchor,
                    self.epoch, self.spacing_pct, self.size, self.base_position)

    def _shape(self) -> GridShape:
        return GridShape(self.anchor, self.below, self.above, self.cfg.spacing, self.spacing_pct,
                         self.cfg.min_spacing_ticks, self.cfg.min_width_pct)

    # -- the pure core ---------------------------------------------------------------------------
    def recompute(self) -> list:
        """Only from a consistent view: the position and the fills that made it (same journal version)."""
        self._band = None
        if self.blocked:
            self.blocked = {lv: t for lv, t in self.blocked.items() if t > self.now_ms}
        if self.mode is not Mode.TRADING or self.rules is None or self.version < 0:
            return []
        if self.version // 1000 != self.fills_version:
            return []
        if self.anchor is None:
            start = self.cfg.anchor if self.cfg.anchor > 0 else self.mid
            if start is None and self.cfg.lower <= 0:
                return []
            self._set_anchor(start or self.cfg.lower)
        if self.prices is None:
            self.prices, reason = grid_prices(self._shape(), self.rules)
            if self.prices is None:
                self.refused_reason = f"grid refused: {reason}"
                logger.error(self.refused_reason)
                return []
        if self.size <= 0:
            self.refused_reason = f"grid refused: order size rounds to 0 (lot {self.rules.lot_size})"
            return []
        empty = empty_level(self.position, self.base_position, self.size, self.below, self.above)
        target = desired_orders(self.prices, empty, None)
        out = self._cancel_strays(target)
        specs = []
        for level, side in sorted(target.items()):
            if would_cross(side, self.prices[level], self.mid):
                continue               # on the wrong side of the mid: it waits for the price
            if level in self.working or not self.counters.may_place(level, self.now_ms):
                continue               # never two orders at one level; failed counter-orders back off
            if self.blocked.get(level, 0) > self.now_ms:
                continue               # a risk limit said no: ask again later, or when the position moves
            key = (level, side.value, self.version)
            cid = client_order_id(self.bot_id, self.epoch, level, side, self.version, self.attempts.get(key, 0))
            specs.append(OrderSpec(cid, self.symbol, side, self.prices[level], self.size, Origin.GRID, level,
                                   self.version))
            self.working[level] = cid
            self.sizes[cid] = [level, self.size, ZERO, side, self.prices[level]]
        if specs:
            self.intents_sent += len(specs)
            out.append(Out("risk", OrderIntents(tuple(specs), self.version, Origin.GRID)))
        if self.mid is not None:
            below = [p for p in self.prices.values() if p < self.mid]
            above = [p for p in self.prices.values() if p > self.mid]
            self._band = (max(below, default=_NO_LEVEL_BELOW), min(above, default=_NO_LEVEL_ABOVE))
        return out

    def _unchanged_by(self, mid: Decimal) -> bool:
        """A tick that stays between the same two levels changes nothing the grid wants, unless a
        refused level or a failed counter-order is waiting for its time to come."""
        band = self._band
        if band is None or not band[0] < mid < band[1] or self.blocked:
            return False            # a level refused by a limit is asked again once its pause is over
        return not self.counters.retry_at      # a failed counter-order waits for its retry time

    def _cancel_strays(self, target: dict[int, Side]) -> list:
        """Working orders the grid no longer wants (another epoch's price, the wrong side, the empty
        level) are cancelled; their level stays taken until the order book confirms the end."""
        strays = []
        for level, cid in self.working.items():
            held = self.sizes.get(cid)
            if held is None or cid in self.cancelling:
                continue
            if target.get(level) is not held[3] or held[4] != self.prices.get(level):
                strays.append(cid)
        if not strays:
            return []
        self.cancelling.update(strays)
        self.cancels_sent += len(strays)
        return [Out("orderbook", RequestCancels(tuple(strays), reason=f"grid epoch {self.epoch}: not wanted"))]

    # -- messages --------------------------------------------------------------------------------
    def on_position(self, msg: PositionChanged) -> list:
        if msg.version < self.version:
            return []
        if msg.version != self.version:
            self.attempts.clear()          # ids of a new version never meet those of older ones
            self.blocked.clear()
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
                self.counters.placed(held[0])
                self.counters.expect(held[0] + (1 if held[3] is Side.BUY else -1))
                self._free(held[0], fill.client_id)
        self.fills_version = msg.version
        return self.recompute()

    def _free(self, level: int, client_id: str) -> None:
        if self.working.get(level) == client_id:
            del self.working[level]
        self.sizes.pop(client_id, None)
        self.cancelling.discard(client_id)
        self.done[client_id] = None
        if len(self.done) > 50_000:
            del self.done[next(iter(self.done))]

    def on_tick(self, msg: PriceTick) -> list:
        self.mid, self.now_ms = msg.mid, max(self.now_ms, msg.time_ms)
        self.volatility.observe(msg.mid, msg.time_ms)
        self._trail(msg.mid, msg.time_ms)
        if self.prices is not None and self._unchanged_by(msg.mid):
            return []
        return self.recompute()

    def _trail(self, mid: Decimal, now_ms: int) -> None:
        """Re-anchor once the price has stayed outside the grid for trail_after_s of exchange time;
        the start of the excursion is persisted, so a restart does not reset the clock (B-3.3)."""
        if self.cfg.trail_after_s <= 0 or not self.prices or self.mode is not Mode.TRADING:
            return
        outside = mid < self.prices[-self.below] or mid > self.prices[self.above]
        if not outside:
            if self.out_since_ms is not None:
                self.out_since_ms = None
                self._put(out_of_range_since_ms=None)
            return
        if self.out_since_ms is None:
            self.out_since_ms = now_ms
            self._put(out_of_range_since_ms=now_ms)
        elif now_ms - self.out_since_ms >= self.cfg.trail_after_s * 1000:
            logger.info("price {} outside the grid for {:.0f}s: re-anchoring", mid,
                        (now_ms - self.out_since_ms) / 1000)
            self._set_anchor(mid)

    def on_orders(self, msg: OrdersChanged) -> list:
        out = []
        for u in msg.updates:
            if u.origin is not Origin.GRID or u.level is None:
                continue
            if u.state is OrderState.FILLED:
                self.done[u.client_id] = None      # the level is freed by the fill itself (on_fills)
            elif u.state.terminal:
                self.blocked.clear()               # exposure went down: the limits may say yes now
                if self.working.get(u.level) == u.client_id:
                    self._retry_later(u.level, u.side, u.client_id)
                    if u.state is OrderState.REJECTED:
                        out += self._counter_failed(u.level, f"rejected: {u.reason or 'no reason given'}")
                self._free(u.level, u.client_id)
            elif u.client_id not in self.done and self.working.get(u.level) in (None, u.client_id):
                self.working[u.level] = u.client_id
                self.sizes.setdefault(u.client_id, [u.level, u.size, u.filled, u.side, u.price])
                if u.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED):
                    self.counters.placed(u.level)
        return out + self.recompute()

    def _retry_later(self, level: int, side: Side, client_id: str) -> None:
        key = (level, side.value, self.version)
        self.attempts[key] = self.attempts.get(key, 0) + 1   # a retry needs a fresh id

    def _counter_failed(self, level: int, reason: str) -> list:
        if not self.counters.failed(level, reason, self.now_ms) or self.emergency:
            return []
        self.emergency = (f"counter-order at level {level} failed {self.counters.failures[level]} times "
                          f"(last: {reason})")
        logger.error("emergency stop: {}", self.emergency)
        return [Out(SUPERVISOR, EmergencyStop(self.emergency, self.cfg.emergency_flatten, "grid"))]

    def on_refused(self, msg: IntentsRefused) -> list:
        self._band = None                   # a level came free: the next tick must look again
        out = []
        for r in msg.refusals:
            if r.level is not None and self.working.get(r.level) == r.client_id:
                self._retry_later(r.level, self.sizes[r.client_id][3], r.client_id)
                self._free(r.level, r.client_id)
                if r.kind == "funds":      # limits, stale versions, modes and the breaker are deliberate
                    out += self._counter_failed(r.level, r.reason)
                elif r.kind == "limit":
                    self.blocked[r.level] = self.now_ms + int(self.cfg.counter_retry_initial_s * 1000)
            self.refused_reason = r.reason
        return out                   # retried on the next tick or position change, not in a loop

    def on_mode(self, msg: ModeChanged) -> list:
        if msg.mode is Mode.TRADING and self.mode is not Mode.TRADING and self.emergency:
            self.emergency = ""                # an operator resumed: failures start from zero
            self.counters.forget_all()
        self.mode = msg.mode
        return self.recompute()

    def on_rebuild(self, msg: Rebuild) -> list:
        state = msg.state
        self.rules = state.rules
        self.position = state.position.size
        self.version = msg.journal_version * 1000
        self.fills_version = msg.journal_version
        self.mid = state.mid
        self.now_ms = max(self.now_ms, state.time_ms)
        self.prices = None
        self._load()
        self.working.clear()
        self.sizes.clear()
        self.cancelling.clear()
        rows = {r["client_id"]: r for r in self.journal.orders()} if self.journal else {}
        for order in state.open_orders:
            row = rows.get(order.client_id or "")
            if row and row["origin"] == Origin.GRID.value and row["level"] is not None:
                self.working[row["level"]] = order.client_id
                self.sizes[order.client_id] = [row["level"], order.size, order.filled, order.side, order.price]
        return [Out(REPLY, Reconciled("grid", True, f"anchor {self.anchor}, {len(self.working)} live levels"))]

    def on_status(self, msg: StatusRequest) -> list:
        data = {"anchor": self.anchor, "epoch": self.epoch, "levels": self.cfg.levels_per_side,
                "bias": self.cfg.bias, "spacing_pct": self.spacing_pct, "order_size": self.size,
                "working": len(self.working), "cancelling": len(self.cancelling), "mid": self.mid,
                "intents_sent": self.intents_sent, "cancels_sent": self.cancels_sent,
                "refused_reason": self.refused_reason, "out_of_range_since_ms": self.out_since_ms,
                "counter_failures": self.counters.view(), "emergency": self.emergency,
                "working_prices": sorted(self.prices[lv] for lv in self.working if lv in self.prices)
                if self.prices else []}
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
