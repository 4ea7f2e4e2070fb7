"""The simulated Hyperliquid venue's state: the matching engine, one price path per market, the funded
users, nonces, scheduled cancels, per-user leverage and the statuses the engine cannot express.

The clock is the wall clock (epoch ms): fills, orders and `time` fields carry real time, while each
market's candle path only supplies prices, walked at `speed` simulated seconds per real second. Every
operation collects what it changed in an `Outbox`; `commit()` persists the venue first and only then
hands the outbox to the listener (the WebSocket hub), so a pushed fill is never one a restarted venue
has forgotten.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable

from sim.book import EngineFill, EngineOrder, read_json, write_json_atomic
from sim.engine import MatchingEngine
from sim.hyperliquid import protocol as P
from sim.hyperliquid.faults import AnswerServerError
from sim.paths import PricePath, SyntheticCandles, load_candles_csv

__all__ = ["VenueSettings", "Outbox", "HlVenue", "wall_ms"]

_FORMAT = "gridbot-hl-sim/1"
_MAX_POINTS_PER_TICK = 20_000
HISTORY = 10_000          # fills (and finished orders) reachable per user, as on the real venue


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class VenueSettings:
    """`data` drives the first market (BTC); the others follow SyntheticCandles(seed + index)."""
    markets: tuple = P.DEFAULT_MARKETS
    data: str | None = None
    speed: float = 60.0
    seed: int = 7
    state: str | None = None
    page_limit: int = 2000


@dataclass
class Outbox:
    """What one operation changed, per user: new fills, order updates, cancels the user did not ask for."""
    fills: dict[str, list[EngineFill]] = field(default_factory=dict)
    updates: dict[str, list[dict]] = field(default_factory=dict)
    cancels: dict[str, list[dict]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fills or self.updates or self.cancels)

    def update(self, order: EngineOrder, status: str, now: int) -> None:
        self.updates.setdefault(order.account, []).append(P.order_update(order, status, now))


class HlVenue:
    def __init__(self, settings: VenueSettings, clock: Callable[[], int] = wall_ms,
                 listener: Callable[[Outbox], None] | None = None, state: dict | None = None):
        """Resume from `state` (an in-memory restart), else from the settings' state file if it
        exists, else start fresh."""
        self.settings = settings
        self.clock = clock
        self.faults = None          # the server's Faults, for the venue-level ones (reject_orders, cancel_fills)
        self.listener = listener
        self.specs = {m.name: m for m in settings.markets}
        self.coins = [m.name for m in settings.markets]
        self.rules = {m.name: P.market_rules(m) for m in settings.markets}
        self._sources = {}
        for index, spec in enumerate(settings.markets):
            if index == 0 and settings.data:
                self._sources[spec.name] = (load_candles_csv(settings.data), os.path.realpath(settings.data))
            else:
                self._sources[spec.name] = (SyntheticCandles(settings.seed + index, spec.start_price),
                                            f"synthetic:{settings.seed + index}:{spec.start_price}")
        self.out = Outbox()
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
        now = self.clock()
        self.engine = MatchingEngine(history_limit=HISTORY, seed=self.settings.seed)
        self.paths: dict[str, PricePath] = {}
        self.sim_ms: dict[str, int] = {}
        for spec in self.settings.markets:
            self.engine.add_market(self.rules[spec.name], "perp", leverage=min(20, spec.max_leverage))
            path = PricePath(self._sources[spec.name][0])
            first = path.next_point()
            if first is None:
                raise ValueError(f"price path for {spec.name} has no candles")
            self.engine.advance(spec.name, now, first[1])
            self.paths[spec.name], self.sim_ms[spec.name] = path, first[0]
        self.users: set[str] = set()
        self.nonces: dict[str, list[int]] = {}
        self.scheduled: dict[str, int] = {}
        self.triggers: dict[str, list[int]] = {}
        self.leverage: dict[str, dict[str, list]] = {}
        self.overrides: dict[int, str] = {}
        self.reduce_only: set[tuple[str, str, int]] = set()
        self.paused = False
        self._last_real = now

    def to_state(self) -> dict:
        return {"format": _FORMAT, "generation": self._generation,
                "sources": {c: self._sources[c][1] for c in self.coins},
                "engine": self.engine.to_state(),
                "paths": {c: {"cursor": list(self.paths[c].cursor), "sim_ms": self.sim_ms[c]} for c in self.coins},
                "users": sorted(self.users), "nonces": self.nonces, "scheduled": self.scheduled,
                "triggers": self.triggers, "leverage": self.leverage,
                "overrides": {str(k): v for k, v in self.overrides.items()},
                "reduce_only": [list(k) for k in sorted(self.reduce_only)], "paused": self.paused}

    def restore(self, state: dict) -> None:
        """Resume from a saved venue; the paths continue where they stopped (no jump over downtime)."""
        if state.get("format") != _FORMAT:
            raise ValueError(f"{self.settings.state}: not a Hyperliquid simulator state file")
        sources = {c: self._sources[c][1] for c in self.coins}
        if state["sources"] != sources:
            raise ValueError(f"{self.settings.state}: saved for price paths {state['sources']}, not {sources}")
        self.engine = MatchingEngine.from_state(state["engine"])
        self._generation = int(state["generation"])
        paths = state["paths"]
        cursor_file = f"{self.settings.state}.cursor" if self.settings.state else None
        moved = read_json(cursor_file) if cursor_file and os.path.exists(cursor_file) else None
        if moved is not None and moved.get("generation") != self._generation:
            moved = None
        now = self.clock()
        self.paths, self.sim_ms = {}, {}
        for coin in self.coins:
            saved = moved["paths"][coin] if moved else paths[coin]
            self.paths[coin] = PricePath(self._sources[coin][0], cursor=tuple(saved["cursor"]))
            self.sim_ms[coin] = int(saved["sim_ms"])
            if moved:   # those points reached no resting order, so replaying the last one fills nothing
                self.engine.advance(coin, now, Decimal(saved["price"]))
        self.users = set(state["users"])
        self.nonces = {k: list(v) for k, v in state["nonces"].items()}
        self.scheduled = dict(state["scheduled"])
        self.triggers = {k: list(v) for k, v in state["triggers"].items()}
        self.leverage = state["leverage"]
        self.overrides = {int(k): v for k, v in state["overrides"].items()}
        self.reduce_only = {tuple(k) for k in state["reduce_only"]}
        self.paused = bool(state["paused"])
        self._last_real = now

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
            c: {"cursor": list(self.paths[c].cursor), "sim_ms": self.sim_ms[c],
                "price": str(self.engine.mid(c))} for c in self.coins}})

    def commit(self) -> bool:
        """Persist if anything but a quiet price move changed, then publish what changed (a push must
        never run ahead of the saved state). Returns whether it saved."""
        out, self.out = self.out, Outbox()
        saved = self.dirty or bool(out)
        if saved:
            self.dirty = False
            self.save()
        if out and self.listener is not None:
            self.listener(out)
        return saved

    # -- queries ---------------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock()

    def asset(self, index) -> str | None:
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(self.coins):
            return self.coins[index]
        return None

    def mids(self) -> dict[str, str]:
        return {c: P.num(self.engine.mid(c)) for c in self.coins}

    def bbo(self, coin: str) -> str:
        bids, asks = P.l2_levels(self.rules[coin], self.engine.mid(coin), [], depth=1)
        return f"{bids[0]['px'] if bids else '0.0'}@{asks[0]['px'] if asks else '0.0'}"

    def status_of(self, order: EngineOrder) -> str:
        return P.order_status_name(order, self.overrides.get(order.oid) if order.oid else None)

    def user_leverage(self, user: str, coin: str) -> tuple[int, bool]:
        value = self.leverage.get(user, {}).get(coin)
        if value is None:
            return min(20, self.specs[coin].max_leverage), True
        return int(value[0]), bool(value[1])

    # -- accounts ---------------------------------------------------------------------------------
    def fund(self, user: str, usdc: Decimal) -> None:
        user = user.lower()
        self.engine.fund(user, "USDC", Decimal(usdc))
        self.users.add(user)
        self.dirty = True

    # -- orders ------------------------------------------------------------------------------------
    def place(self, user: str, order: P.ParsedOrder, now: int) -> dict:
        """One order of an `order` action; returns its status entry."""
        coin = self.asset(order.asset)
        if coin is None:
            return P.error_status("Invalid asset.", order.asset)
        text = P.precheck(self.rules[coin], order)
        if text is not None:
            return P.error_status(text, order.asset)
        if self.faults is not None and self.faults.take("reject_orders"):
            return P.error_status(P.TEXT["PerpMargin"], order.asset)
        out = self.engine.place(user, coin, order.side, order.price, order.size, client_id=order.cloid,
                                tif=order.tif, reduce_only=order.reduce_only, time_ms=now)
        if not out.accepted:
            text = P.reject_text(out.reason, out.message, self.bbo(coin))
            return P.error_status(text, order.asset)
        record = self.engine.order_status(user, oid=out.oid)
        ids = {"oid": out.oid, **({"cloid": order.cloid} if order.cloid else {})}
        if out.fills:   # a crossing order fills in full at the mid: there is no other liquidity
            self.out.fills.setdefault(user, []).extend(out.fills)
            self.out.update(record, self.status_of(record), now)
            total = sum((f.size for f in out.fills), Decimal(0))
            avg = sum((f.price * f.size for f in out.fills), Decimal(0)) / total
            return {"filled": {"totalSz": P.num(total), "avgPx": P.num(avg), **ids}}
        if out.resting:
            self.out.update(record, "open", now)
            if order.reduce_only:
                self.reduce_only.add((user, coin, out.oid))
            return {"resting": ids}
        return P.error_status(P.TEXT["IocCancel"], order.asset)

    def find(self, user: str, oid=None, cloid: str | None = None) -> EngineOrder | None:
        return self.engine.order_status(user, oid=oid, client_id=cloid)

    def cancel(self, user: str, asset, oid=None, cloid: str | None = None, now: int = 0,
               override: str | None = None) -> str | dict:
        """One cancel of a `cancel`/`cancelByCloid` action: "success" or an error entry."""
        coin = self.asset(asset)
        order = self.find(user, oid, cloid) if coin is not None else None
        if order is None or order.symbol != coin or not order.is_open:
            return P.error_status(P.TEXT["MissingOrder"], asset)
        if self.faults is not None and self.faults.take("cancel_fills"):
            fills = self.engine.fill_resting(user, order.oid, time_ms=now)
            self.out.fills.setdefault(user, []).extend(fills)
            self.out.update(order, self.status_of(order), now)
            raise AnswerServerError(f"cancel of oid {order.oid} raced its fill")
        result = self.engine.cancel(user, coin, oid=order.oid, time_ms=now)
        if not result.ok:
            return P.error_status(P.TEXT["MissingOrder"], asset)
        if override:
            self.overrides[order.oid] = override
        self.reduce_only.discard((user, coin, order.oid))
        self.out.update(result.order, override or "canceled", now)
        return "success"

    def modify(self, user: str, ref, order: P.ParsedOrder, now: int) -> dict:
        """batchModify: cancel the order named by oid or (normalized) cloid and place the new one with a
        new oid. A new order that breaks a wire rule (tick, size, $10) leaves the old one untouched; one
        the engine refuses (margin, post-only crossing) leaves the old one cancelled."""
        old = self.find(user, None, ref) if isinstance(ref, str) else self.find(user, ref)
        coin = self.asset(order.asset)
        if old is None or not old.is_open:
            return P.error_status(P.TEXT["ModifyClosed"], order.asset)
        if coin is None or coin != old.symbol:
            return P.error_status("Invalid asset.", order.asset)
        text = P.precheck(self.rules[coin], order)
        if text is not None:
            return P.error_status(text, order.asset)
        self.cancel(user, order.asset, oid=old.oid, now=now)
        if order.cloid is not None and order.cloid == old.client_id:
            # The replacement may keep its cloid: the engine otherwise treats a cloid as used forever.
            self.engine._used_cids.get(user, set()).discard(order.cloid)
        return self.place(user, order, now)

    # -- scheduled cancels (dead man's switch) ---------------------------------------------------
    def triggers_today(self, user: str, now: int) -> int:
        day, count = self.triggers.get(user, [now // 86_400_000, 0])
        return count if day == now // 86_400_000 else 0

    def schedule_cancel(self, user: str, at: int | None, now: int) -> str | None:
        if at is None:
            if self.scheduled.pop(user, None) is not None:
                self.dirty = True
            return None
        if not isinstance(at, int) or isinstance(at, bool):
            return "Invalid scheduled cancel time."
        if self.triggers_today(user, now) >= 10:
            return "Too many scheduled cancel triggers today: at most 10 per day."
        if at < now + 5000:
            return "Scheduled cancel time too early, must be at least 5 seconds after current time."
        self.scheduled[user] = at
        self.dirty = True
        return None

    def fire_scheduled(self, now: int, force: bool = False) -> int:
        """Cancel every open order of each user whose switch is due (all pending ones with `force`)."""
        fired = 0
        for user, at in sorted(self.scheduled.items()):
            if not force and at > now:
                continue
            del self.scheduled[user]
            self.triggers[user] = [now // 86_400_000, self.triggers_today(user, now) + 1]
            for order in self.engine.open_orders(user):
                if self.cancel(user, self.coins.index(order.symbol), oid=order.oid, now=now,
                               override="scheduledCancel") == "success":
                    self.out.cancels.setdefault(user, []).append({"coin": order.symbol, "oid": order.oid})
            fired += 1
            self.dirty = True
        return fired

    # -- the market moves -------------------------------------------------------------------------
    def _advance(self, coin: str, now: int, price: Decimal) -> None:
        fills = self.engine.advance(coin, now, price)
        touched: dict[int, str] = {}
        for fill in fills:
            self.out.fills.setdefault(fill.account, []).append(fill)
            touched[fill.oid] = fill.account
        for user, c, oid in list(self.reduce_only):
            if c == coin:
                touched[oid] = user
        for oid, user in touched.items():
            order = self.find(user, oid)
            if order is not None and not order.is_open:
                self.reduce_only.discard((user, coin, oid))
                self.out.update(order, self.status_of(order), now)

    def set_price(self, coin: str, price: Decimal) -> None:
        self._advance(coin, self.now(), price)
        self.dirty = True

    def tick(self, now: int) -> None:
        """Walk every path by the real time since the last tick times `speed`, fire due switches."""
        elapsed = max(0, now - self._last_real)
        self._last_real = now
        if not self.paused and elapsed:
            for coin in self.coins:
                path = self.paths[coin]
                target = self.sim_ms[coin] + int(elapsed * self.settings.speed)
                for _ in range(_MAX_POINTS_PER_TICK):
                    point = path.peek()
                    if point is None or point[0] > target:
                        break
                    path.next_point()
                    self._advance(coin, now, point[1])
                else:   # a long stall is walked over several ticks, never skipped
                    target = point[0]
                self.sim_ms[coin] = target
        self.fire_scheduled(now)
        if not self.commit() and self.settings.state and now - self._last_cursor_save >= 1000:
            self.save_cursor(now)
