"""PositionActor: the shadow ledger (S-1).

The position is read from the exchange at every rebuild and then moved only by journaled fills newer
than that snapshot, so replaying the journal can never count a fill twice (C-5). Realized PnL, average
entry and fees are rebuilt from the journal, once per trade id. Audits compare the exchange's position
at its snapshot time with ours at the same time; a drift beyond the tolerance asks for an early
audit, and seen twice in a row it is corrected to the exchange and counted.
"""
from __future__ import annotations

from collections import deque
from decimal import Decimal

from actors.outbox import REPLY, MalformedInput, Out
from actors.shell import ActorShell
from adapters.journal import Journal
from messages.commands import RequestAudit
from messages.events import ExchangeSnapshot, FillsRecorded, PositionChanged, PriceTick
from messages.lifecycle import Rebuild, Reconciled, StatusReport, StatusRequest
from messages.reports import FillReport
from messages.types import ZERO

POSITION_SUBSCRIBERS = ("grid", "risk", "balance")
_RECENT = 20_000
_RECENT_KEEP_MS = 600_000


class Ledger:
    def __init__(self, journal: Journal | None = None, drift_tolerance: Decimal = ZERO):
        self.journal = journal
        self.drift_tolerance = drift_tolerance
        self.drifts_seen = 0
        self.position = ZERO
        self.exchange_position: Decimal | None = None
        self.snapshot_time_ms = 0
        self.version = 0
        self.book_position = ZERO      # position implied by journaled fills, for PnL and entry price
        self.average_entry = ZERO
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.mark: Decimal | None = None
        self.corrections = 0
        self.last_drift = ZERO
        self.recent_snapshot_ids: deque[int] = deque(maxlen=16)
        self.base_asset = ""            # spot: a fee paid in the base asset comes out of the holding
        self.exchange_open_orders: int | None = None
        self._suspect: Decimal | None = None
        self._pnl_seen: set[str] = set()
        self._recent: deque[tuple[int, Decimal]] = deque(maxlen=_RECENT)

    def held_change(self, fill: FillReport) -> Decimal:
        """What a fill does to the position: on spot a fee taken in the base asset is not held."""
        fee = fill.fee if fill.fee_asset == self.base_asset else ZERO
        return fill.signed_size - fee

    def fee_in_quote(self, fill: FillReport) -> Decimal:
        return fill.fee * fill.price if fill.fee_asset == self.base_asset else fill.fee

    # -- PnL by average cost over every journaled fill, each once --------------------------------
    def _book(self, fill: FillReport) -> None:
        if fill.trade_id in self._pnl_seen:
            return
        self._pnl_seen.add(fill.trade_id)
        self.fees += self.fee_in_quote(fill)
        qty = self.held_change(fill)
        pos = self.book_position
        if pos == 0 or (pos > 0) == (qty > 0):
            total = pos + qty
            self.average_entry = (self.average_entry * abs(pos) + fill.price * abs(qty)) / abs(total)
            self.book_position = total
            return
        closing = min(abs(qty), abs(pos))
        direction = 1 if pos > 0 else -1
        self.realized_pnl += (fill.price - self.average_entry) * closing * direction
        self.book_position = pos + qty
        if self.book_position == 0:
            self.average_entry = ZERO
        elif (self.book_position > 0) != (pos > 0):
            self.average_entry = fill.price

    def _changed(self) -> list:
        return [Out(POSITION_SUBSCRIBERS, PositionChanged(
            self.version, self.position, self.exchange_position, self.average_entry,
            self.realized_pnl, self.fees))]

    # -- messages --------------------------------------------------------------------------------
    def on_rebuild(self, msg: Rebuild) -> list:
        state = msg.state
        self.base_asset = state.rules.base_asset
        self.position = state.position.size
        self.exchange_position = state.position.size
        self.snapshot_time_ms = state.time_ms
        self.version = max(self.version, msg.journal_version * 1000)
        self._suspect = None
        self._recent.clear()
        if self.journal is not None:
            for _, fill in self.journal.fills():
                self._book(fill)
        if state.mid is not None:
            self.mark = state.mid
        return self._changed() + [Out(REPLY, Reconciled("position", True, f"position {self.position}"))]

    def on_fills(self, msg: FillsRecorded) -> list:
        if msg.version * 1000 <= self.version:
            return []
        for f in msg.fills:
            if not isinstance(f, FillReport):
                raise MalformedInput(f"not a fill: {f!r}")
        for f in msg.fills:
            self._book(f)
            if f.time_ms > self.snapshot_time_ms:
                change = self.held_change(f)
                self.position += change
                self._recent.append((f.time_ms, change))
        self.version = msg.version * 1000
        return self._changed()

    def on_snapshot(self, msg: ExchangeSnapshot) -> list:
        """Audit: ours at the snapshot's time vs the exchange's. Fills journaled after that time are
        taken out of ours before comparing; a drift must be seen twice to be corrected."""
        state = msg.state
        self.exchange_position = state.position.size
        self.recent_snapshot_ids.append(msg.request_id)
        self.exchange_open_orders = len(state.open_orders)
        if state.mid is not None:
            self.mark = state.mid
        while self._recent and self._recent[0][0] < state.time_ms - _RECENT_KEEP_MS:
            self._recent.popleft()          # long settled: no later snapshot will be older than this
        later = sum((s for t, s in self._recent if t > state.time_ms), ZERO)
        drift = state.position.size - (self.position - later)
        self.last_drift = drift
        if abs(drift) <= self.drift_tolerance:
            self._suspect = None
            return []
        if self._suspect != drift:
            self._suspect = drift
            self.drifts_seen += 1
            return [Out("guarantor", RequestAudit("drift"))]
        self._suspect = None
        self.position += drift
        self.corrections += 1
        self.version += 1
        return self._changed()

    @property
    def last_snapshot_id(self) -> int:
        return self.recent_snapshot_ids[-1] if self.recent_snapshot_ids else 0

    def on_tick(self, msg: PriceTick) -> list:
        self.mark = msg.mid
        return []

    def unrealized_pnl(self) -> Decimal:
        if self.mark is None or self.book_position == 0:
            return ZERO
        return (self.mark - self.average_entry) * self.book_position

    def on_status(self, msg: StatusRequest) -> list:
        data = {"position": self.position, "exchange_position": self.exchange_position,
                "average_entry": self.average_entry, "realized_pnl": self.realized_pnl,
                "unrealized_pnl": self.unrealized_pnl(), "fees": self.fees, "version": self.version,
                "journal_version": self.version // 1000, "corrections": self.corrections,
                "drifts_seen": self.drifts_seen,
                "drift": self.last_drift, "last_snapshot_id": self.last_snapshot_id,
                "recent_snapshot_ids": list(self.recent_snapshot_ids),
                "exchange_open_orders": self.exchange_open_orders}
        return [Out(REPLY, StatusReport("position", msg.request_id, data))]

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


class PositionActor(ActorShell):
    role = "position"
    routes = {Rebuild: "on_rebuild", FillsRecorded: "on_fills", ExchangeSnapshot: "on_snapshot",
              PriceTick: "on_tick", StatusRequest: "on_status"}

    def make_state(self, wire):
        return Ledger(Journal(wire.config.state_path / "journal.db"), wire.config.risk.drift_tolerance)
