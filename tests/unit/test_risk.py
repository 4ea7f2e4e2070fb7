"""RiskBook: stale intents refused (M-4, C-1), newer ones held for their position, exposure limits that
count live orders, and the trading mode."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.outbox import REPLY, After, Out
from actors.risk import RiskBook
from messages.commands import ApprovedIntents, OrderIntents, OrderSpec
from messages.events import FillsRecorded, IntentRefused, IntentsRefused, OrdersChanged, OrderUpdate, PositionChanged
from messages.lifecycle import ModeChanged, Rebuild, Reconciled
from messages.reports import OrderReport, PositionReport, VenueState
from messages.types import MarketRules, Mode, OrderState, Origin, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.001"), tick_size=D("0.1"))


def spec(cid, side=BUY, size="0.01", version=1000, origin=Origin.GRID, level=-1, reduce_only=False) -> OrderSpec:
    return OrderSpec(cid, "BTC", side, D("40000"), D(size), origin, level, version, reduce_only)


def intents(*specs, version=1000, origin=Origin.GRID) -> OrderIntents:
    return OrderIntents(tuple(specs), version, origin)


def position(version, pos="0") -> PositionChanged:
    return PositionChanged(version, D(pos), None, D(0), D(0), D(0))


def approved(out) -> list[str]:
    return [s.client_id for o in out if isinstance(o, Out) and isinstance(o.msg, ApprovedIntents)
            for s in o.msg.orders]


def refused(out) -> dict[str, str]:
    return {r.client_id: r.reason for o in out if isinstance(o, Out) and isinstance(o.msg, IntentsRefused)
            for r in o.msg.refusals}


def book(max_position="0.05", max_open_orders=60, version=1000, pos="0", mode=Mode.TRADING) -> RiskBook:
    r = RiskBook(D(max_position), max_open_orders)
    r.on_mode(ModeChanged(mode))
    r.on_position(position(version, pos))
    return r


# -- position versions (M-4, C-1) -----------------------------------------------------------------------
def test_m4_intent_with_an_older_position_version_is_refused_as_stale():
    r = book(version=2000)
    out = r.on_intents(intents(spec("a", version=1000), version=1000))
    assert approved(out) == []
    assert refused(out) == {"a": "stale position version 1000 < 2000"}
    assert [o.to for o in out] == ["grid"]                  # back to whoever computed it
    assert r.refused["stale"] == 1
    assert r.live == {}


def test_m4_an_intent_that_predates_a_journaled_fill_is_refused_before_the_position_catches_up():
    r = book(version=2000)
    r.on_fills(FillsRecorded(3, ()))            # fill 3 is journaled; the ledger has not reported it yet
    out = r.on_intents(intents(spec("a", version=2000), version=2000))
    assert approved(out) == [] and "predates journaled fill 3" in refused(out)["a"]
    r.on_position(position(3000))
    assert approved(r.on_intents(intents(spec("b", version=3000), version=3000))) == ["b"]


def test_m4_intent_at_the_current_version_is_approved_for_the_balance_actor():
    r = book(version=2000)
    out = r.on_intents(intents(spec("a", version=2000), version=2000))
    assert out == [Out("balance", ApprovedIntents((spec("a", version=2000),), 2000))]
    assert r.live == {"a": (BUY, D("0.01"))}


def test_m4_newer_intent_is_held_until_the_position_reaches_its_version():
    r = book(version=1000, pos="0")
    out = r.on_intents(intents(spec("a", version=3000), version=3000))
    assert out == [After(out[0].seconds, out[0].payload)]   # held, with an expiry
    assert r.on_position(position(2000, "0.01")) == []     # not there yet
    out = r.on_position(position(3000, "0.02"))
    assert approved(out) == ["a"]
    assert r.position == D("0.02")                          # checked against the position it was computed from


def test_m4_held_intent_overtaken_by_a_newer_position_is_refused_as_stale():
    r = book(version=1000)
    r.on_intents(intents(spec("a", version=3000), version=3000))
    out = r.on_position(position(4000, "0.01"))
    assert approved(out) == [] and "stale" in refused(out)["a"]


def test_m4_held_intent_whose_position_never_comes_expires_refused():
    r = book(version=1000)
    (timer,) = r.on_intents(intents(spec("a", version=3000), version=3000))
    out = r.on_timer(timer.payload)
    assert approved(out) == [] and "stale" in refused(out)["a"]
    assert r.held == []
    assert r.on_timer("something else") == []


def test_m4_an_older_position_change_is_ignored():
    r = book(version=3000, pos="0.02")
    assert r.on_position(position(2000, "-0.04")) == []
    assert (r.position, r.version) == (D("0.02"), 3000)


def test_m4_after_a_rebuild_an_intent_older_than_the_journal_is_refused():
    r = RiskBook(D("0.05"), 60)
    r.on_mode(ModeChanged(Mode.TRADING))
    r.on_rebuild(Rebuild(VenueState(RULES, PositionReport("BTC"), (), (), (), None, 1_000), 5))
    out = r.on_intents(intents(spec("a", version=4000), version=4000))       # computed before fill 5
    out += [m for o in out if isinstance(o, After) for m in r.on_timer(o.payload)]
    assert approved(out) == []
    assert "stale" in refused(out).get("a", "")


# -- limits ----------------------------------------------------------------------------------------------
def test_max_position_counts_live_exposure_within_one_batch():
    r = book(max_position="0.05", pos="0.01")
    out = r.on_intents(intents(spec("a", size="0.03"), spec("b", size="0.02")))
    assert approved(out) == ["a"]
    assert refused(out) == {"b": "max position 0.05"}      # 0.01 + 0.03 + 0.02 > 0.05
    assert r.exposure(BUY) == D("0.03")


def test_max_position_counts_live_exposure_across_batches_and_sides():
    r = book(max_position="0.05", pos="-0.01")
    assert approved(r.on_intents(intents(spec("s1", SELL, "0.02")))) == ["s1"]
    assert approved(r.on_intents(intents(spec("s2", SELL, "0.02")))) == ["s2"]     # -0.05: at the limit
    assert refused(r.on_intents(intents(spec("s3", SELL, "0.001")))) == {"s3": "max position 0.05"}
    # buys are measured separately: the position plus live buys
    assert approved(r.on_intents(intents(spec("b1", BUY, "0.06")))) == ["b1"]    # -0.01 + 0.06 = 0.05
    assert refused(r.on_intents(intents(spec("b2", BUY, "0.001")))) == {"b2": "max position 0.05"}


def test_exposure_is_freed_by_terminal_updates_and_refusals_downstream():
    r = book(max_position="0.05")
    r.on_intents(intents(spec("a", size="0.03"), spec("b", size="0.02")))
    assert refused(r.on_intents(intents(spec("c", size="0.01")))) != {}
    # a partly filled: only what remains is exposure (the filled part is in the position now)
    r.on_position(position(1000, "0.01"))
    r.on_orders(OrdersChanged((OrderUpdate("a", BUY, D("40000"), D("0.03"), D("0.01"), OrderState.PARTIALLY_FILLED,
                                           Origin.GRID, -1),)))
    assert r.exposure(BUY) == D("0.04")
    # b cancelled, and the balance actor refused nothing yet: room for 0.02 more
    r.on_orders(OrdersChanged((OrderUpdate("b", BUY, D("40000"), D("0.02"), D(0), OrderState.CANCELLED,
                                           Origin.GRID, -2),)))
    assert approved(r.on_intents(intents(spec("c", size="0.02")))) == ["c"]
    # c had no funds: the balance actor's refusal frees its exposure too
    r.on_refused(IntentsRefused((IntentRefused("c", "insufficient funds", Origin.GRID, -3),)))
    assert r.exposure(BUY) == D("0.02")


def test_max_open_orders():
    r = book(max_position="100", max_open_orders=2)
    out = r.on_intents(intents(spec("a"), spec("b"), spec("c")))
    assert approved(out) == ["a", "b"]
    assert refused(out) == {"c": "max open orders 2"}


def test_reduce_only_must_reduce():
    r = book(pos="0.03")
    out = r.on_intents(intents(spec("sl", SELL, "0.03", origin=Origin.RISK, reduce_only=True),
                               spec("too-big", SELL, "0.04", origin=Origin.RISK, reduce_only=True),
                               spec("wrong-way", BUY, "0.01", origin=Origin.RISK, reduce_only=True),
                               origin=Origin.RISK))
    assert approved(out) == ["sl"]
    assert set(refused(out)) == {"too-big", "wrong-way"}
    assert [o.to for o in out if isinstance(o.msg, IntentsRefused)] == ["risk"]


# -- mode ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [Mode.STARTING, Mode.RECONCILING, Mode.HALTED, Mode.EMERGENCY, Mode.STOPPING])
def test_grid_intents_need_trading_mode(mode):
    r = book(mode=mode)
    out = r.on_intents(intents(spec("a")))
    assert approved(out) == []
    assert refused(out) == {"a": f"mode is {mode.value}"}
    assert r.refused["mode"] == 1 and r.live == {}


def test_protective_and_admin_orders_pass_outside_trading_mode():
    r = book(mode=Mode.HALTED, pos="0.02")
    out = r.on_intents(intents(spec("flatten", SELL, "0.02", origin=Origin.ADMIN, reduce_only=True),
                               origin=Origin.ADMIN))
    assert approved(out) == ["flatten"]
    out = r.on_intents(intents(spec("sl", SELL, "0.01", origin=Origin.RISK), origin=Origin.RISK))
    assert approved(out) == ["sl"]


def test_trading_mode_switches_grid_approval_on_and_off():
    r = book(mode=Mode.STARTING)
    assert approved(r.on_intents(intents(spec("a")))) == []
    r.on_mode(ModeChanged(Mode.TRADING))
    assert approved(r.on_intents(intents(spec("b")))) == ["b"]
    r.on_mode(ModeChanged(Mode.HALTED, "drawdown"))
    assert approved(r.on_intents(intents(spec("c")))) == []


# -- rebuild -----------------------------------------------------------------------------------------------
def test_rebuild_counts_the_exchange_open_orders_as_exposure():
    r = book(max_position="0.05")
    open_orders = (OrderReport("x", "1", "BTC", BUY, D("39000"), D("0.04"), D("0.01"), OrderState.PARTIALLY_FILLED),
                   OrderReport(None, "2", "BTC", BUY, D("39000"), D("1"), D("0"), OrderState.OPEN))
    out = r.on_rebuild(Rebuild(VenueState(RULES, PositionReport("BTC", D("0.01")), (), open_orders, (), None, 1), 1))
    assert out == [Out(REPLY, Reconciled("risk", True, "1 live orders"))]
    assert (r.position, r.exposure(BUY)) == (D("0.01"), D("0.03"))
    assert refused(r.on_intents(intents(spec("a", size="0.02")))) == {"a": "max position 0.05"}
    assert approved(r.on_intents(intents(spec("b", size="0.01")))) == ["b"]
