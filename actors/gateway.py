"""Gateway actor: the one connection to the exchange. Only the order book writes through it.

Every adapter call is bounded and classified: a whole-batch failure becomes per-order Unknown (the
exchange may have acted: resolved later by status query) or Rejected (nothing reached it), and an
ExchangeError goes to the risk actor's circuit breaker (H-3). Pushed events (fills, prices, stream
state) are drained after every call and on a short pump timer.
"""
from __future__ import annotations

import os
import time
from collections import deque

from loguru import logger

from actors.outbox import REPLY, After, Out
from actors.shell import ActorShell
from adapters.base import Exchange, ExchangeFailure, Unknown
from messages.commands import (
    CancelOrders,
    DisarmDeadMan,
    PlaceOrders,
    QueryOrders,
    RequestBackfill,
    RequestSnapshot,
    StopMarketData,
)
from messages.events import (
    CancelFailed,
    ExchangeError,
    ExchangeSnapshot,
    FillsReceived,
    OrderRejected,
    OrdersCancelled,
    OrderStatuses,
    OrdersPlaced,
    OrderUnknown,
    PriceTick,
    StreamDown,
    StreamUp,
)
from messages.lifecycle import StatusReport, StatusRequest
from messages.types import RejectReason

TICK_SUBSCRIBERS = ("grid", "position", "balance", "risk", "orderbook")
_PUMP = "pump"
_RETRY_DELAY_S = 1.0


