"""Protective stops (B-1.3): risk keeps one reduce-only stop at each exit price, outside its exposure,
adopts the ones already resting after a restart; the paper venue keeps them off the book, fires them
when the price reaches them (closing at most the position) and persists them."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.risk import RiskBook
from adapters.paper import PaperExchange, PaperSettings
from config.schema import RiskSection
from messages.commands import ApprovedIntents, OrderSpec
from messages.events import OrderAcked
from messages.lifecycle import ModeChanged, Rebuild
from messages.reports import BalanceReport, OrderReport, PositionReport, VenueState
from messages.types import Mode, OrderState, Origin, Side
from tests.unit.test_risk import RULES

pytestmark = pytest.mark.timeout(30)
D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMITS = RiskSection(max_position=D("0.05"), stop_loss_price=D("30000"), take_profit_price=D("50000"),
                     protective_orders=True)


def book(open_orders=()) -> RiskBook:
    r = RiskBook(D("0.05"), 60, LIMITS, "bot", "BTC")
    r.on_rebuild(Rebuild(VenueState(RULES, PositionReport("BTC"), (BalanceReport("USDC", D("10000")),),
                                    tuple(open_orders), (), D("40000"), 1), 1))
    return r


def approved(out) -> list[OrderSpec]:
    return [s for o in out if isinstance(o.msg, ApprovedIntents) for s in o.msg.orders]


def test_b13_one_reduce_only_stop_per_exit_price_and_none_counted_as_exposure():
    r = book()
    stops = approved(r.on_mode(ModeChanged(Mode.TRADING)))
    assert sorted((s.trigger_price, s.side, s.size, s.reduce_only, s.origin) for s in stops) == [
        (D("30000.0"), SELL, D("0.050"), True, Origin.RISK), (D("50000.0"), BUY, D("0.050"), True, Origin.RISK)]
    assert r.live == {} and r.exposure(SELL) == 0
    assert approved(r.on_mode(ModeChanged(Mode.TRADING))) == []          # asked for once


def test_b13_a_restart_adopts_the_stops_already_resting():
    placed = approved(book().on_mode(ModeChanged(Mode.TRADING)))
    resting = [OrderReport(s.client_id, "9", "BTC", s.side, s.price, s.size, D(0), OrderState.OPEN, True,
                           trigger_price=s.trigger_price) for s in placed]
    again = book(resting)
    assert approved(again.on_mode(ModeChanged(Mode.TRADING))) == []
    assert again.adopted == 2 and again.live == {}


def test_paper_stop_fires_when_reached_closes_only_the_position_and_persists(tmp_path):
    csv = tmp_path / "fall.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{1_700_000_000_000 + i * 60_000},{p},{p},{p},{p},1\n" for i, p in enumerate(
            [40000, 40000, 39000, 35000, 29900, 29000])))
    settings = PaperSettings(data=str(csv), state_file=str(tmp_path / "venue.json"))
    ex = PaperExchange(settings)
    ex.start_stream()
    ex.place([OrderSpec("long", "BTC", BUY, D("41000"), D("0.01"), post_only=False)])     # crosses: long 0.01
    [ack] = ex.place([OrderSpec("sl", "BTC", SELL, D("30000"), D("0.05"), Origin.RISK, reduce_only=True,
                                post_only=False, trigger_price=D("30000"))])
    assert isinstance(ack, OrderAcked)
    assert [o.client_id for o in ex.snapshot().open_orders if o.trigger_price] == ["sl"]
    ex = PaperExchange(settings)                                     # the venue restarts: the stop is kept
    ex.start_stream()
    ex.advance_candles(3)
    assert ex.snapshot().position.size == D("0.01")                   # 35000: not reached
    ex.advance_candles(3)
    state = ex.snapshot()
    assert state.position.size == 0 and not state.open_orders        # fired: closed 0.01 of its 0.05
    [report] = ex.order_status(["sl"])
    assert report.filled == D("0.01") and report.size == D("0.01")


def test_b13_spot_keeps_only_the_sell_stop():
    r = RiskBook(D("0.05"), 60, LIMITS, "bot", "BTC", "spot")
    r.on_rebuild(Rebuild(VenueState(RULES, PositionReport("BTC"), (BalanceReport("USDC", D("10000")),), (), (),
                                    D("40000"), 1), 1))
    [stop] = approved(r.on_mode(ModeChanged(Mode.TRADING)))
    assert (stop.side, stop.trigger_price) == (SELL, D("30000.0"))
