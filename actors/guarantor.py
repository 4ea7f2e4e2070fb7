"""FillGuarantorActor: every fill, from every source, journaled exactly once before anyone acts on it.

Dedup is the journal's UNIQUE trade id (I1); FillsRecorded goes out only after the commit (I2). A
stream outage triggers an immediate backfill from the last journaled fill minus a margin (C-3). Each
source keeps its own persisted high-water mark, and a REST audit polls from REST's own mark minus the
margin, so a jump in another source's fill times can never make it skip a fill (M-2). Audits run on a
timer and, sooner, after a reconnection, a burst of fills, or a drift the ledger saw (H-2).
"""
from __future__ import annotations

from collections import Counter

from actors.outbox import REPLY, After, MalformedInput, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import RequestAudit, RequestBackfill, RequestSnapshot
from messages.events import ExchangeSnapshot, FillsReceived, FillsRecorded, StreamDown, StreamUp
from messages.lifecycle import Rebuild, Reconciled, StatusReport, StatusRequest
from messages.reports import FillReport
from messages.types import FillSource

# Sent in this order: the ledger and risk first, then the grid (the counter-order's critical path),
# then the order book and balances, which only account.
FILL_SUBSCRIBERS = ("position", "risk", "grid", "orderbook", "balance")
_AUDIT = "audit"
_AUDIT_SOON = "audit-soon"
_STREAM_GAP_SOURCES = (FillSource.REST, FillSource.BACKFILL, FillSource.STATUS)


class FillGuarantor:
    def __init__(self, journal: Journal, margin_ms: int, audit_interval_s: float,
                 audit_soon_s: float = 1.0, burst_fills: int = 10):
        self.journal = journal
        self.margin_ms = margin_ms
        self.audit_interval_s = audit_interval_s
        self.audit_soon_s = audit_soon_s
        self.burst_fills = burst_fills
        self.recorded = Counter()
        self.duplicates = 0
        self.gaps = 0
        self.stream_downs = 0
        self.audits = 0
        self.audit_reasons = Counter()
        self._soon_pending = False
        self._request_id = 0

    def _since(self) -> int:
        last = self.journal.last_fill_time_ms()
        return 0 if last is None else max(0, last - self.margin_ms)

    def _rest_since(self) -> int:
        """REST polls start at REST's own high-water mark (never past what REST has confirmed)."""
        start = self.journal.poll_start_ms(FillSource.REST, self.margin_ms)
        return 0 if start is None else start

    def _audit_soon(self, reason: str) -> list:
        """One early audit at a time; the periodic timer keeps running beside it."""
        self.audit_reasons[reason] += 1
        if self._soon_pending:
            return []
        self._soon_pending = True
        return [After(self.audit_soon_s, _AUDIT_SOON)]

    def record(self, fills, source: FillSource) -> list:
        for f in fills:
            if (not isinstance(f, FillReport) or not f.trade_id or not f.size.is_finite()
                    or not f.price.is_finite() or f.size <= 0 or f.price <= 0 or not f.fee.is_finite()):
                raise MalformedInput(f"not a fill: {f!r}")
        new = self.journal.record_fills(fills, source)
        self.duplicates += len(fills) - len(new)
        if fills:
            # Every fill of the batch is journaled now (new or known): the source has confirmed up to here.
            self.journal.set_watermark(source, max(f.time_ms for f in fills))
        if not new:
            return []
        self.recorded[source.value] += len(new)
        if source in _STREAM_GAP_SOURCES:
            self.gaps += len(new)       # fills the stream never delivered
        out = [Out(FILL_SUBSCRIBERS, FillsRecorded(new[-1][0], tuple(f for _, f in new)))]
        if len(new) >= self.burst_fills and source is FillSource.WS:
            out += self._audit_soon("burst")
        return out

    def on_fills(self, msg: FillsReceived) -> list:
        return self.record(msg.fills, msg.source)

    def on_stream_down(self, msg: StreamDown) -> list:
        self.stream_downs += 1
        return [Out("gateway", RequestBackfill(self._since(), FillSource.BACKFILL))]

    def on_stream_up(self, msg: StreamUp) -> list:
        return ([Out("gateway", RequestBackfill(self._since(), FillSource.BACKFILL))]
                + self._audit_soon("reconnect"))

    def on_request_audit(self, msg: RequestAudit) -> list:
        return self._audit_soon(msg.reason or "requested")

    def on_rebuild(self, msg: Rebuild) -> list:
        out = self.record(msg.state.fills, FillSource.RECON)
        return out + [Out(REPLY, Reconciled("guarantor", True, f"journal version {self.journal.version()}")),
                      After(self.audit_interval_s, _AUDIT)]

    def on_timer(self, payload) -> list:
        if payload == _AUDIT_SOON:
            self._soon_pending = False
            return [self.audit()]
        if payload != _AUDIT:
            return []
        return [self.audit(), After(self.audit_interval_s, _AUDIT)]

    def audit(self) -> Out:
        """Ask the exchange for its fills and position; the snapshot comes back through here so the
        ledger sees it only after every fill in it is journaled."""
        self.audits += 1
        self._request_id += 1
        return Out("gateway", RequestSnapshot(self._request_id, self._rest_since()))

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        out = self.record(msg.state.fills, FillSource.REST)
        return out + [Out(("position", "balance", "orderbook", "risk"), msg)]

    def on_request_snapshot(self, msg: RequestSnapshot) -> list:
        """The supervisor wants an audit it can recognise (its request id comes back with the snapshot)."""
        self.audits += 1
        return [Out("gateway", RequestSnapshot(msg.request_id, self._rest_since()))]

    def on_status(self, msg: StatusRequest) -> list:
        by_source = self.journal.fills_by_source()
        data = {"version": self.journal.version(), "fills": sum(by_source.values()),
                "fills_by_source": by_source, "duplicates_skipped": self.duplicates,
                "gaps_detected": self.gaps, "stream_downs": self.stream_downs, "audits": self.audits,
                "audit_reasons": dict(self.audit_reasons), "watermarks": self.journal.watermarks(),
                "fills_from_ws": by_source.get("ws", 0), "fills_from_rest": by_source.get("rest", 0),
                "fills_from_recon": by_source.get("recon", 0) + by_source.get("backfill", 0)}
        return [Out(REPLY, StatusReport("guarantor", msg.request_id, data))]

    def close(self) -> None:
        self.journal.close()


class FillGuarantorActor(ActorShell):
    role = "guarantor"
    routes = {FillsReceived: "on_fills", StreamDown: "on_stream_down", StreamUp: "on_stream_up",
              Rebuild: "on_rebuild", ExchangeSnapshot: "on_snapshot", StatusRequest: "on_status",
              RequestSnapshot: "on_request_snapshot", RequestAudit: "on_request_audit"}

    def make_state(self, wire):
        cfg = wire.config
        return FillGuarantor(Journal(cfg.state_path / "journal.db"), cfg.timing.backfill_margin_ms,
                             cfg.timing.audit_interval_s, cfg.timing.audit_soon_s, cfg.timing.audit_burst_fills)
