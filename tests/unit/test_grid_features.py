"""The grid users configure: bounds, bias, notional sizing, volatility spacing with a hard floor (C-4),
trailing that survives restarts (B-3.3), strays cancelled, counter-orders that never fail silently
(B-1.2)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.grid import Grid
from actors.grid_levels import GridShape, Volatility, grid_prices, shape_from_bounds, spacing_pct
from actors.outbox import SUPERVISOR, Out
from adapters.journal import Journal
from messages.commands import EmergencyStop, RequestCancels
from messages.events import IntentRefused, IntentsRefused, OrderUpdate, OrdersChanged, PriceTick
from messages.lifecycle import ModeChanged, Rebuild
from messages.types import MarketRules, Mode, OrderState, Origin, Side
from tests.unit.test_grid import RULES, by_level, config, fill, specs, update, venue

pytestmark = pytest.mark.timeout(60)
D = Decimal
BUY, SELL = Side.BUY, Side.SELL

MARKETS = [
    RULES,
    MarketRules("BTC", "BTC", "USDC", lot_size=D("0.00001"), sig_figs=5, max_price_decimals=1),
    MarketRules("DOGE", "DOGE", "USDC", lot_size=D("1"), sig_figs=5, max_price_decimals=6),
    MarketRules("BTCUSDT", "BTC", "USDT", lot_size=D("0.00001"), tick_size=D("0.01")),
    MarketRules("X", "X", "USDC", lot_size=D("1"), tick_size=D("1")),
]


def cancels(out) -> list[str]:
    return [cid for o in out if isinstance(o, Out) and isinstance(o.msg, RequestCancels) for cid in o.msg.client_ids]


def emergencies(out) -> list[EmergencyStop]:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, EmergencyStop) and o.to == SUPERVISOR]


# -- C-4: the floor holds after every adjustment ---------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(rules=st.sampled_from(MARKETS), spacing=st.sampled_from(["arithmetic", "geometric"]),
       start=st.decimals(min_value=D("0.01"), max_value=D("150000"), places=4),
       pct=st.decimals(min_value=D("0.0001"), max_value=D("5"), places=4),
       vol=st.one_of(st.none(), st.decimals(min_value=D("0"), max_value=D("8"), places=4)),
       multiplier=st.decimals(min_value=D("0"), max_value=D("3"), places=2),
       drifts=st.lists(st.decimals(min_value=D("0.5"), max_value=D("1.5"), places=3), min_size=1, max_size=4),
       levels=st.integers(min_value=1, max_value=25), min_ticks=st.integers(min_value=1, max_value=5),
       min_width=st.decimals(min_value=D("0"), max_value=D("20"), places=2))
def test_c4_levels_strictly_increasing_and_spacing_at_least_the_floor(rules, spacing, start, pct, vol, multiplier,
                                                                       drifts, levels, min_ticks, min_width):
    anchor = start
    for drift in drifts:                       # the price drifts and the grid re-anchors each time
        anchor = anchor * drift
        effective = spacing_pct(pct, multiplier, vol)
        assert effective >= pct               # volatility never narrows the configured spacing
        shape = GridShape(anchor, levels, levels, spacing, effective, min_ticks, min_width)
        prices, reason = grid_prices(shape, rules)
        if prices is None:
            assert "C-4" in reason
            continue
        ordered = [prices[i] for i in range(-levels, levels + 1)]
        for lower, upper in zip(ordered, ordered[1:]):
            assert upper > lower
            assert upper - lower >= min_ticks * rules.tick_at(lower)
        assert all(rules.price_is_valid(p) for p in ordered)
        assert ordered[-1] - ordered[0] >= anchor * min_width / 100 - 2 * rules.tick_at(ordered[-1])


def test_bounds_put_the_outermost_levels_on_the_bounds():
    for spacing in ("arithmetic", "geometric"):
        prices, _ = grid_prices(shape_from_bounds(D("30000"), D("50000"), 10, 10, spacing), RULES)
        assert (prices[-10], prices[10]) == (D("30000.0"), D("50000.0")), spacing
    prices, _ = grid_prices(shape_from_bounds(D("30000"), D("50000"), 20, 0, "arithmetic"), RULES)
    assert (min(prices), max(prices), prices[-20], prices[0]) == (-20, 0, D("30000.0"), D("50000.0"))


def test_minimum_width_widens_a_narrow_grid():
    prices, _ = grid_prices(GridShape(D("40000"), 5, 5, "geometric", D("0.01"), 1, D("10")), RULES)
    assert prices[5] - prices[-5] >= D("4000")


def test_volatility_widens_spacing_only_once_it_has_enough_samples():
    vol = Volatility(sample_ms=1000, window=10)
    price = D("40000")
    for i in range(3):
        vol.observe(price * (D("1.01") if i % 2 else D("0.99")), i * 1000)
    assert vol.pct() is None
    for i in range(3, 12):
        vol.observe(price * (D("1.01") if i % 2 else D("0.99")), i * 1000)
    assert vol.pct() > D("1")
    assert spacing_pct(D("0.15"), D("0.5"), vol.pct()) > D("0.5")
    assert spacing_pct(D("0.15"), D("0"), vol.pct()) == D("0.15")


# -- what the grid places --------------------------------------------------------------------------
def trading(journal=None, mid=D("40000"), **grid) -> tuple[Grid, list]:
    g = Grid(config(**grid), journal)
    g.on_rebuild(Rebuild(venue(mid=mid), 1))
    return g, g.on_mode(ModeChanged(Mode.TRADING))


def test_long_bias_grid_lies_below_the_anchor_and_only_buys_first():
    g, out = trading(bias="long")
    placed = by_level(out)
    assert set(placed) == {-4, -3, -2, -1} and all(s.side is BUY for s in placed.values())
    assert max(g.prices) == 0 and g.prices[0] == D("40000.0")
    g.on_tick(PriceTick("BTC", D("39940"), 2_000))                     # the price came down to level -1
    after = fill(g, placed[-1], 2, D("0.002"))
    assert [(s.level, s.side) for s in specs(after)] == [(0, SELL)]       # sells only what it bought


def test_short_bias_grid_lies_above_the_anchor_and_only_sells_first():
    g, out = trading(bias="short")
    placed = by_level(out)
    assert set(placed) == {1, 2, 3, 4} and all(s.side is SELL for s in placed.values())


def test_order_notional_sizes_every_level_from_the_anchor():
    _, out = trading(order_notional=D("100"))
    assert {s.size for s in specs(out)} == {D("0.002")}            # 100 / 40000 = 0.0025 -> lot 0.001


def test_bounds_config_sets_the_anchor_and_spacing():
    g, out = trading(anchor=D("0"), lower=D("39880"), upper=D("40120"))
    assert g.anchor == D("40000.0") and g.prices[-2] == D("39880.0") and g.prices[2] == D("40120.0")
    assert set(by_level(out)) == {-2, -1, 1, 2}


# -- B-3.3: trailing, with a persisted timer -------------------------------------------------------
def test_b33_out_of_range_timer_survives_a_restart_and_re_anchors_on_time(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    g, first = trading(journal, trail_after_s=60.0)
    placed = by_level(first)
    for s in placed.values():
        g.on_orders(update(s, OrderState.OPEN))
    assert g.on_tick(PriceTick("BTC", D("40500"), 100_000)) == []       # leaves the grid at t=100 s
    assert g.on_tick(PriceTick("BTC", D("40500"), 130_000)) == []
    assert journal.get_state("out_of_range_since_ms") == "100000"
    journal.save_orders([{"client_id": s.client_id, "exchange_order_id": "x", "symbol": "BTC",
                          "side": s.side.value, "price": str(s.price), "size": str(s.size), "filled": "0",
                          "state": "open", "origin": "grid", "level": s.level, "position_version": 1000}
                         for s in placed.values()])
    journal.close()

    # restart at t=140 s: the excursion started at 100 s, not now
    journal = Journal(tmp_path / "journal.db")
    g2 = Grid(config(trail_after_s=60.0), journal)
    open_orders = [_report(s) for s in placed.values()]
    g2.on_rebuild(Rebuild(venue(mid=D("40500"), open_orders=open_orders), 1))
    assert g2.on_mode(ModeChanged(Mode.TRADING)) == []
    assert g2.on_tick(PriceTick("BTC", D("40500"), 140_000)) == []
    assert g2.epoch == 1
    out = g2.on_tick(PriceTick("BTC", D("40500"), 160_000))             # 60 s after 100 s
    assert g2.epoch == 2 and g2.anchor == D("40500.0")
    assert journal.get_state("out_of_range_since_ms") == ""
    # the old epoch's orders are cancelled first; their levels are re-used only once they are gone
    assert sorted(cancels(out)) == sorted(s.client_id for s in placed.values())
    assert specs(out) == []
    gone = g2.on_orders(OrdersChanged(tuple(
        OrderUpdate(s.client_id, s.side, s.price, s.size, D(0), OrderState.CANCELLED, Origin.GRID, s.level)
        for s in placed.values())))
    assert {(s.level, s.side, s.price) for s in specs(gone)} == {
        (-2, BUY, D("40378.5")), (-1, BUY, D("40439.2")), (1, SELL, D("40560.8")), (2, SELL, D("40621.5"))}
    journal.close()


def test_b33_price_back_in_range_resets_the_persisted_timer(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    g, _ = trading(journal, trail_after_s=60.0)
    g.on_tick(PriceTick("BTC", D("40500"), 100_000))
    g.on_tick(PriceTick("BTC", D("40000"), 120_000))
    assert journal.get_state("out_of_range_since_ms") == ""
    g.on_tick(PriceTick("BTC", D("40500"), 130_000))
    g.on_tick(PriceTick("BTC", D("40500"), 170_000))
    assert g.epoch == 1                                                  # 40 s, not 70 s
    journal.close()


def _report(spec):
    from messages.reports import OrderReport
    return OrderReport(spec.client_id, "x", "BTC", spec.side, spec.price, spec.size, D(0), OrderState.OPEN)


def test_orders_adopted_from_another_epoch_are_cancelled(tmp_path):
    g, first = trading()
    placed = by_level(first)
    g.anchor, g.prices = D("41000"), None                 # as if re-anchored while the orders rested
    out = g.on_tick(PriceTick("BTC", D("41000"), 2_000))
    assert set(cancels(out)) == {s.client_id for s in placed.values()}
    assert g.on_tick(PriceTick("BTC", D("41000"), 3_000)) == []         # asked once, not on every tick


# -- B-1.2: counter-orders never fail silently -----------------------------------------------------
def refuse(g, spec, reason="insufficient funds", kind="funds"):
    return g.on_refused(IntentsRefused((IntentRefused(spec.client_id, reason, Origin.GRID, spec.level, kind),)))


def test_b12_failing_counter_order_backs_off_then_stops_the_grid():
    g, first = trading(counter_retry_limit=3, counter_retry_initial_s=1.0, counter_retry_max_s=30.0)
    buy = by_level(first)[-1]
    g.on_tick(PriceTick("BTC", D("39940"), 10_000))
    counter = by_level(fill(g, buy, 2, D("0.002")))[0]
    assert counter.side is SELL
    assert refuse(g, counter) == []                                     # failure 1: retry after 1 s
    assert g.on_tick(PriceTick("BTC", D("39940"), 10_500)) == []
    retry = by_level(g.on_tick(PriceTick("BTC", D("39940"), 11_000)))[0]
    assert retry.client_id != counter.client_id
    assert refuse(g, retry) == []                                       # failure 2: retry after 2 s
    assert g.on_tick(PriceTick("BTC", D("39940"), 12_500)) == []
    third = by_level(g.on_tick(PriceTick("BTC", D("39940"), 13_000)))[0]
    out = g.on_orders(update(third, OrderState.REJECTED))               # failure 3: emergency stop
    [stop] = emergencies(out)
    assert "counter-order at level 0 failed 3 times" in stop.reason and not stop.flatten
    assert emergencies(g.on_orders(update(third, OrderState.REJECTED))) == []   # reported once


def test_b12_a_counter_order_that_reaches_the_exchange_clears_its_failures():
    g, first = trading(counter_retry_limit=2, counter_retry_initial_s=0.001)
    buy = by_level(first)[-1]
    g.on_tick(PriceTick("BTC", D("39940"), 1_000))
    counter = by_level(fill(g, buy, 2, D("0.002")))[0]
    refuse(g, counter)
    retry = by_level(g.on_tick(PriceTick("BTC", D("39940"), 5_000)))[0]
    g.on_orders(update(retry, OrderState.OPEN))
    assert g.counters.view() == {}


@pytest.mark.parametrize("kind", ["stale", "mode", "limit", "breaker"])
def test_b12_deliberate_refusals_are_not_failures(kind):
    g, first = trading(counter_retry_limit=1)
    g.on_tick(PriceTick("BTC", D("39940"), 1_000))
    counter = by_level(fill(g, by_level(first)[-1], 2, D("0.002")))[0]
    assert emergencies(refuse(g, counter, f"refused: {kind}", kind)) == []
    assert g.counters.view() == {}


def test_a_level_refused_by_a_risk_limit_is_asked_again_later_not_on_every_tick():
    g, first = trading(counter_retry_initial_s=1.0)
    buy = by_level(first)[-2]
    g.on_tick(PriceTick("BTC", D("40000"), 10_000))
    refuse(g, buy, "max position 0.01", "limit")
    assert -2 not in by_level(g.on_tick(PriceTick("BTC", D("40000"), 10_500)))
    assert -2 in by_level(g.on_tick(PriceTick("BTC", D("40000"), 11_000)))
