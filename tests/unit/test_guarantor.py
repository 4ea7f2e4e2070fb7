"""FillGuarantor on a real journal: exactly once (I1), in (time, trade id) order (M-1), journal first
(I2), malformed input rejected whole, backfill after stream loss (C-3), a watermark per source (M-2)."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from actors.guarantor import FILL_SUBSCRIBERS, FillGuarantor
from actors.outbox import REPLY, After, MalformedInput, Out
from adapters.journal import Journal
from messages.commands import RequestAudit, RequestBackfill, RequestSnapshot
from messages.events import ExchangeSnapshot, FillsReceived, FillsRecorded, StreamDown, StreamUp
from messages.lifecycle import Rebuild, Reconciled
from messages.reports import FillReport, PositionReport, VenueState
from messages.types import FillSource, MarketRules, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
MARGIN_MS, AUDIT_S = 5_000, 30.0
RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.001"), tick_size=D("0.1"))


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


@pytest.fixture
def guarantor(journal):
    return FillGuarantor(journal, MARGIN_MS, AUDIT_S)


def fill(tid, time_ms, size="0.002", side=Side.BUY, price="40000") -> FillReport:
    return FillReport(str(tid), "BTC", side, D(price), D(size), D("0.01"), "USDC", time_ms, client_id=f"c{tid}",
                      exchange_order_id=f"x{tid}")


def recorded(out) -> list[FillsRecorded]:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, FillsRecorded)]


def wick() -> list[FillReport]:
    """40 fills of a fast wick: four per millisecond, trade ids 8..47 (so '9' < '10' must sort as numbers)."""
    return [fill(8 + i, 1_000 + i // 4) for i in range(40)]


# -- exactly once, in order (I1, M-1) -------------------------------------------------------------------------
def test_m1_forty_fills_reversed_and_duplicated_are_journaled_once_in_order(guarantor, journal):
    fills = wick()
    arriving = list(reversed(fills)) + fills[5:20]                 # out of order, 15 of them twice
    out = guarantor.on_fills(FillsReceived(FillSource.WS, tuple(arriving)))
    (msg,) = recorded(out)
    assert out[0].to == FILL_SUBSCRIBERS
    assert set(FILL_SUBSCRIBERS) >= {"position", "orderbook", "balance", "risk"}
    assert list(msg.fills) == fills                                # (time, trade id) order, each once
    assert msg.version == journal.version()                        # the position version: the journal's sequence
    assert journal.fill_count() == 40
    assert journal.trade_ids() == [f.trade_id for f in fills]
    assert guarantor.duplicates == 15
    assert [f for _, f in journal.fills()] == fills                # journaled exactly as received


def test_m1_arrival_order_changes_nothing(tmp_path):
    fills = wick()
    results = []
    for seed in (1, 2, 3):
        shuffled = fills[:]
        random.Random(seed).shuffle(shuffled)
        j = Journal(tmp_path / f"j{seed}.db")
        (msg,) = recorded(FillGuarantor(j, MARGIN_MS, AUDIT_S).on_fills(FillsReceived(FillSource.WS, tuple(shuffled))))
        results.append((msg, j.trade_ids()))
        j.close()
    assert results[0] == results[1] == results[2]


def test_i1_the_same_fills_from_another_source_are_not_journaled_again(guarantor, journal):
    fills = wick()
    guarantor.on_fills(FillsReceived(FillSource.WS, tuple(fills)))
    assert guarantor.on_fills(FillsReceived(FillSource.REST, tuple(fills))) == []
    assert guarantor.on_fills(FillsReceived(FillSource.BACKFILL, tuple(fills[:3]))) == []
    assert journal.fill_count() == 40
    assert journal.fills_by_source() == {"ws": 40}
    assert guarantor.duplicates == 43


def test_i1_a_batch_mixing_new_and_known_fills_records_only_the_new(guarantor, journal):
    fills = wick()
    (first,) = recorded(guarantor.on_fills(FillsReceived(FillSource.WS, tuple(fills[:30]))))
    (msg,) = recorded(guarantor.on_fills(FillsReceived(FillSource.REST, tuple(fills[25:]))))
    assert list(msg.fills) == fills[30:]
    assert msg.version == journal.version() > first.version       # sequences only grow
    assert journal.fills_by_source() == {"ws": 30, "rest": 10}


# -- malformed input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"trade_id": "99", "size": "1"},
    ("99", "BTC", "buy"),
    fill("", 2_000),
    fill("99", 2_000, size="0"),
    fill("99", 2_000, size="-0.001"),
], ids=["dict", "tuple", "empty-trade-id", "zero-size", "negative-size"])
def test_malformed_fill_raises_and_nothing_is_journaled(guarantor, journal, bad):
    good = fill(1, 1_000)
    with pytest.raises(MalformedInput):
        guarantor.on_fills(FillsReceived(FillSource.WS, (good, bad)))
    assert journal.fill_count() == 0
    assert journal.watermarks() == {}
    assert guarantor.duplicates == 0
    # the good fill is journaled when it comes again on its own
    assert recorded(guarantor.on_fills(FillsReceived(FillSource.WS, (good,))))[0].fills == (good,)


# -- stream loss and backfill (C-3) ------------------------------------------------------------------------------
def test_c3_stream_down_asks_for_a_backfill_from_the_last_journaled_fill_minus_the_margin(guarantor):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 7_000), fill(2, 12_000), fill(3, 9_000))))
    out = guarantor.on_stream_down(StreamDown("ws closed", 13_000))
    assert out == [Out("gateway", RequestBackfill(12_000 - MARGIN_MS, FillSource.BACKFILL))]
    assert guarantor.stream_downs == 1
    assert guarantor.on_stream_up(StreamUp(14_000)) == [
        Out("gateway", RequestBackfill(12_000 - MARGIN_MS, FillSource.BACKFILL)), After(1.0, "audit-soon")]


def test_c3_backfill_with_an_empty_journal_starts_at_zero(guarantor):
    assert guarantor.on_stream_down(StreamDown("stale", 1)) == [Out("gateway", RequestBackfill(0, FillSource.BACKFILL))]
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 3_000),)))       # younger than the margin
    assert guarantor.on_stream_down(StreamDown("stale", 4_000))[0].msg.since_ms == 0


def test_c3_old_fills_found_by_a_backfill_are_not_filtered_by_age(guarantor, journal):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 100_000),)))
    late = (fill(2, 1), fill(3, 50_000))                                         # made while the stream was down
    (msg,) = recorded(guarantor.on_fills(FillsReceived(FillSource.BACKFILL, late)))
    assert list(msg.fills) == list(late)
    assert journal.fill_count() == 3


# -- watermarks (M-2) ---------------------------------------------------------------------------------------------
def test_m2_a_watermark_per_source_that_never_moves_back(guarantor, journal):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 2_000), fill(2, 1_800))))
    guarantor.on_fills(FillsReceived(FillSource.REST, (fill(3, 1_500),)))
    assert journal.watermarks() == {"ws": 2_000, "rest": 1_500}
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(4, 1_000),)))          # older, still journaled
    assert journal.watermarks()["ws"] == 2_000
    assert journal.has_trade("4")
    # a REST poll that brings only known fills still confirms REST up to them: they are journaled
    guarantor.on_fills(FillsReceived(FillSource.REST, (fill(1, 2_000),)))
    assert journal.watermarks()["rest"] == 2_000


# -- rebuild, audits, snapshots ---------------------------------------------------------------------------------------
def venue(fills=(), position="0") -> VenueState:
    return VenueState(RULES, PositionReport("BTC", D(position)), (), (), tuple(fills), D("40000"), 60_000)


def test_rebuild_journals_the_snapshot_fills_and_schedules_audits(guarantor, journal):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 1_000),)))
    out = guarantor.on_rebuild(Rebuild(venue((fill(1, 1_000), fill(2, 2_000))), 1))
    (msg,) = recorded(out)
    assert [f.trade_id for f in msg.fills] == ["2"]
    assert msg.version == journal.version() > 1
    assert Out(REPLY, Reconciled("guarantor", True, f"journal version {msg.version}")) in out
    assert After(AUDIT_S, "audit") in out
    assert journal.fills_by_source() == {"ws": 1, "recon": 1}


def test_audit_timer_asks_for_a_snapshot_with_fills_since_the_journal(guarantor):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 20_000),)))
    out = guarantor.on_timer("audit")
    assert out == [Out("gateway", RequestSnapshot(1, 20_000 - MARGIN_MS)), After(AUDIT_S, "audit")]
    assert guarantor.on_timer("other") == []


def test_snapshot_fills_are_journaled_before_the_snapshot_reaches_the_ledger(guarantor, journal):
    snap = ExchangeSnapshot(7, venue((fill(1, 1_000), fill(2, 2_000)), position="0.004"))
    out = guarantor.on_snapshot(snap)
    assert [type(o.msg) for o in out] == [FillsRecorded, ExchangeSnapshot]
    assert out[1] == Out(("position", "balance", "orderbook", "risk"), snap)
    assert journal.fills_by_source() == {"rest": 2}
    # the same snapshot again: nothing new recorded, still forwarded
    assert guarantor.on_snapshot(snap) == [Out(("position", "balance", "orderbook", "risk"), snap)]


def test_m2_rest_polls_start_from_rests_own_mark_when_the_stream_jumps_ahead(guarantor, journal):
    """REST confirmed fills up to 10 s; the stream then delivers a fill at 100 s. A fill made at 50 s that
    only REST will ever report must still be inside the next poll."""
    guarantor.on_fills(FillsReceived(FillSource.REST, (fill(1, 10_000),)))
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(2, 100_000),)))
    (request, _) = guarantor.on_timer("audit")
    assert request.msg.fills_since_ms == 10_000 - MARGIN_MS
    late = fill(3, 50_000)
    out = guarantor.on_snapshot(ExchangeSnapshot(request.msg.request_id, venue((late, fill(2, 100_000)))))
    assert recorded(out)[0].fills == (late,)
    assert journal.watermarks()["rest"] == 100_000
    assert guarantor.on_timer("audit")[0].msg.fills_since_ms == 100_000 - MARGIN_MS
    assert guarantor.gaps == 2         # fills 1 and 3 reached us only through REST


def test_h2_audits_come_early_after_a_reconnect_a_burst_or_a_drift_one_at_a_time(guarantor):
    assert guarantor.on_request_audit(RequestAudit("drift")) == [After(1.0, "audit-soon")]
    assert guarantor.on_stream_up(StreamUp(1))[1:] == []              # one early audit already pending
    out = guarantor.on_timer("audit-soon")
    assert [type(o.msg) for o in out] == [RequestSnapshot]            # no periodic re-arm from an early one
    burst = guarantor.on_fills(FillsReceived(FillSource.WS, tuple(fill(i, 1_000 + i) for i in range(10))))
    assert burst[-1] == After(1.0, "audit-soon")
    assert guarantor.audit_reasons == {"drift": 1, "reconnect": 1, "burst": 1}


def test_status_reports_counters_by_source_gaps_and_duplicates(guarantor):
    guarantor.on_fills(FillsReceived(FillSource.WS, (fill(1, 1_000), fill(1, 1_000))))
    guarantor.on_fills(FillsReceived(FillSource.BACKFILL, (fill(1, 1_000), fill(2, 2_000))))
    guarantor.on_fills(FillsReceived(FillSource.REST, (fill(3, 3_000),)))
    (out,) = guarantor.on_status(__import__("messages.lifecycle", fromlist=["StatusRequest"]).StatusRequest(5))
    data = out.msg.data
    assert (data["fills_from_ws"], data["fills_from_rest"], data["fills_from_recon"]) == (1, 1, 1)
    assert (data["duplicates_skipped"], data["gaps_detected"], data["fills"]) == (2, 2, 3)
