"""GridActor's pure state: level prices (C-4), the empty level, counter-orders one level away, intents
tagged with the position version they were computed from (C-1), one order per level."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.grid import Grid, desired_orders, empty_level, level_prices
from actors.outbox import REPLY, Out
from adapters.journal import Journal
from config.schema import BotConfig
from messages.commands import OrderIntents, OrderSpec
from messages.events import FillsRecorded, IntentRefused, IntentsRefused, OrdersChanged, OrderUpdate, PositionChanged, PriceTick
from messages.lifecycle import ModeChanged, Rebuild, Reconciled
from messages.reports import FillReport, OrderReport, PositionReport, VenueState
from messages.types import MarketRules, Mode, OrderState, Origin, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
SIZE = D("0.002")
RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.001"), tick_size=D("0.1"))
# anchor 40000, spacing 0.15 % = 60: levels -2..2
PRICES = {-2: D("39880.0"), -1: D("39940.0"), 0: D("40000.0"), 1: D("40060.0"), 2: D("40120.0")}


def config(**grid):
    return BotConfig().with_overrides(grid={"levels_per_side": 2, "anchor": D("40000"), **grid})


def venue(position=D(0), mid=None, open_orders=(), rules=RULES) -> VenueState:
    return VenueState(rules, PositionReport("BTC", position), (), tuple(open_orders), (), mid, 1_000)


def intents(out) -> list[OrderIntents]:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, OrderIntents)]


def specs(out) -> list[OrderSpec]:
    return [s for msg in intents(out) for s in msg.orders]


def by_level(out) -> dict[int, OrderSpec]:
    found = {}
    for s in specs(out):
        assert s.level not in found, f"two intents for level {s.level}"
        found[s.level] = s
    return found


def position(version, pos) -> PositionChanged:
    return PositionChanged(version, pos, None, D(0), D(0), D(0))


def update(spec: OrderSpec, state: OrderState, filled=D(0)) -> OrdersChanged:
    return OrdersChanged((OrderUpdate(spec.client_id, spec.side, spec.price, spec.size, filled, state,
                                      spec.origin, spec.level),))


def fill(g: Grid, spec: OrderSpec, version: int, new_position, fills_first=True, size=None,
         trade_id=None) -> list:
    """One journaled fill of `spec`: the guarantor's FillsRecorded and the ledger's PositionChanged for
    the same journal version, in either order."""
    report = FillReport(trade_id or f"t{version}", "BTC", spec.side, spec.price, size or spec.size, D(0), "USDC",
                        1_000 + version, client_id=spec.client_id)
    fills = FillsRecorded(version, (report,))
    moved = position(version * 1000, new_position)
    if fills_first:
        return g.on_fills(fills) + g.on_position(moved)
    return g.on_position(moved) + g.on_fills(fills)


def trading_grid(journal=None, journal_version=1, **grid) -> tuple[Grid, list]:
    g = Grid(config(**grid), journal)
    g.on_rebuild(Rebuild(venue(), journal_version))
    return g, g.on_mode(ModeChanged(Mode.TRADING))


# -- level prices (C-4) ------------------------------------------------------------------------------
@pytest.mark.parametrize("spacing", ["arithmetic", "geometric"])
@pytest.mark.parametrize("rules, anchor, pct", [
    (RULES, D("40000"), D("0.15")),
    (RULES, D("100"), D("0.5")),
    (MarketRules("BTC", "BTC", "USDC", lot_size=D("0.00001"), sig_figs=5, max_price_decimals=1),
     D("40000"), D("0.15")),
    (MarketRules("DOGE", "DOGE", "USDC", lot_size=D("1"), sig_figs=5, max_price_decimals=6),
     D("0.12345"), D("0.25")),
])
def test_c4_levels_strictly_increasing_and_valid_after_rounding(spacing, rules, anchor, pct):
    prices = level_prices(anchor, 10, spacing, pct, rules, min_ticks=2)
    assert prices is not None
    assert sorted(prices) == list(range(-10, 11))
    ordered = [prices[i] for i in range(-10, 11)]
    for lower, upper in zip(ordered, ordered[1:]):
        assert upper > lower
        assert upper - lower >= 2 * rules.tick_at(lower)
    assert all(rules.price_is_valid(p) for p in ordered)


def test_c4_arithmetic_levels_are_exact():
    assert level_prices(D("40000"), 2, "arithmetic", D("0.15"), RULES) == PRICES


def test_c4_levels_that_would_collapse_after_rounding_are_pushed_to_the_tick_floor():
    coarse = MarketRules("X", "X", "USDC", lot_size=D("1"), tick_size=D("1"))
    # 0.15 % of 100 is 0.15: every level would round onto its neighbour with a tick of 1
    assert level_prices(D("100"), 3, "arithmetic", D("0.15"), coarse, min_ticks=2) == {
        -3: D("94"), -2: D("96"), -1: D("98"), 0: D("100"), 1: D("102"), 2: D("104"), 3: D("106")}
    assert level_prices(D("100"), 3, "geometric", D("0.15"), coarse, min_ticks=1) == {
        -3: D("97"), -2: D("98"), -1: D("99"), 0: D("100"), 1: D("101"), 2: D("102"), 3: D("103")}


def test_c4_levels_closer_than_the_tick_floor_are_widened():
    # 99.7 99.8 100.0 100.2 100.3: distinct, but two gaps are a single tick
    assert level_prices(D("100"), 2, "arithmetic", D("0.15"), RULES, min_ticks=1) == {
        -2: D("99.7"), -1: D("99.8"), 0: D("100.0"), 1: D("100.2"), 2: D("100.3")}
    assert level_prices(D("100"), 2, "arithmetic", D("0.15"), RULES, min_ticks=2) == {
        -2: D("99.6"), -1: D("99.8"), 0: D("100.0"), 1: D("100.2"), 2: D("100.4")}


def test_c4_grid_refuses_to_trade_when_levels_would_go_below_zero():
    coarse = MarketRules("X", "X", "USDC", lot_size=D("0.001"), tick_size=D("1"))
    g = Grid(config(anchor=D("5"), spacing_pct=D("0.15"), min_spacing_ticks=3))
    g.on_rebuild(Rebuild(venue(rules=coarse), 1))
    assert g.on_mode(ModeChanged(Mode.TRADING)) == []
    assert g.on_tick(PriceTick("BTC", D("5"), 2_000)) == []
    assert g.prices is None
    assert "C-4" in g.refused_reason and "does not fit below the anchor" in g.refused_reason
    assert g.working == {}


# -- the empty level and the desired sides -------------------------------------------------------------
@pytest.mark.parametrize("pos, base, expected", [
    (D("0"), D("0"), 0),
    (D("0.002"), D("0"), -1),        # one buy filled: level -1 is now empty
    (D("-0.004"), D("0"), 2),        # two sells filled
    (D("0.012"), D("0.01"), -1),     # relative to the position at anchoring
    (D("1"), D("0"), -3),            # clamped just outside the grid
    (D("-1"), D("0"), 3),
])
def test_empty_level(pos, base, expected):
    assert empty_level(pos, base, SIZE, 2) == expected


def test_desired_orders_buys_below_sells_above_the_empty_level():
    assert desired_orders(PRICES, 0, None) == {-2: BUY, -1: BUY, 1: SELL, 2: SELL}
    assert desired_orders(PRICES, -1, None) == {-2: BUY, 0: SELL, 1: SELL, 2: SELL}
    assert desired_orders(PRICES, 3, None) == {-2: BUY, -1: BUY, 0: BUY, 1: BUY, 2: BUY}


def test_desired_orders_skip_levels_that_would_cross_the_mid():
    # mid fell below level -1: a post-only buy at 39940 would cross, so it waits
    assert desired_orders(PRICES, 0, D("39930")) == {-2: BUY, 1: SELL, 2: SELL}
    assert desired_orders(PRICES, 0, D("40060")) == {-2: BUY, -1: BUY, 2: SELL}


# -- the grid: what it emits and when ----------------------------------------------------------------
def test_grid_places_buys_below_and_sells_above_the_anchor():
    g, out = trading_grid()
    assert [o.to for o in out] == ["risk"]
    levels = by_level(out)
    assert {lvl: (s.side, s.price) for lvl, s in levels.items()} == {
        -2: (BUY, D("39880.0")), -1: (BUY, D("39940.0")), 1: (SELL, D("40060.0")), 2: (SELL, D("40120.0"))}
    assert all(s.size == SIZE and s.origin is Origin.GRID and s.symbol == "BTC" for s in levels.values())
    assert g.working == {lvl: s.client_id for lvl, s in levels.items()}


def test_nothing_is_emitted_unless_trading_with_known_rules():
    g = Grid(config())
    # trading, but no rules and no position yet
    assert g.on_mode(ModeChanged(Mode.TRADING)) == []
    assert g.on_tick(PriceTick("BTC", D("40000"), 1_000)) == []
    assert g.on_position(position(1000, D(0))) == []
    # rules known, but not trading
    g = Grid(config())
    assert intents(g.on_rebuild(Rebuild(venue(), 1))) == []
    for mode in (Mode.STARTING, Mode.RECONCILING, Mode.HALTED, Mode.EMERGENCY, Mode.STOPPING):
        assert g.on_mode(ModeChanged(mode)) == []
        assert g.on_tick(PriceTick("BTC", D("40000"), 2_000)) == []
        assert g.on_position(position(1000, D(0))) == []
    assert g.working == {} and g.intents_sent == 0
    assert len(specs(g.on_mode(ModeChanged(Mode.TRADING)))) == 4


def test_rebuild_reports_reconciled():
    g = Grid(config())
    (reply,) = g.on_rebuild(Rebuild(venue(), 1))
    assert reply.to == REPLY and isinstance(reply.msg, Reconciled)
    assert (reply.msg.role, reply.msg.ok) == ("grid", True)


def test_grid_anchors_at_the_mid_when_no_anchor_is_configured():
    g = Grid(config(anchor=D("0")))
    g.on_rebuild(Rebuild(venue(mid=D("40000.04")), 1))
    out = g.on_mode(ModeChanged(Mode.TRADING))
    assert g.anchor == D("40000.0")
    assert by_level(out)[-1].price == D("39940.0")


def test_grid_without_mid_or_anchor_waits_for_a_price():
    g = Grid(config(anchor=D("0")))
    g.on_rebuild(Rebuild(venue(mid=None), 1))
    assert g.on_mode(ModeChanged(Mode.TRADING)) == []
    assert len(specs(g.on_tick(PriceTick("BTC", D("40000"), 2_000)))) == 4


def test_levels_on_the_wrong_side_of_the_mid_wait_for_the_price():
    g = Grid(config())
    g.on_rebuild(Rebuild(venue(mid=D("39930")), 1))
    out = g.on_mode(ModeChanged(Mode.TRADING))
    assert set(by_level(out)) == {-2, 1, 2}
    later = g.on_tick(PriceTick("BTC", D("39990"), 2_000))
    assert {lvl: s.side for lvl, s in by_level(later).items()} == {-1: BUY}


# -- counter-orders and position versions (C-1) -------------------------------------------------------
def test_c1_a_position_change_alone_is_not_a_consistent_view():
    """The grid waits until the fills that made a position version have reached it too."""
    g, _ = trading_grid()
    assert g.on_position(position(2000, SIZE)) == []
    assert g.on_tick(PriceTick("BTC", D("40000"), 2_000)) == []


@pytest.mark.parametrize("fills_first", [True, False], ids=["fills-first", "position-first"])
def test_c1_buy_filled_at_a_level_leads_to_a_sell_one_level_up(fills_first):
    g, first = trading_grid()
    buy1, buy2 = by_level(first)[-1], by_level(first)[-2]
    out = fill(g, buy1, 2, SIZE, fills_first)                 # the buy at -1 filled
    assert {lvl: (s.side, s.price) for lvl, s in by_level(out).items()} == {0: (SELL, D("40000.0"))}
    assert g.on_orders(update(buy1, OrderState.FILLED, SIZE)) == []    # -1 is the empty level now
    # the price keeps falling: the buy at -2 fills too, its counter-order is a sell at -1
    out = fill(g, buy2, 3, 2 * SIZE, fills_first)
    assert {lvl: (s.side, s.price) for lvl, s in by_level(out).items()} == {-1: (SELL, D("39940.0"))}


@pytest.mark.parametrize("fills_first", [True, False], ids=["fills-first", "position-first"])
def test_c1_sell_filled_at_a_level_leads_to_a_buy_one_level_down(fills_first):
    g, first = trading_grid()
    sell1, sell2 = by_level(first)[1], by_level(first)[2]
    out = fill(g, sell1, 2, -SIZE, fills_first)
    assert {lvl: (s.side, s.price) for lvl, s in by_level(out).items()} == {0: (BUY, D("40000.0"))}
    g.on_orders(update(sell1, OrderState.FILLED, SIZE))
    out = fill(g, sell2, 3, -2 * SIZE, fills_first)
    assert {lvl: (s.side, s.price) for lvl, s in by_level(out).items()} == {1: (BUY, D("40060.0"))}


def test_c1_partial_fill_keeps_the_level_until_the_order_is_complete():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    # half filled: the position moved by half a unit, which still rounds to the same empty level
    assert fill(g, buy, 2, D("0.001"), True, size=D("0.001"), trade_id="p1") == []
    assert g.working[-1] == buy.client_id
    out = fill(g, buy, 3, SIZE, True, size=D("0.001"), trade_id="p2")
    assert {lvl: s.side for lvl, s in by_level(out).items()} == {0: SELL}
    assert -1 not in g.working


def test_c1_round_trip_restores_the_original_level_with_a_new_client_id():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    sell0 = by_level(fill(g, buy, 2, SIZE))[0]
    out = fill(g, sell0, 3, D(0))                             # the counter-sell filled: flat again
    rebuy = by_level(out)[-1]
    assert (rebuy.side, rebuy.price, rebuy.position_version) == (BUY, D("39940.0"), 3000)
    assert rebuy.client_id != buy.client_id


def test_c1_late_open_update_of_a_completed_order_does_not_block_its_level():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    sell0 = by_level(fill(g, buy, 2, SIZE))[0]
    assert g.on_orders(update(buy, OrderState.OPEN)) == []   # stale news about the filled buy
    out = fill(g, sell0, 3, D(0))
    assert set(by_level(out)) == {-1}


def test_c1_every_intent_carries_the_position_version_it_was_computed_from():
    g, first = trading_grid(journal_version=7)
    assert [m.position_version for m in intents(first)] == [7000]
    assert {s.position_version for s in specs(first)} == {7000}
    out = fill(g, by_level(first)[-1], 8, SIZE)
    assert [m.position_version for m in intents(out)] == [8000]
    assert {s.position_version for s in specs(out)} == {8000}


def test_c1_an_older_position_is_ignored():
    g, first = trading_grid(journal_version=7)
    fill(g, by_level(first)[-1], 8, SIZE)
    assert g.on_position(position(7500, -5 * SIZE)) == []
    assert (g.position, g.version) == (SIZE, 8000)
    assert g.on_fills(FillsRecorded(8, ())) == []            # the same fills again: nothing new


def test_c1_same_position_recomputed_gives_the_same_client_ids():
    """A restart that recomputes from the same (epoch, position version) recognises its own orders."""
    _, a = trading_grid()
    _, b = trading_grid()
    assert [s.client_id for s in specs(a)] == [s.client_id for s in specs(b)]
    assert len({s.client_id for s in specs(a)}) == 4


# -- one order per level -----------------------------------------------------------------------------
def test_never_two_working_orders_at_one_level():
    g, first = trading_grid()
    seen = dict(by_level(first))
    for i, mid in enumerate((D("40010"), D("40030"), D("40000"), D("39950"))):
        assert g.on_tick(PriceTick("BTC", mid, 2_000 + i)) == []
    for s in seen.values():
        assert g.on_orders(update(s, OrderState.OPEN)) == []
    assert g.on_position(position(1000, D(0))) == []          # same version again
    # a fill: only the empty neighbour gets an order, the working levels are left alone
    out = fill(g, seen[-1], 2, SIZE)
    assert set(by_level(out)) == {0}
    assert set(by_level(out)).isdisjoint(set(seen) - {-1})
    assert g.on_tick(PriceTick("BTC", D("39950"), 3_000)) == []


def test_a_terminal_update_for_another_client_id_does_not_free_the_level():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    stranger = OrderSpec("0xother", "BTC", BUY, buy.price, SIZE, Origin.GRID, -1, 1000)
    assert g.on_orders(update(stranger, OrderState.CANCELLED)) == []
    assert g.working[-1] == buy.client_id


def test_updates_of_non_grid_orders_do_not_touch_levels():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    protective = OrderSpec("0xsl", "BTC", SELL, D("39000"), SIZE, Origin.RISK, -1, 1000)
    g.on_orders(update(protective, OrderState.OPEN))
    g.on_orders(update(protective, OrderState.CANCELLED))
    assert g.working[-1] == buy.client_id


# -- refusals ----------------------------------------------------------------------------------------
def test_refused_intent_frees_its_level_and_is_retried_with_a_new_client_id():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    refused = IntentsRefused((IntentRefused(buy.client_id, "insufficient funds", Origin.GRID, -1),))
    assert g.on_refused(refused) == []                     # no retry loop: waits for the next event
    assert -1 not in g.working
    assert g.refused_reason == "insufficient funds"
    retry = by_level(g.on_tick(PriceTick("BTC", D("40000"), 2_000)))
    assert set(retry) == {-1}
    assert (retry[-1].side, retry[-1].price, retry[-1].position_version) == (BUY, D("39940.0"), 1000)
    assert retry[-1].client_id != buy.client_id
    # refused again: yet another id
    g.on_refused(IntentsRefused((IntentRefused(retry[-1].client_id, "max position", Origin.GRID, -1),)))
    third = by_level(g.on_tick(PriceTick("BTC", D("40000"), 3_000)))[-1]
    assert third.client_id not in (buy.client_id, retry[-1].client_id)


def test_a_refusal_of_an_old_client_id_does_not_free_a_newer_order_at_that_level():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    g.on_refused(IntentsRefused((IntentRefused("0xstale", "stale", Origin.GRID, -1),)))
    assert g.working[-1] == buy.client_id


def test_c1_fill_reported_by_the_order_book_first_does_not_rebuy_the_filled_level():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    out = g.on_orders(update(buy, OrderState.FILLED, SIZE))   # the order book was faster than the guarantor
    assert -1 not in by_level(out), "a second buy at a level that just filled, from a stale position"
    assert buy.client_id not in {s.client_id for s in specs(out)}


def test_rejected_order_is_retried_with_a_fresh_client_id():
    g, first = trading_grid()
    buy = by_level(first)[-1]
    out = g.on_orders(update(buy, OrderState.REJECTED))
    out += g.on_tick(PriceTick("BTC", D("40000"), 2_000))
    retry = by_level(out)[-1]
    assert retry.client_id != buy.client_id


# -- persistence and restart -------------------------------------------------------------------------
def test_anchor_is_persisted_and_a_restart_adopts_live_levels(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    g = Grid(config(anchor=D("0")), journal)
    g.on_rebuild(Rebuild(venue(mid=D("40000")), 1))
    first = by_level(g.on_mode(ModeChanged(Mode.TRADING)))
    assert (journal.get_state("anchor"), journal.get_state("epoch"), journal.get_state("base_position")) == (
        "40000.0", "1", "0")
    # the order book journaled the two buys and they rest on the exchange
    rows, open_orders = [], []
    for lvl in (-2, -1):
        s = first[lvl]
        rows.append({"client_id": s.client_id, "exchange_order_id": f"x{lvl}", "symbol": "BTC",
                     "side": s.side.value, "price": str(s.price), "size": str(s.size), "filled": "0",
                     "state": "open", "origin": "grid", "level": lvl, "position_version": 1000})
        open_orders.append(OrderReport(s.client_id, f"x{lvl}", "BTC", s.side, s.price, s.size, D(0),
                                       OrderState.OPEN))
    journal.save_orders(rows)
    journal.close()

    # restart: a new grid on the same journal, the mid has moved since
    journal = Journal(tmp_path / "journal.db")
    g2 = Grid(config(anchor=D("0")), journal)
    out = g2.on_rebuild(Rebuild(venue(mid=D("40010"), open_orders=open_orders), 1))
    assert out[0].msg.detail == "anchor 40000.0, 2 live levels"
    again = by_level(g2.on_mode(ModeChanged(Mode.TRADING)))
    assert g2.anchor == D("40000.0") and g2.epoch == 1        # not re-anchored at the new mid
    assert set(again) == {1, 2}                                # the resting buys are not placed twice
    assert {lvl: s.client_id for lvl, s in again.items()} == {lvl: first[lvl].client_id for lvl in (1, 2)}
    journal.close()
