"""PositionActor's Ledger: the position comes from the exchange, journaled fills move it only after the
snapshot, replay is idempotent (C-5), PnL by average cost, drift corrected only when seen twice (S-1)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.outbox import REPLY, MalformedInput, Out
from actors.position import POSITION_SUBSCRIBERS, Ledger
from adapters.journal import Journal
from messages.commands import RequestAudit
from messages.events import ExchangeSnapshot, FillsRecorded, PositionChanged
from messages.lifecycle import Rebuild, Reconciled, StatusRequest
from messages.reports import FillReport, PositionReport, VenueState
from messages.types import FillSource, MarketRules, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.001"), tick_size=D("0.1"))


def venue(position, time_ms, mid=None) -> VenueState:
    return VenueState(RULES, PositionReport("BTC", D(position)), (), (), (), mid, time_ms)


def fill(tid, side, price, size, time_ms, fee="0") -> FillReport:
    return FillReport(str(tid), "BTC", side, D(price), D(size), D(fee), "USDC", time_ms, client_id=f"c{tid}")


def changed(out) -> list[PositionChanged]:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, PositionChanged)]


def snapshot(ledger) -> tuple:
    return (ledger.position, ledger.version, ledger.book_position, ledger.average_entry, ledger.realized_pnl,
            ledger.fees, ledger.corrections)


# -- the position comes from the exchange (I3, C-5) -------------------------------------------------
def test_i3_position_comes_from_the_exchange_at_rebuild():
    ledger = Ledger()
    out = ledger.on_rebuild(Rebuild(venue("0.75", 5_000, mid=D("40000")), 4))
    assert out == [
        Out(POSITION_SUBSCRIBERS, PositionChanged(4000, D("0.75"), D("0.75"), D(0), D(0), D(0))),
        Out(REPLY, Reconciled("position", True, "position 0.75")),
    ]
    assert set(POSITION_SUBSCRIBERS) == {"grid", "risk", "balance"}


def test_c5_journal_fills_rebuild_pnl_but_never_the_position(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    journal.record_fills([fill(1, BUY, "100", "2", 1_000), fill(2, SELL, "110", "1", 2_000)], FillSource.WS)
    ledger = Ledger(journal)
    ledger.on_rebuild(Rebuild(venue("0.3", 3_000), journal.version()))
    # the journal says +1, the exchange says 0.3: the exchange wins, the journal only gives PnL
    assert ledger.position == D("0.3")
    assert (ledger.book_position, ledger.average_entry, ledger.realized_pnl) == (D("1"), D("100"), D("10"))
    journal.close()


def test_c5_replaying_journal_twice_changes_nothing(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    journal.record_fills([fill(1, BUY, "100", "2", 1_000, "0.2"), fill(2, SELL, "110", "1", 2_000, "0.11")],
                         FillSource.WS)
    ledger = Ledger(journal)
    first = ledger.on_rebuild(Rebuild(venue("1", 3_000), 2))
    state = snapshot(ledger)
    second = ledger.on_rebuild(Rebuild(venue("1", 3_000), 2))
    assert snapshot(ledger) == state
    assert changed(first) == changed(second)
    assert (ledger.realized_pnl, ledger.fees) == (D("10"), D("0.31"))
    # and the FillsRecorded that carried those journaled fills, arriving late, is not applied again
    assert ledger.on_fills(FillsRecorded(2, (fill(1, BUY, "100", "2", 1_000, "0.2"),
                                             fill(2, SELL, "110", "1", 2_000, "0.11")))) == []
    assert snapshot(ledger) == state
    # a fresh ledger (an actor restart) on the same journal ends up in the same place
    other = Ledger(Journal(tmp_path / "journal.db"))
    other.on_rebuild(Rebuild(venue("1", 3_000), 2))
    assert snapshot(other) == state
    journal.close()
    other.close()


def test_c5_fills_at_or_before_the_snapshot_time_count_for_pnl_not_position():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("1", 5_000), 0))
    out = ledger.on_fills(FillsRecorded(2, (fill(1, BUY, "100", "1", 4_000, "0.05"),
                                            fill(2, BUY, "110", "1", 5_000, "0.055"))))
    # the exchange's position at 5000 already includes both: ours does not move
    assert ledger.position == D("1")
    assert changed(out) == [PositionChanged(2000, D("1"), D("1"), D("105"), D("0"), D("0.105"))]
    # a fill one millisecond after the snapshot moves it
    ledger.on_fills(FillsRecorded(3, (fill(3, SELL, "120", "0.5", 5_001),)))
    assert ledger.position == D("0.5")


def test_c5_replaying_the_same_fills_recorded_twice_changes_nothing():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    msg = FillsRecorded(3, (fill(1, BUY, "100", "1", 2_000, "0.1"), fill(2, SELL, "120", "0.4", 3_000, "0.05")))
    first = ledger.on_fills(msg)
    state = snapshot(ledger)
    assert state[0] == D("0.6")
    assert ledger.on_fills(msg) == []
    assert snapshot(ledger) == state
    assert changed(first)[0].realized_pnl == D("8.0")


def test_c5_fill_already_booked_is_not_booked_again_under_a_new_version():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "1", 2_000, "0.1"),)))
    ledger.on_fills(FillsRecorded(2, (fill(1, BUY, "100", "1", 2_000, "0.1"), fill(2, BUY, "200", "1", 2_500))))
    assert (ledger.book_position, ledger.average_entry, ledger.fees) == (D("2"), D("150"), D("0.1"))


# -- PnL by average cost ------------------------------------------------------------------------------
def test_average_cost_pnl_entry_and_fees_on_a_buy_then_sell_sequence():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 0), 0))
    steps = [
        # fill, expected (position, average entry, realized PnL, fees)
        (fill(1, BUY, "100", "1", 10, "0.05"), ("1", "100", "0", "0.05")),
        (fill(2, BUY, "110", "1", 20, "0.055"), ("2", "105", "0", "0.105")),
        (fill(3, SELL, "120", "1.5", 30, "0.09"), ("0.5", "105", "22.5", "0.195")),       # (120-105)*1.5
        (fill(4, SELL, "100", "1", 40, "0.05"), ("-0.5", "100", "20.0", "0.245")),        # closes 0.5 at -5, flips
        (fill(5, BUY, "90", "0.5", 50, "0.0225"), ("0", "0", "25.00", "0.2675")),         # short closed +5
    ]
    for version, (f, (pos, entry, pnl, fees)) in enumerate(steps, start=1):
        (msg,) = changed(ledger.on_fills(FillsRecorded(version, (f,))))
        assert msg == PositionChanged(version * 1000, D(pos), D("0"), D(entry), D(pnl), D(fees))


def test_unrealized_pnl_uses_the_mark():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 0, mid=D("100")), 0))
    ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "2", 10),)))
    assert ledger.unrealized_pnl() == D("0")
    ledger.mark = D("103.5")
    assert ledger.unrealized_pnl() == D("7.0")
    data = ledger.on_status(StatusRequest(9))[0].msg.data
    assert (data["position"], data["unrealized_pnl"], data["journal_version"]) == (D("2"), D("7.0"), 1)


def test_malformed_fill_raises_before_anything_changes():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 0), 0))
    state = snapshot(ledger)
    with pytest.raises(MalformedInput):
        ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "1", 10), {"trade_id": "2"})))
    assert snapshot(ledger) == state


# -- audits and drift (S-1) ----------------------------------------------------------------------------
EARLY_AUDIT = Out("guarantor", RequestAudit("drift"))


def audit(request_id, position, time_ms) -> ExchangeSnapshot:
    return ExchangeSnapshot(request_id, venue(position, time_ms))


def test_s1_drift_seen_once_is_not_corrected():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "1", 2_000),)))
    assert ledger.on_snapshot(audit(1, "1.5", 3_000)) == [EARLY_AUDIT]
    assert (ledger.position, ledger.corrections, ledger.last_drift) == (D("1"), 0, D("0.5"))
    # the exchange agrees again: the suspicion is dropped, a later single drift is not corrected either
    assert ledger.on_snapshot(audit(2, "1", 4_000)) == []
    assert ledger.on_snapshot(audit(3, "1.5", 5_000)) == [EARLY_AUDIT]
    assert (ledger.position, ledger.corrections) == (D("1"), 0)


def test_s1_drift_seen_twice_is_corrected_and_counted():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "1", 2_000),)))
    assert ledger.on_snapshot(audit(1, "1.5", 3_000)) == [EARLY_AUDIT]
    out = ledger.on_snapshot(audit(2, "1.5", 4_000))
    assert changed(out) == [PositionChanged(1001, D("1.5"), D("1.5"), D("100"), D("0"), D("0"))]
    assert (ledger.position, ledger.corrections) == (D("1.5"), 1)
    # the next fill still gets a newer version than the correction
    (msg,) = changed(ledger.on_fills(FillsRecorded(2, (fill(2, SELL, "100", "0.5", 5_000),))))
    assert (msg.version, msg.position) == (2000, D("1.0"))


def test_s1_a_drift_that_changes_between_audits_is_not_corrected():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    assert ledger.on_snapshot(audit(1, "0.5", 2_000)) == [EARLY_AUDIT]
    assert ledger.on_snapshot(audit(2, "0.7", 3_000)) == [EARLY_AUDIT]
    assert (ledger.position, ledger.corrections, ledger.drifts_seen) == (D("0"), 0, 2)


def test_s1_drift_within_the_tolerance_is_reported_not_corrected():
    ledger = Ledger(drift_tolerance=D("0.001"))
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    for request in (1, 2):
        assert ledger.on_snapshot(audit(request, "0.001", 2_000)) == []
    assert (ledger.position, ledger.corrections, ledger.last_drift) == (D("0"), 0, D("0.001"))


def test_s1_fills_after_the_snapshot_time_are_excluded_when_comparing():
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(venue("0", 1_000), 0))
    ledger.on_fills(FillsRecorded(1, (fill(1, BUY, "100", "1", 3_000),)))
    # the exchange's snapshot was taken at 2000, before that fill: it rightly says 0
    for request in (1, 2, 3):
        assert ledger.on_snapshot(audit(request, "0", 2_000)) == []
    assert (ledger.position, ledger.corrections, ledger.last_drift) == (D("1"), 0, D("0"))
    assert ledger.exchange_position == D("0")
    assert ledger.last_snapshot_id == 3


def test_spot_fee_in_the_base_asset_is_not_held_and_fees_add_up_in_quote():
    spot = MarketRules("BTCUSDT", "BTC", "USDT", lot_size=D("0.00001"), tick_size=D("0.01"))
    ledger = Ledger()
    ledger.on_rebuild(Rebuild(VenueState(spot, PositionReport("BTCUSDT", D("0")), (), (), (), None, 1_000), 0))
    buy = FillReport("1", "BTCUSDT", Side.BUY, D("40000"), D("0.001"), D("0.000001"), "BTC", 2_000)
    sell = FillReport("2", "BTCUSDT", Side.SELL, D("40100"), D("0.000999"), D("0.04"), "USDT", 3_000)
    ledger.on_fills(FillsRecorded(1, (buy,)))
    assert ledger.position == D("0.000999")                      # what the exchange's balance shows
    ledger.on_fills(FillsRecorded(2, (sell,)))
    assert ledger.position == 0
    assert ledger.fees == D("0.04") + D("0.000001") * D("40000")  # 0.08 USDT, not 0.040001


def test_journal_order_save_without_fsync_keeps_the_connection_durable_afterwards(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    journal.save_orders([{"client_id": "c", "exchange_order_id": None, "symbol": "BTC", "side": "buy",
                          "price": "1", "size": "1", "filled": "0", "state": "submitted", "origin": "grid",
                          "level": 0, "position_version": 0}], durable=False)
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL again for the fills
    assert [r["state"] for r in journal.orders()] == ["submitted"]
    journal.close()
