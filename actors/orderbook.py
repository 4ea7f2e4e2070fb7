"""OrderBookActor: our orders, one owner, one state machine (S-3).

An intent is journaled before it is sent (M-5); intents and cancels go out in batches flushed by size or
a short fixed window (M-3); an order is complete when what remains is below one lot step (C-2); and an
order whose fate is unknown (timeout, 5xx, failed cancel, missing after a restart) is resolved by a
status query, never guessed (C-6, B-2.3).
"""
from __future__ import annotations

import time
from collections import deque
from decimal import Decimal

from loguru import logger

from actors.order_record import LIVE, UNANSWERED, BatchWindow, OrderRecord, Watchdog
from actors.outbox import REPLY, SUPERVISOR, After, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import (
    CancelOrders,
    OrderSpec,
    PlaceOrders,
    QueryOrders,
    RequestBackfill,
    RequestCancels,
    SubmitOrders,
)
from messages.events import (
    ExchangeSnapshot,
    CancelFailed,
    FillsRecorded,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    OrdersCancelled,
    OrdersChanged,
    OrdersCleared,
    OrderStatuses,
    OrdersPlaced,
    OrderUnknown,
    PriceTick,
)
from messages.lifecycle import ModeChanged, Rebuild, Reconciled, StatusReport, StatusRequest
from messages.types import ZERO, FillSource, MarketRules, Mode, OrderState, Origin, Side

ORDER_SUBSCRIBERS = ("grid", "risk", "balance")
_FLUSH, _QUERY, _WATCH = "flush", "query", "watch"
_LOST_GRACE_S = 5.0
_KEEP_ENDED = 2000


