"""FillGuarantorActor: every fill, from every source, journaled exactly once before anyone acts on it.

Dedup is the journal's UNIQUE trade id (I1); FillsRecorded goes out only after the commit (I2). A
stream outage triggers an immediate backfill from the last journaled fill minus a margin (C-3), and a
timer audits the exchange's fills and position (H-2).
"""
from __future__ import annotations

from collections import Counter

from actors.outbox import REPLY, After, MalformedInput, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import RequestBackfill, RequestSnapshot
from messages.events import ExchangeSnapshot, FillsReceived, FillsRecorded, StreamDown, StreamUp
from messages.lifecycle import Rebuild, Reconciled, StatusReport, StatusRequest
from messages.reports import FillReport
from messages.types import FillSource

FILL_SUBSCRIBERS = ("position", "orderbook", "balance", "risk", "grid")
_AUDIT = "audit"


class FillGuarantor:
    def __init__(self, journal: Journal, margin_ms: int, audit_interval_s: float):
        self.journal = journal
        self.margin_ms = margin_ms
        self.audit_interval_s = audit_interval_s
        self.recorded = Counter()
        self.duplicates = 0
        self.stream_downs = 0
        self.audits = 0
        self._request_id = 0

    def _since(self) -> int:
        last = self.journal.last_fill_time_ms()
        return 0 if last is None else max(0, last - self.margin_ms)

    def record(self, fills, source: FillSource) -> list:
        for f in fills:
            if (not isinstance(f, FillReport) or not f.trade_id or not f.size.is_finite()
                    or not f.price.is_finite() or f.size <= 0 or f.price <= 0 or not f.fee.is_finite()):
                raise MalformedInput(f"not a fill: {f!r}")
        new = self.journal.record_fills(fills, source)
        self.duplicates += len(fills) - len(new)
        if not new:
            return []
        self.recorded[source.value] += len(new)
        self.journal.set_watermark(source, max(f.time_ms for _, f in new))
        return [Out(FILL_SUBSCRIBERS, FillsRecorded(new[-1][0], tuple(f for _, f in new)))]

    def on_fills(self, msg: FillsReceived) -> list:
        return self.record(msg.fills, msg.source)

    def on_stream_down(self, msg: StreamDown) -> list:
        self.stream_downs += 1
        return [Out("gateway", RequestBackfill(self._since(), FillSource.BACKFILL))]

    def on_stream_up(self, msg: StreamUp) -> list:
        return [Out("gateway", RequestBackfill(self._since(), FillSource.BACKFILL))]

    def on_rebuild(self, msg: Rebuild) -> list:
        out = self.record(msg.state.fills, FillSource.RECON)
        return out + [Out(REPLY, Reconciled("guarantor", True, f"journal version {self.journal.version()}")),
                      After(self.audit_interval_s, _AUDIT)]

    def on_timer(self, payload) -> list:
        if payload != _AUDIT:
            return []
        return [self.audit(), After(self.audit_interval_s, _AUDIT)]

    def audit(self) -> Out:
        """Ask the exchange for its fills and position; the snapshot comes back through here so the
        ledger sees it only after every fill in it is journaled."""
        self.audits += 1
        self._request_id += 1
        return Out("gateway", RequestSnapshot(self._request_id, self._since()))

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        out = self.record(msg.state.fills, FillSource.REST)
        return out + [Out(("position", "balance"), msg)]

    def on_request_snapshot(self, msg: RequestSnapshot) -> list:
        """The supervisor wants an audit it can recognise (its request id comes back with the snapshot)."""
        self.audits += 1
        return [Out("gateway", RequestSnapshot(msg.request_id, self._since()))]

    def on_status(self, msg: StatusRequest) -> list:
        by_source = self.journal.fills_by_source()
        data = {"version": self.journal.version(), "fills": sum(by_source.values()),
                "fills_by_source": by_source, "duplicates_skipped": self.duplicates,
                "stream_downs": self.stream_downs, "audits": self.audits,
                "fills_from_ws": by_source.get("ws", 0), "fills_from_rest": by_source.get("rest", 0),
                "fills_from_recon": by_source.get("recon", 0) + by_source.get("backfill", 0)}
        return [Out(REPLY, StatusReport("guarantor", msg.request_id, data))]

    def close(self) -> None:
        self.journal.close()


class FillGuarantorActor(ActorShell):
    role = "guarantor"
    routes = {FillsReceived: "on_fills", StreamDown: "on_stream_down", StreamUp: "on_stream_up",
              Rebuild: "on_rebuild", ExchangeSnapshot: "on_snapshot", StatusRequest: "on_status",
              RequestSnapshot: "on_request_snapshot"}

    def make_state(self, wire):
        cfg = wire.config
        return FillGuarantor(Journal(cfg.state_path / "journal.db"), cfg.timing.backfill_margin_ms,
                             cfg.timing.audit_interval_s)
