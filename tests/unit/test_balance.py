"""Funds/Balances: every order reserves before it is sent, whatever its origin (B-1.1); no funds, no
SubmitOrders; reservations released on terminal states and partly on fills."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.balance import Balances, Funds
from actors.outbox import REPLY, Out
from messages.commands import ApprovedIntents, OrderSpec, SubmitOrders
from messages.events import (
    ExchangeSnapshot,
    FillsRecorded,
    IntentsRefused,
    OrdersChanged,
    OrderUpdate,
    PositionChanged,
    PriceTick,
)
from messages.lifecycle import Rebuild, Reconciled
from messages.reports import BalanceReport, FillReport, OrderReport, PositionReport, VenueState
from messages.types import MarketRules, OrderState, Origin, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
SPOT_RULES = MarketRules("BTCUSDT", "BTC", "USDT", lot_size=D("0.00001"), tick_size=D("0.01"))
PERP_RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.00001"), sig_figs=5, max_price_decimals=1)


def spec(cid, side, price, size, origin=Origin.GRID, reduce_only=False, level=-1) -> OrderSpec:
    return OrderSpec(cid, "BTC", side, D(price), D(size), origin, level, 1000, reduce_only)


def approve(b: Balances, *specs) -> list:
    return b.on_approved(ApprovedIntents(tuple(specs), 1000))


def submitted(out) -> list[str]:
    return [s.client_id for o in out if isinstance(o.msg, SubmitOrders) for s in o.msg.orders]


def refusals(out) -> dict[str, tuple]:
    return {r.client_id: (set(o.to) if isinstance(o.to, tuple) else {o.to}, r.reason)
            for o in out if isinstance(o.msg, IntentsRefused) for r in o.msg.refusals}


def spot(usdt="1000", btc="0.5", open_orders=()) -> Balances:
    b = Balances(Funds("spot", "?", "?", 1))
    state = VenueState(SPOT_RULES, PositionReport("BTCUSDT"),
                       (BalanceReport("USDT", D(usdt)), BalanceReport("BTC", D(btc))), tuple(open_orders), (),
                       D("40000"), 1_000)
    assert b.on_rebuild(Rebuild(state, 0)) == [Out(REPLY, Reconciled("balance", True, "balances loaded"))]
    return b


def perp(usdc="1000", leverage=10, position="0", mark="40000") -> Balances:
    b = Balances(Funds("perp", "?", "?", leverage))
    state = VenueState(PERP_RULES, PositionReport("BTC", D(position)), (BalanceReport("USDC", D(usdc)),), (), (),
                       D(mark), 1_000)
    b.on_rebuild(Rebuild(state, 0))
    return b


def update(cid, state, side=BUY, size="0.01", filled="0") -> OrdersChanged:
    return OrdersChanged((OrderUpdate(cid, side, D("40000"), D(size), D(filled), state, Origin.GRID, -1),))


def fill(tid, cid, side, price, size, fee="0", fee_asset="USDT") -> FillReport:
    return FillReport(str(tid), "BTC", side, D(price), D(size), D(fee), fee_asset, 5_000, client_id=cid)


# -- spot ---------------------------------------------------------------------------------------------------
def test_spot_buy_reserves_quote_and_sell_reserves_base():
    b = spot()
    assert (b.funds.base, b.funds.quote) == ("BTC", "USDT")     # from the market rules
    out = approve(b, spec("buy", BUY, "40000", "0.01"), spec("sell", SELL, "41000", "0.2"))
    assert out == [Out("orderbook", SubmitOrders((spec("buy", BUY, "40000", "0.01"),
                                                  spec("sell", SELL, "41000", "0.2"))))]
    assert b.funds.available("USDT") == D("600")
    assert b.funds.available("BTC") == D("0.3")


@pytest.mark.parametrize("first_origin", [Origin.GRID, Origin.RISK])
def test_b11_two_intents_racing_for_the_same_funds_exactly_one_gets_them(first_origin):
    """The grid's sell and risk's stop loss both want the same 0.5 BTC: one reservation wins, the other
    is refused before any API call."""
    b = spot(btc="0.5")
    second_origin = Origin.RISK if first_origin is Origin.GRID else Origin.GRID
    first = approve(b, spec("first", SELL, "41000", "0.5", origin=first_origin))
    second = approve(b, spec("second", SELL, "39000", "0.5", origin=second_origin))
    assert submitted(first) == ["first"] and refusals(first) == {}
    assert submitted(second) == []
    targets, reason = refusals(second)["second"]
    assert reason == "insufficient funds"
    assert "risk" in targets                                   # risk always hears, to free its exposure
    assert ("grid" in targets) is (second_origin is Origin.GRID)
    assert b.funds.available("BTC") == D("0")
    assert b.funds.refusals == 1


def test_b11_racing_buys_in_one_batch_only_funded_ones_are_submitted():
    b = spot(usdt="1000")
    out = approve(b, spec("a", BUY, "40000", "0.015"), spec("b", BUY, "40000", "0.015"),
                  spec("c", BUY, "40000", "0.01"))
    assert submitted(out) == ["a", "c"]                         # 600 + 400 of 1000; b's 600 does not fit
    assert set(refusals(out)) == {"b"}
    assert b.funds.available("USDT") == D("0")
    b.on_orders(update("a", OrderState.CANCELLED))
    assert submitted(approve(b, spec("b", BUY, "40000", "0.015"))) == ["b"]


def test_same_client_id_reserves_once():
    b = spot()
    approve(b, spec("a", BUY, "40000", "0.01"))
    approve(b, spec("a", BUY, "40000", "0.01"))
    assert b.funds.available("USDT") == D("600")


@pytest.mark.parametrize("state", [OrderState.CANCELLED, OrderState.REJECTED, OrderState.FILLED])
def test_terminal_order_releases_its_reservation(state):
    b = spot()
    approve(b, spec("a", BUY, "40000", "0.01"))
    b.on_orders(update("a", state))
    assert b.funds.available("USDT") == D("1000")
    assert b.funds.reserved == {}


@pytest.mark.parametrize("state", [OrderState.SUBMITTED, OrderState.OPEN, OrderState.PARTIALLY_FILLED,
                                   OrderState.CANCEL_PENDING, OrderState.UNKNOWN])
def test_live_order_keeps_its_reservation(state):
    b = spot()
    approve(b, spec("a", BUY, "40000", "0.01"))
    b.on_orders(update("a", state))
    assert b.funds.available("USDT") == D("600")


def test_spot_fill_moves_totals_and_releases_its_part_of_the_reservation():
    b = spot(usdt="1000", btc="0.5")
    approve(b, spec("a", BUY, "40000", "0.02"))                 # 800 held
    assert b.funds.available("USDT") == D("200")
    b.on_fills(FillsRecorded(1, (fill(1, "a", BUY, "40000", "0.005", fee="0.2"),)))
    assert b.funds.totals == {"USDT": D("799.8"), "BTC": D("0.505")}
    assert b.funds.reserved["a"][1:] == (D("600"), D("0.015"))
    assert b.funds.available("USDT") == D("199.8")
    b.on_fills(FillsRecorded(2, (fill(2, "a", BUY, "40000", "0.015", fee="0.6"),)))
    assert b.funds.reserved == {}
    assert b.funds.totals == {"USDT": D("199.2"), "BTC": D("0.520")}
    assert b.funds.available("USDT") == D("199.2")


def test_spot_sell_fill_releases_base():
    b = spot(usdt="0", btc="0.5")
    approve(b, spec("s", SELL, "40000", "0.4"))
    b.on_fills(FillsRecorded(1, (fill(1, "s", SELL, "40000", "0.1", fee="0.0001", fee_asset="BTC"),)))
    assert b.funds.totals == {"USDT": D("4000.0"), "BTC": D("0.3999")}
    assert b.funds.available("BTC") == D("0.0999")             # 0.3999 total - 0.3 still held
    b.on_orders(update("s", OrderState.CANCELLED, side=SELL, size="0.4", filled="0.1"))
    assert b.funds.available("BTC") == D("0.3999")


def test_rebuild_reserves_for_orders_already_on_the_exchange():
    resting = OrderReport("old", "1", "BTCUSDT", BUY, D("40000"), D("0.02"), D("0.005"), OrderState.PARTIALLY_FILLED)
    b = spot(usdt="1000", open_orders=(resting,))
    assert b.funds.available("USDT") == D("400")               # 0.015 remaining at 40000
    assert submitted(approve(b, spec("new", BUY, "40000", "0.015"))) == []


def test_snapshot_resets_totals_from_the_exchange_but_keeps_reservations():
    b = spot(usdt="1000")
    approve(b, spec("a", BUY, "40000", "0.01"))
    state = VenueState(SPOT_RULES, PositionReport("BTCUSDT"), (BalanceReport("USDT", D("900"), D("400")),), (), (),
                       None, 2_000)
    b.on_snapshot(ExchangeSnapshot(1, state))
    assert b.funds.available("USDT") == D("900")               # 1300 total - 400 held


# -- perp ---------------------------------------------------------------------------------------------------
def test_perp_reserves_margin_and_reduce_only_needs_none():
    b = perp(usdc="1000", leverage=10)
    assert submitted(approve(b, spec("a", BUY, "40000", "0.2"))) == ["a"]      # 800 margin
    assert b.funds.available("USDC") == D("200")
    out = approve(b, spec("b", SELL, "41000", "0.1"))                          # 410 > 200
    assert submitted(out) == [] and set(refusals(out)) == {"b"}
    out = approve(b, spec("tp", SELL, "41000", "0.1", origin=Origin.RISK, reduce_only=True))
    assert submitted(out) == ["tp"]
    assert b.funds.available("USDC") == D("200")


def test_perp_position_margin_counts_against_collateral():
    b = perp(usdc="1000", leverage=10, position="0.1", mark="40000")          # 400 used by the position
    assert b.funds.available("USDC") == D("600")
    b.on_position(PositionChanged(2000, D("-0.2"), None, D(0), D(0), D(0)))
    b.on_tick(PriceTick("BTC", D("45000"), 3_000))
    assert b.funds.available("USDC") == D("100")               # 0.2 * 45000 / 10 = 900
    out = approve(b, spec("a", BUY, "40000", "0.05"))          # 200 > 100
    assert submitted(out) == []


def test_perp_fill_releases_part_of_the_margin_and_pays_the_fee():
    b = perp(usdc="10000", leverage=10)
    approve(b, spec("a", BUY, "40000", "1"))                   # 4000 held
    b.on_fills(FillsRecorded(1, (fill(1, "a", BUY, "40000", "0.25", fee="1.5", fee_asset="USDC"),)))
    assert b.funds.reserved["a"][1:] == (D("3000"), D("0.75"))
    assert b.funds.totals["USDC"] == D("9998.5")
    assert b.funds.available("USDC") == D("6998.5")