class OrderBook:
    def __init__(self, journal: Journal | None, batch_window_ms: int, batch_max: int, query_delay_s: float,
                 backfill_margin_ms: int, answer_timeout_s: float = 20.0, max_queries: int = 5,
                 fast_window_ms: int = 5, fast_move_pct: Decimal = Decimal("0.2"), clock=time.time):
        self.journal = journal
        self.clock = clock          # wall clock live; a backtest gives its simulated one
        self.window = BatchWindow(batch_window_ms, fast_window_ms, fast_move_pct)
        self.batch_max = batch_max
        self.query_delay_s = query_delay_s
        self.margin_ms = backfill_margin_ms
        self.rules: MarketRules | None = None
        self.rule_refusals: dict[str, int] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.by_exchange_id: dict[str, str] = {}
        self.pending: list[str] = []
        self.flush_scheduled = False
        self.to_query: set[str] = set()
        self.query_scheduled = False
        self.clearing = False
        self.accepting = True
        self._batch = 0
        self.watchdog = Watchdog(answer_timeout_s, max_queries)
        self._ended: deque[str] = deque()
        self.counters = {"placed": 0, "rejected": 0, "unknown": 0, "cancelled": 0, "filled": 0,
                         "late_fills": 0, "foreign_fills": 0, "status_queries": 0}

    # -- helpers ---------------------------------------------------------------------------------
    def _save(self, records, durable: bool = True) -> None:
        if self.journal is not None and records:
            self.journal.save_orders((r.row() for r in records), durable)

    def _changed(self, records) -> list:
        self._save(records)
        self._forget_ended(r for r in records if r.state.terminal)
        out = [Out(ORDER_SUBSCRIBERS, OrdersChanged(tuple(r.update() for r in records)))] if records else []
        if self.clearing and not self.live():
            self.clearing = False
            out.append(Out(SUPERVISOR, OrdersCleared(0)))
        return out

    def _forget_ended(self, ended) -> None:
        """Ended orders stay in memory for a while (a late fill still finds its order), then only in
        the journal: the book's size is bounded by the live orders, not by every order ever placed."""
        for rec in ended:
            self._ended.append(rec.spec.client_id)
        while len(self._ended) > _KEEP_ENDED:
            cid = self._ended.popleft()
            rec = self.orders.get(cid)
            if rec is not None and rec.state.terminal:
                del self.orders[cid]
                self.by_exchange_id.pop(rec.exchange_id or "", None)

    def live(self) -> list[OrderRecord]:
        return [r for r in self.orders.values() if r.state in LIVE]

    def _next_batch(self) -> int:
        self._batch += 1
        return self._batch

    def _query_later(self, cids) -> list:
        self.to_query.update(cids)
        if self.query_scheduled or not self.to_query:
            return []
        self.query_scheduled = True
        return [After(self.query_delay_s, _QUERY)]

    # -- placing ---------------------------------------------------------------------------------
    def on_tick(self, msg: PriceTick) -> list:
        self.window.observe(msg.mid)
        return []

    def on_mode(self, msg: ModeChanged) -> list:
        """Stopping or halted: nothing new reaches the exchange, whatever is already in the pipeline."""
        self.accepting = msg.mode not in (Mode.STOPPING, Mode.HALTED, Mode.EMERGENCY)
        return []

    def on_submit(self, msg: SubmitOrders) -> list:
        fresh, refused = [], []
        live = len(self.live())
        for spec in msg.orders:
            if spec.client_id in self.orders:
                continue            # the same deterministic id again: already ours, never twice
            rec = OrderRecord(spec, created=self.clock())
            self.orders[spec.client_id] = rec
            if not self.accepting and spec.origin is Origin.GRID:
                rec.move(OrderState.REJECTED, "the order book is not accepting grid orders")
                refused.append(rec)
                continue
            reason = self.rules.check(spec.price, spec.size, live) if self.rules else None
            if reason is not None:
                # The exchange would refuse it (B-2.4): refused here, with the reason, never sent.
                rec.move(OrderState.REJECTED, f"market rule: {reason.value}")
                self.rule_refusals[reason.value] = self.rule_refusals.get(reason.value, 0) + 1
                logger.warning("order {} refused before sending: {} ({} {} @ {})", spec.client_id, reason.value,
                               spec.side.value, spec.size, spec.price)
                refused.append(rec)
                continue
            self.pending.append(spec.client_id)
            fresh.append(rec)
            live += 1
        self._save(fresh)           # write-ahead: journaled before it can be sent
        out = self._changed(refused)
        if len(self.pending) >= self.batch_max or (self.pending and self.window.seconds <= 0):
            return out + self.flush()
        if self.pending and not self.flush_scheduled:
            self.flush_scheduled = True
            out.append(After(self.window.seconds, _FLUSH))
        return out

    def flush(self) -> list:
        out = []
        while self.pending:
            chunk, self.pending = self.pending[:self.batch_max], self.pending[self.batch_max:]
            records = [self.orders[c] for c in chunk if self.orders[c].state is OrderState.INTENT]
            for r in records:
                r.move(OrderState.SUBMITTED)
            # The intents are durable already; a rebuild treats intent and submitted alike (asks the
            # exchange by client id), so this step needs no fsync of its own.
            self._save(records, durable=False)
            if records:
                batch = self._next_batch()
                out.append(Out("gateway", PlaceOrders(batch, tuple(r.spec for r in records))))
                out.append(self.watchdog.watch(batch, [r.spec.client_id for r in records], _WATCH))
        return out

    def on_placed(self, msg: OrdersPlaced) -> list:
        changed, unknown = [], []
        self.watchdog.expired(msg.batch_id)
        for result in msg.results:
            rec = self.orders.get(result.client_id)
            if rec is None:
                continue
            if isinstance(result, OrderAcked):
                rec.exchange_id = result.exchange_order_id
                self.by_exchange_id[result.exchange_order_id] = rec.spec.client_id
                if rec.state in (OrderState.SUBMITTED, OrderState.UNKNOWN, OrderState.INTENT):
                    rec.move(OrderState.OPEN)
                self.counters["placed"] += 1
            elif isinstance(result, OrderRejected):
                if rec.state in (OrderState.SUBMITTED, OrderState.INTENT):
                    rec.move(OrderState.REJECTED, result.message or result.reason.value)
                self.counters["rejected"] += 1
            elif isinstance(result, OrderUnknown):
                if rec.state not in (OrderState.SUBMITTED, OrderState.INTENT):
                    continue                       # a fill or cancel already told us more
                rec.move(OrderState.UNKNOWN)
                unknown.append(rec.spec.client_id)
                self.counters["unknown"] += 1
            changed.append(rec)
        return self._changed(changed) + self._query_later(unknown)

    # -- fills -----------------------------------------------------------------------------------
    def _find(self, fill) -> OrderRecord | None:
        cid = fill.client_id or self.by_exchange_id.get(fill.exchange_order_id or "")
        return self.orders.get(cid) if cid else None

    def on_fills(self, msg: FillsRecorded) -> list:
        changed = []
        for fill in msg.fills:
            rec = self._find(fill)
            if rec is None:
                self.counters["foreign_fills"] += 1
                continue
            if rec.state is OrderState.FILLED:
                self.counters["late_fills"] += 1
            rec.filled += fill.size
            if fill.exchange_order_id and rec.exchange_id is None:
                rec.exchange_id = fill.exchange_order_id
                self.by_exchange_id[fill.exchange_order_id] = rec.spec.client_id
            remaining = rec.spec.size - rec.filled
            complete = self.rules.is_complete(remaining) if self.rules else remaining <= 0
            if complete and rec.state is not OrderState.FILLED:
                rec.move(OrderState.FILLED)
                self.counters["filled"] += 1
            elif not complete and rec.state is not OrderState.CANCEL_PENDING and not rec.state.terminal:
                rec.move(OrderState.PARTIALLY_FILLED)
            self.to_query.discard(rec.spec.client_id)
            changed.append(rec)
        return self._changed(changed)

    # -- cancelling ------------------------------------------------------------------------------
    def on_cancel_request(self, msg: RequestCancels) -> list:
        if msg.all_orders:
            self.clearing = True
            targets = self.live()
        else:
            targets = [self.orders[c] for c in msg.client_ids if c in self.orders]
        changed, wire = [], []
        for rec in targets:
            if rec.state is OrderState.INTENT:
                rec.move(OrderState.CANCELLED)
                self.pending = [c for c in self.pending if c != rec.spec.client_id]
                changed.append(rec)
            elif rec.state in LIVE:
                rec.move(OrderState.CANCEL_PENDING)
                wire.append((rec.spec.client_id, rec.exchange_id))
                changed.append(rec)
        out = self._changed(changed)
        for i in range(0, len(wire), self.batch_max):
            batch, chunk = self._next_batch(), tuple(wire[i:i + self.batch_max])
            out.append(Out("gateway", CancelOrders(batch, chunk)))
            out.append(self.watchdog.watch(batch, [cid for cid, _ in chunk], _WATCH))
        if self.clearing and not out:
            self.clearing = False
            out.append(Out(SUPERVISOR, OrdersCleared(0)))
        return out

    def on_cancelled(self, msg: OrdersCancelled) -> list:
        changed, ambiguous = [], []
        self.watchdog.expired(msg.batch_id)
        for result in msg.results:
            rec = self.orders.get(result.client_id)
            if rec is None or rec.state.terminal:
                continue
            if isinstance(result, OrderCancelled):
                rec.move(OrderState.CANCELLED)
                self.counters["cancelled"] += 1
                changed.append(rec)
            elif isinstance(result, CancelFailed):
                ambiguous.append(rec.spec.client_id)       # it may have filled: ask, never guess (C-6)
        return self._changed(changed) + self._query_later(ambiguous)

    # -- resolving unknowns ----------------------------------------------------------------------
    def on_timer(self, payload) -> list:
        if payload == _FLUSH:
            self.flush_scheduled = False
            return self.flush()
        if payload == _QUERY:
            self.query_scheduled = False
            cids = tuple(sorted(c for c in self.to_query if c in self.orders and not self.orders[c].state.terminal
                                and self.watchdog.may_query(c)))
            self.to_query.clear()
            if not cids:
                return []
            self.counters["status_queries"] += 1
            rid = self._next_batch()
            return [Out("gateway", QueryOrders(rid, cids)), self.watchdog.watch(rid, cids, _WATCH)]
        if isinstance(payload, tuple) and payload[0] == _WATCH:
            return self._unanswered(self.watchdog.expired(payload[1]))
        return []

    def _unanswered(self, cids) -> list:
        """No answer in time: a sent order may or may not be on the exchange; ask, never guess."""
        waiting = [self.orders[c] for c in cids if c in self.orders and self.orders[c].state in UNANSWERED]
        changed = []
        for rec in waiting:
            if rec.state is OrderState.SUBMITTED:
                rec.move(OrderState.UNKNOWN)
                self.counters["unknown"] += 1
                changed.append(rec)
        if waiting:
            logger.warning("{} orders unanswered by the gateway in time: asking their status", len(waiting))
        return self._changed(changed) + self._query_later([r.spec.client_id for r in waiting])

    def on_statuses(self, msg: OrderStatuses) -> list:
        changed, filled_since, recancel = [], None, []
        self.watchdog.expired(msg.request_id)
        for cid, report in msg.reports:
            self.watchdog.resolved(cid)
            rec = self.orders.get(cid)
            if rec is None or rec.state.terminal:
                continue
            if report is None:
                rec.move(OrderState.REJECTED if rec.state is not OrderState.CANCEL_PENDING else OrderState.CANCELLED)
            elif report.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED):
                rec.exchange_id = report.exchange_order_id
                self.by_exchange_id[report.exchange_order_id or ""] = cid
                if rec.state is OrderState.CANCEL_PENDING:
                    recancel.append(cid)
                    continue
                rec.move(report.state)
            elif report.state is OrderState.CANCELLED and report.filled == 0:
                rec.move(OrderState.CANCELLED)
            else:
                # filled (or cancelled after a partial fill): fetch the fills through the guarantor (B-2.3)
                since = int(rec.created * 1000) - self.margin_ms
                filled_since = since if filled_since is None else min(filled_since, since)
                if report.state is not OrderState.CANCELLED:
                    continue            # filled: the fills complete it when they are journaled
                rec.move(OrderState.CANCELLED)    # and everyone hears it: the level is free again
            changed.append(rec)
        out = self._changed(changed)
        if filled_since is not None:
            out.append(Out("gateway", RequestBackfill(max(0, filled_since), FillSource.STATUS)))
        if recancel:
            for cid in recancel:
                self.orders[cid].move(OrderState.OPEN)
            out += self.on_cancel_request(RequestCancels(tuple(recancel)))
        return out

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        """Lost orders (B-2.3): one we think is live that the exchange's open orders lack is asked
        about by client id. The answer is the truth: cancelled by the venue (a dead man's switch, a
        margin call), filled (its fills are fetched through the guarantor), or never there. Orders
        younger than the grace period may simply postdate the snapshot."""
        on_exchange = {o.client_id for o in msg.state.open_orders if o.client_id}
        cutoff = self.clock() - _LOST_GRACE_S
        missing = [cid for cid, r in self.orders.items()
                   if r.state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED) and cid not in on_exchange
                   and r.created < cutoff and cid not in self.to_query]
        if not missing:
            return []
        self.counters["lost_suspected"] = self.counters.get("lost_suspected", 0) + len(missing)
        logger.warning("{} orders missing from the exchange's open orders: asking their status", len(missing))
        return self._query_later(missing)

    # -- rebuild ---------------------------------------------------------------------------------
    def on_rebuild(self, msg: Rebuild) -> list:
        """The exchange's open orders plus our journal say exactly which intents reached it."""
        state = msg.state
        self.rules = state.rules
        journaled = {r["client_id"]: r for r in self.journal.orders()} if self.journal else {}
        filled = self.journal.filled_by_client_id() if self.journal else {}
        self.orders.clear()
        self._ended.clear()
        self.by_exchange_id.clear()
        self.pending.clear()
        self.clearing = False
        on_exchange = set()
        for report in state.open_orders:
            row = journaled.get(report.client_id or "")
            if row is None:
                continue                # not ours: never touch a user's own orders
            spec = OrderSpec(report.client_id, report.symbol, report.side, report.price, report.size,
                             Origin(row["origin"]), row["level"], row["position_version"], report.reduce_only)
            rec = OrderRecord(spec, report.state, report.exchange_order_id, report.filled, self.clock())
            self.orders[spec.client_id] = rec
            self.by_exchange_id[report.exchange_order_id or ""] = spec.client_id
            on_exchange.add(spec.client_id)
        missing = []
        for cid, row in journaled.items():
            if cid in on_exchange or OrderState(row["state"]).terminal:
                continue
            spec = OrderSpec(cid, row["symbol"], Side(row["side"]), Decimal(row["price"]), Decimal(row["size"]),
                             Origin(row["origin"]), row["level"], row["position_version"])
            done = filled.get(cid, ZERO)
            rec = OrderRecord(spec, OrderState.UNKNOWN, row["exchange_order_id"], done, row["created_at"])
            self.orders[cid] = rec
            if self.rules.is_complete(spec.size - done):
                rec.move(OrderState.FILLED)        # its fills are already journaled (B-2.3)
                continue
            missing.append(cid)
        self._save(list(self.orders.values()))     # the journal now says what the exchange says
        out = [Out(ORDER_SUBSCRIBERS, OrdersChanged(tuple(r.update() for r in self.orders.values())))]
        out += self._query_later(missing)
        out.append(Out(REPLY, Reconciled("orderbook", True,
                                         f"{len(on_exchange)} open, {len(missing)} to resolve")))
        return out

    def on_status(self, msg: StatusRequest) -> list:
        live = self.live()
        data = {"open_orders": len(live), "orders": len(self.orders), **self.counters,
                "refused_by_rules": dict(self.rule_refusals), "unresolved": len(self.watchdog.gave_up),
                "oldest_pending_s": round(max((self.clock() - r.created for r in self.orders.values()
                                               if r.state in UNANSWERED), default=0.0), 3),
                "illegal_moves": sum(r.illegal for r in self.orders.values()),
                "by_state": {s.value: sum(1 for r in self.orders.values() if r.state is s) for s in OrderState}}
        return [Out(REPLY, StatusReport("orderbook", msg.request_id, data))]

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


class OrderBookActor(ActorShell):
    role = "orderbook"
    routes = {SubmitOrders: "on_submit", OrdersPlaced: "on_placed", FillsRecorded: "on_fills",
              RequestCancels: "on_cancel_request", OrdersCancelled: "on_cancelled",
              OrderStatuses: "on_statuses", Rebuild: "on_rebuild", StatusRequest: "on_status",
              ModeChanged: "on_mode", ExchangeSnapshot: "on_snapshot", PriceTick: "on_tick"}

    def make_state(self, wire):
        t = wire.config.timing
        return OrderBook(Journal(wire.config.state_path / "journal.db"), t.batch_window_ms, t.batch_max_orders,
                         t.status_query_delay_s, t.backfill_margin_ms, 2 * t.exchange_timeout_s, t.status_query_limit,
                         t.batch_window_fast_ms, t.fast_move_pct)