def percentiles(samples) -> dict:
    """p50/p99/max of a latency sample (ms), for status and the benchmark."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.50), "p99": pick(0.99), "max": round(ordered[-1], 3)}


def now_ms() -> int:
    return int(time.time() * 1000)


class Gateway:
    def __init__(self, exchange: Exchange, pump_interval_s: float, reaction_hold_s: float = 0.5):
        self.exchange = exchange
        self.pump_interval_s = pump_interval_s
        self.reaction_hold_s = reaction_hold_s
        self.held_until = 0.0
        self.market_data = True
        self.stream_up = True
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.last_error = ""
        self.last_price = None
        self.fill_seen_at: float | None = None           # perf_counter when fills last came in
        self.reaction_ms: deque[float] = deque(maxlen=10_000)   # fill received -> next order sent
        self.place_requests = 0

    def start(self) -> list:
        self.exchange.connect()
        self.exchange.start_stream()
        return [After(self.pump_interval_s, _PUMP)]

    def _failed(self, exc: ExchangeFailure, what: str) -> Out:
        self.errors[exc.kind] = self.errors.get(exc.kind, 0) + 1
        self.last_error = f"{what}: {exc}"
        logger.warning("exchange {} failed ({}): {}", what, exc.kind, exc)
        return Out("risk", ExchangeError(exc.kind, str(exc), exc.retry_after, now_ms()))

    def drain(self) -> list:
        out, tick = [], None
        for event in self.exchange.drain_events():
            if isinstance(event, PriceTick):
                tick = event
            elif isinstance(event, (FillsReceived, StreamDown, StreamUp)):
                if isinstance(event, FillsReceived) and event.fills:
                    if self.fill_seen_at is None:
                        self.fill_seen_at = time.perf_counter()
                    if self.exchange.paced:
                        self.held_until = time.monotonic() + self.reaction_hold_s
                if isinstance(event, (StreamDown, StreamUp)):
                    self.stream_up = isinstance(event, StreamUp)
                out.append(Out("guarantor", event))
        if tick is not None and self.market_data:
            self.last_price = tick.mid
            out.append(Out(TICK_SUBSCRIBERS, tick))
        return out

    def on_timer(self, payload) -> list:
        if payload == _PUMP:
            out = []
            if self.market_data and time.monotonic() >= self.held_until:
                self.exchange.pump(now_ms())
            if self.market_data:
                try:
                    self.exchange.keepalive(now_ms())
                except ExchangeFailure as exc:
                    out.append(self._failed(exc, "keepalive"))
            return out + self.drain() + [After(self.pump_interval_s, _PUMP)]
        if isinstance(payload, tuple) and payload and payload[0] == "retry":
            return self.route(payload[1])
        return []

    def route(self, msg) -> list:
        handler = {QueryOrders: self.on_query, RequestBackfill: self.on_backfill}[type(msg)]
        return handler(msg)

    def on_snapshot(self, msg: RequestSnapshot) -> list:
        self.requests += 1
        try:
            state = self.exchange.snapshot(msg.fills_since_ms)
        except ExchangeFailure as exc:
            return [self._failed(exc, "snapshot"), Out(REPLY, ExchangeError(exc.kind, str(exc), exc.retry_after))]
        return self.drain() + [Out(REPLY, ExchangeSnapshot(msg.request_id, state))]

    def on_place(self, msg: PlaceOrders) -> list:
        self.requests += 1
        self.held_until = 0.0       # the bot has reacted: a paced venue may move on
        if self.fill_seen_at is not None:
            self.reaction_ms.append((time.perf_counter() - self.fill_seen_at) * 1000)
            self.fill_seen_at = None
        extra, results = [], []
        for chunk in self._chunks(msg.orders):
            self.place_requests += 1
            try:
                results += self.exchange.place(chunk)
            except Unknown as exc:
                extra.append(self._failed(exc, "place"))
                results += [OrderUnknown(o.client_id, str(exc)) for o in chunk]
            except ExchangeFailure as exc:
                extra.append(self._failed(exc, "place"))
                reason = getattr(exc, "reason", RejectReason.OTHER)
                results += [OrderRejected(o.client_id, reason, f"{exc.kind}: {exc}") for o in chunk]
        return [Out(REPLY, OrdersPlaced(msg.batch_id, tuple(results)))] + extra + self.drain()

    def _chunks(self, items) -> list:
        """A batch larger than the venue takes in one request goes out as several, in order."""
        size = max(1, self.exchange.max_batch)
        return [items[i:i + size] for i in range(0, len(items), size)]

    def on_cancel(self, msg: CancelOrders) -> list:
        self.requests += 1
        extra, results = [], []
        for chunk in self._chunks(msg.orders):
            try:
                results += self.exchange.cancel(chunk)
            except ExchangeFailure as exc:
                extra.append(self._failed(exc, "cancel"))
                results += [CancelFailed(cid, f"{exc.kind}: {exc}", True) for cid, _ in chunk]
        return [Out(REPLY, OrdersCancelled(msg.batch_id, tuple(results)))] + extra + self.drain()

    def on_query(self, msg: QueryOrders) -> list:
        self.requests += 1
        try:
            reports = self.exchange.order_status(msg.client_ids)
        except ExchangeFailure as exc:
            return [self._failed(exc, "order status"), After(exc.retry_after or _RETRY_DELAY_S, ("retry", msg))]
        return [Out("orderbook", OrderStatuses(msg.request_id, tuple(zip(msg.client_ids, reports))))] + self.drain()

    def on_backfill(self, msg: RequestBackfill) -> list:
        self.requests += 1
        try:
            fills = self.exchange.fills_since(msg.since_ms)
        except ExchangeFailure as exc:
            return [self._failed(exc, "backfill"), After(exc.retry_after or _RETRY_DELAY_S, ("retry", msg))]
        return [Out("guarantor", FillsReceived(msg.source, tuple(fills)))] + self.drain()

    def on_stop(self, msg: StopMarketData) -> list:
        self.market_data = False
        return self.drain()

    def on_disarm(self, msg: DisarmDeadMan) -> list:
        try:
            self.exchange.disarm()
        except ExchangeFailure as exc:
            return [self._failed(exc, "disarm")]
        logger.info("dead man's switch cleared ({})", msg.reason)
        return []

    def on_status(self, msg: StatusRequest) -> list:
        data = {"exchange": self.exchange.name, "stream_up": self.stream_up, "requests": self.requests,
                "errors": dict(self.errors), "last_error": self.last_error, "price": self.last_price,
                "market_data": self.market_data,
                "dead_man_until": getattr(self.exchange, "dead_man_until", None),
                "reconnects": getattr(self.exchange, "reconnects", 0),
                "malformed_payloads": getattr(self.exchange, "malformed", 0),
                "place_requests": self.place_requests, "fill_to_order_ms": percentiles(self.reaction_ms),
                "weight_used_1m": self._weight_used(),
                "budgets": self.exchange.budget.view() if hasattr(getattr(self.exchange, "budget", None), "view")
                else {}}
        return [Out(REPLY, StatusReport("gateway", msg.request_id, data))]

    def _weight_used(self) -> int | None:
        """REST weight spent in the last minute, where the adapter keeps a budget."""
        budget = getattr(self.exchange, "budget", None)
        used = getattr(budget, "used", None)
        return used() if callable(used) else None

    def close(self) -> None:
        self.exchange.close()


class GatewayActor(ActorShell):
    role = "gateway"
    routes = {PlaceOrders: "on_place", CancelOrders: "on_cancel", QueryOrders: "on_query",
              RequestSnapshot: "on_snapshot", RequestBackfill: "on_backfill", StopMarketData: "on_stop",
              DisarmDeadMan: "on_disarm",
              StatusRequest: "on_status"}

    def make_state(self, wire):
        from adapters.factory import build_exchange
        gateway = Gateway(build_exchange(wire.config), wire.config.timing.pump_interval_s,
                          wire.config.paper.reaction_hold_s)
        self._pending_start = True
        return gateway

    def on_wired(self) -> list:
        if getattr(self, "_pending_start", False):
            self._pending_start = False
            logger.info("gateway {} connected to {}", os.getpid(), self.state.exchange.name)
            return self.state.start()
        return []

    def watch_fds(self) -> list[int]:
        fd = self.state.exchange.wakeup_fd if self.state is not None else None
        return [fd] if fd is not None else []

    def on_watch(self, ready) -> list:
        return self.state.drain()
