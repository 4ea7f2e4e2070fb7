"""The matching engine: rules, post-only, duplicate ids, reduce-only, funds, fills, persistence."""
from __future__ import annotations

import os
import time
from decimal import Decimal

import pytest

from messages.types import MarketRules, OrderState, RejectReason, Side
from sim.engine import MatchingEngine
from sim.paths import Candle, intrabar_points

pytestmark = pytest.mark.timeout(60)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
ACCOUNT = "alice"


def hl_btc(**overrides) -> MarketRules:
    fields = dict(symbol="BTC", base_asset="BTC", quote_asset="USDC", lot_size=D("0.00001"), sig_figs=5,
                  max_price_decimals=1, min_notional=D("10"))
    fields.update(overrides)
    return MarketRules(**fields)


def binance_btc(**overrides) -> MarketRules:
    fields = dict(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", lot_size=D("0.00001"),
                  tick_size=D("0.01"), min_notional=D("5"), max_orders=200)
    fields.update(overrides)
    return MarketRules(**fields)


def perp_engine(rules: MarketRules | None = None, collateral=D("10000"), price=D("40000"), **kw):
    engine = MatchingEngine(**kw)
    engine.add_market(rules or hl_btc(), "perp")
    engine.fund(ACCOUNT, "USDC", collateral)
    engine.advance("BTC", 1_000, price)
    return engine


def spot_engine(usdt=D("1000"), btc=D("0.1"), **kw):
    engine = MatchingEngine(client_id_scope="open", **kw)
    engine.add_market(binance_btc(), "spot", maker_fee=D("0.001"), taker_fee=D("0.001"))
    engine.fund(ACCOUNT, "USDT", usdt)
    engine.fund(ACCOUNT, "BTC", btc)
    engine.advance("BTCUSDT", 1_000, D("40000"))
    return engine


def walk(engine, symbol, candle: Candle):
    fills = []
    for t, price in intrabar_points(candle):
        fills.extend(engine.advance(symbol, t, price))
    return fills


# -- matching -------------------------------------------------------------------------------------
def test_m1_wick_fills_several_levels_nearest_first():
    engine = perp_engine()
    levels = [D("39990"), D("39950"), D("39900"), D("39850")]
    for i, price in enumerate(reversed(levels)):  # placed far-to-near: time order must not matter
        assert engine.place(ACCOUNT, "BTC", BUY, price, D("0.001"), client_id=f"b{i}").resting
    wick = Candle(60_000, D("40000"), D("40020"), D("39880"), D("40010"), D(1))
    fills = walk(engine, "BTC", wick)
    assert [f.price for f in fills] == levels[:3]
    assert all(f.maker and f.time_ms == 90_000 for f in fills)  # high first, then the low
    assert [f.trade_id for f in fills] == sorted(f.trade_id for f in fills)
    assert len({f.trade_id for f in fills}) == 3
    assert [o.price for o in engine.open_orders(ACCOUNT)] == [D("39850")]
    assert engine.position(ACCOUNT, "BTC").size == D("0.003")


def test_touch_fills_and_quiet_moves_fill_nothing():
    engine = perp_engine()
    engine.place(ACCOUNT, "BTC", BUY, D("39990"), D("0.001"))
    engine.place(ACCOUNT, "BTC", SELL, D("40010"), D("0.001"))
    assert engine.advance("BTC", 2_000, D("39990.5")) == []
    assert engine.advance("BTC", 3_000, D("40009")) == []
    [fill] = engine.advance("BTC", 4_000, D("40010"))
    assert (fill.side, fill.price, fill.time_ms) == (SELL, D("40010"), 4_000)


def test_order_placed_after_a_move_fills_only_on_a_later_move():
    engine = perp_engine()
    engine.advance("BTC", 2_000, D("39985"))
    out = engine.place(ACCOUNT, "BTC", BUY, D("39980"), D("0.001"))
    assert out.resting and out.fills == ()
    assert engine.advance("BTC", 3_000, D("39981")) == []
    [fill] = engine.advance("BTC", 4_000, D("39970"))
    assert fill.oid == out.oid and fill.price == D("39980")


def test_gtc_crossing_fills_as_taker_at_the_current_price():
    engine = perp_engine()
    out = engine.place(ACCOUNT, "BTC", BUY, D("40100"), D("0.01"), tif="Gtc")
    assert out.accepted and out.filled and out.status is OrderState.FILLED
    [fill] = out.fills
    assert (fill.price, fill.size, fill.maker) == (D("40000"), D("0.01"), False)
    assert fill.fee == D("40000") * D("0.01") * D("0.00045")
    assert engine.open_orders(ACCOUNT) == []


def test_ioc_fills_when_crossing_and_is_cancelled_otherwise():
    engine = perp_engine()
    crossing = engine.place(ACCOUNT, "BTC", SELL, D("39900"), D("0.001"), tif="Ioc")
    assert crossing.filled and crossing.fills[0].price == D("40000")
    passive = engine.place(ACCOUNT, "BTC", SELL, D("40100"), D("0.001"), tif="Ioc", client_id="ioc")
    assert passive.accepted and passive.status is OrderState.CANCELLED and passive.fills == ()
    assert engine.open_orders(ACCOUNT) == []
    assert engine.order_status(ACCOUNT, client_id="ioc").status is OrderState.CANCELLED


# -- rejections -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rules, price, size, reason", [
    (hl_btc(), D("40000.5"), D("0.001"), RejectReason.PRICE_TICK),
    (hl_btc(), D("39999.25"), D("0.001"), RejectReason.PRICE_TICK),
    (hl_btc(), D("0"), D("0.001"), RejectReason.PRICE_RANGE),
    (hl_btc(min_price=D("1000")), D("900"), D("0.02"), RejectReason.PRICE_RANGE),
    (hl_btc(max_price=D("100000")), D("120000"), D("0.001"), RejectReason.PRICE_RANGE),
    (hl_btc(), D("39000"), D("0.000015"), RejectReason.SIZE_LOT),
    (hl_btc(), D("39000"), D("0"), RejectReason.SIZE_RANGE),
    (hl_btc(max_size=D("0.01")), D("39000"), D("0.02"), RejectReason.SIZE_RANGE),
    (hl_btc(), D("39000"), D("0.0002"), RejectReason.MIN_NOTIONAL),
    (hl_btc(max_notional=D("1000")), D("39000"), D("0.03"), RejectReason.MAX_NOTIONAL),
])
def test_market_rule_rejections(rules, price, size, reason):
    engine = perp_engine(rules)
    out = engine.place(ACCOUNT, "BTC", BUY, price, size, client_id="x")
    assert not out.accepted and out.reason is reason and out.message
    assert out.oid is None and engine.open_orders(ACCOUNT) == []
    assert engine.order_status(ACCOUNT, client_id="x").status is OrderState.REJECTED


def test_max_orders_counts_open_orders_only():
    engine = perp_engine(hl_btc(max_orders=2))
    first = engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.001"))
    engine.place(ACCOUNT, "BTC", BUY, D("38000"), D("0.001"))
    out = engine.place(ACCOUNT, "BTC", BUY, D("37000"), D("0.001"))
    assert out.reason is RejectReason.MAX_ORDERS
    assert engine.cancel(ACCOUNT, "BTC", oid=first.oid).ok
    assert engine.place(ACCOUNT, "BTC", BUY, D("37000"), D("0.001")).accepted


def test_post_only_that_would_cross_is_rejected():
    engine = perp_engine()
    for side, price in ((BUY, D("40000")), (BUY, D("40100")), (SELL, D("40000")), (SELL, D("39000"))):
        out = engine.place(ACCOUNT, "BTC", side, price, D("0.001"), tif="Alo")
        assert out.reason is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.fills(ACCOUNT) == [] and engine.open_orders(ACCOUNT) == []


def test_duplicate_client_id_ever_scope():
    engine = perp_engine()
    first = engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.001"), client_id="c1")
    assert engine.place(ACCOUNT, "BTC", BUY, D("38000"), D("0.001"), client_id="c1").reason \
        is RejectReason.DUPLICATE_CLIENT_ID
    engine.cancel(ACCOUNT, "BTC", client_id="c1")
    again = engine.place(ACCOUNT, "BTC", BUY, D("38000"), D("0.001"), client_id="c1")
    assert again.reason is RejectReason.DUPLICATE_CLIENT_ID
    status = engine.order_status(ACCOUNT, client_id="c1")
    assert status.oid == first.oid and status.status is OrderState.CANCELLED
    # a rejected order does not use its id up
    assert engine.place(ACCOUNT, "BTC", BUY, D("40500"), D("0.001"), client_id="c2").reason \
        is RejectReason.POST_ONLY_WOULD_CROSS
    assert engine.place(ACCOUNT, "BTC", BUY, D("39500"), D("0.001"), client_id="c2").resting


def test_duplicate_client_id_open_scope_allows_reuse_after_close():
    engine = spot_engine()
    engine.place(ACCOUNT, "BTCUSDT", BUY, D("39000"), D("0.001"), client_id="c1")
    dup = engine.place(ACCOUNT, "BTCUSDT", BUY, D("38000"), D("0.001"), client_id="c1")
    assert dup.reason is RejectReason.DUPLICATE_CLIENT_ID
    assert engine.cancel(ACCOUNT, "BTCUSDT", client_id="c1").ok
    reused = engine.place(ACCOUNT, "BTCUSDT", BUY, D("38000"), D("0.001"), client_id="c1")
    assert reused.resting
    assert engine.order_status(ACCOUNT, client_id="c1").oid == reused.oid


def test_reduce_only_that_would_increase_or_flip_is_rejected():
    engine = perp_engine()
    flat = engine.place(ACCOUNT, "BTC", SELL, D("41000"), D("0.001"), reduce_only=True)
    assert flat.reason is RejectReason.REDUCE_ONLY
    engine.place(ACCOUNT, "BTC", BUY, D("40100"), D("0.002"), tif="Gtc")  # long 0.002
    assert engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.001"), reduce_only=True).reason \
        is RejectReason.REDUCE_ONLY
    assert engine.place(ACCOUNT, "BTC", SELL, D("41000"), D("0.003"), reduce_only=True).reason \
        is RejectReason.REDUCE_ONLY
    assert engine.place(ACCOUNT, "BTC", SELL, D("41000"), D("0.002"), reduce_only=True).resting


def test_reduce_only_fills_only_what_still_reduces():
    engine = perp_engine()
    engine.place(ACCOUNT, "BTC", BUY, D("40100"), D("0.002"), tif="Gtc")
    first = engine.place(ACCOUNT, "BTC", SELL, D("40100"), D("0.002"), reduce_only=True)
    second = engine.place(ACCOUNT, "BTC", SELL, D("40200"), D("0.002"), reduce_only=True)
    fills = engine.advance("BTC", 2_000, D("40300"))
    assert [(f.oid, f.size) for f in fills] == [(first.oid, D("0.002"))]
    assert engine.position(ACCOUNT, "BTC").size == 0
    status = engine.order_status(ACCOUNT, oid=second.oid)
    assert status.status is OrderState.CANCELLED and status.filled == 0


def test_perp_margin_check_counts_open_orders_and_position():
    engine = perp_engine(collateral=D("100"))  # 10x: 1000 USDC of notional
    assert engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.02")).accepted  # 780 notional
    out = engine.place(ACCOUNT, "BTC", BUY, D("38000"), D("0.01"))  # 380 more: too much
    assert out.reason is RejectReason.INSUFFICIENT_FUNDS
    margin = engine.margin(ACCOUNT, "USDC")
    assert margin.used == D("78") and margin.available == D("22")
    lev2 = MatchingEngine()
    lev2.add_market(hl_btc(), "perp", leverage=2)
    lev2.fund(ACCOUNT, "USDC", D("100"))
    lev2.advance("BTC", 0, D("40000"))
    assert lev2.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.006")).reason is RejectReason.INSUFFICIENT_FUNDS
    assert lev2.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.005")).accepted


def test_spot_insufficient_balance():
    engine = spot_engine(usdt=D("100"), btc=D("0.001"))
    assert engine.place(ACCOUNT, "BTCUSDT", BUY, D("39000"), D("0.003")).reason \
        is RejectReason.INSUFFICIENT_FUNDS
    assert engine.place(ACCOUNT, "BTCUSDT", SELL, D("41000"), D("0.002")).reason \
        is RejectReason.INSUFFICIENT_FUNDS
    assert engine.place(ACCOUNT, "BTCUSDT", SELL, D("41000"), D("0.001")).accepted
    assert engine.place(ACCOUNT, "BTCUSDT", SELL, D("41000"), D("0.001"), reduce_only=True).reason \
        is RejectReason.REDUCE_ONLY


def test_cancel_unknown_filled_or_cancelled_order():
    engine = perp_engine()
    assert engine.cancel(ACCOUNT, "BTC", oid=999).reason is RejectReason.UNKNOWN_ORDER
    assert engine.cancel(ACCOUNT, "BTC", client_id="never").order is None
    order = engine.place(ACCOUNT, "BTC", BUY, D("39990"), D("0.001"), client_id="b")
    engine.advance("BTC", 2_000, D("39980"))
    filled = engine.cancel(ACCOUNT, "BTC", client_id="b")
    assert not filled.ok and filled.reason is RejectReason.UNKNOWN_ORDER
    assert filled.order.status is OrderState.FILLED
    assert engine.cancel("mallory", "BTC", oid=order.oid).order is None  # not someone else's
    other = engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.001"))
    assert engine.cancel(ACCOUNT, "BTC", oid=other.oid).ok
    assert engine.cancel(ACCOUNT, "BTC", oid=other.oid).reason is RejectReason.UNKNOWN_ORDER


def test_cancel_all_and_order_status_record():
    engine = perp_engine()
    for i in range(5):
        engine.place(ACCOUNT, "BTC", BUY, D(39000 - i * 100), D("0.001"), client_id=f"b{i}", time_ms=5_000)
    cancelled = engine.cancel_all(ACCOUNT, "BTC", time_ms=6_000)
    assert len(cancelled) == 5 and engine.open_orders(ACCOUNT, "BTC") == []
    record = engine.order_status(ACCOUNT, client_id="b3")
    assert (record.status, record.size, record.filled, record.created_ms, record.updated_ms) == (
        OrderState.CANCELLED, D("0.001"), 0, 5_000, 6_000)
    assert engine.order_status(ACCOUNT, client_id="zz") is None
    record.filled = D(1)  # a copy: the engine's record is untouched
    assert engine.order_status(ACCOUNT, client_id="b3").filled == 0


# -- funds ----------------------------------------------------------------------------------------
def test_spot_free_and_locked_through_place_fill_and_cancel():
    engine = spot_engine(usdt=D("1000"), btc=D("0.1"))
    buy = engine.place(ACCOUNT, "BTCUSDT", BUY, D("39000"), D("0.01"))
    sell = engine.place(ACCOUNT, "BTCUSDT", SELL, D("41000"), D("0.02"))
    bal = engine.balances(ACCOUNT)
    assert (bal["USDT"].free, bal["USDT"].locked) == (D("610"), D("390"))
    assert (bal["BTC"].free, bal["BTC"].locked) == (D("0.08"), D("0.02"))
    [fill] = engine.advance("BTCUSDT", 2_000, D("38999"))
    assert (fill.oid, fill.fee, fill.fee_asset) == (buy.oid, D("0.00001"), "BTC")
    bal = engine.balances(ACCOUNT)
    assert (bal["USDT"].free, bal["USDT"].locked) == (D("610"), D("0"))
    assert (bal["BTC"].free, bal["BTC"].locked) == (D("0.08") + D("0.01") - D("0.00001"), D("0.02"))
    assert engine.cancel(ACCOUNT, "BTCUSDT", oid=sell.oid).ok
    bal = engine.balances(ACCOUNT)
    assert (bal["BTC"].free, bal["BTC"].locked) == (D("0.10999"), D("0"))
    # a taker sell: fee in the received quote
    [taker] = engine.place(ACCOUNT, "BTCUSDT", SELL, D("38000"), D("0.01"), tif="Gtc").fills
    assert (taker.price, taker.fee, taker.fee_asset) == (D("38999"), D("0.38999"), "USDT")
    assert engine.balances(ACCOUNT)["USDT"].free == D("610") + D("389.99") - D("0.38999")


def test_spot_taker_buy_below_limit_releases_the_unspent_lock():
    engine = spot_engine(usdt=D("1000"), btc=D("0"))
    out = engine.place(ACCOUNT, "BTCUSDT", BUY, D("41000"), D("0.01"), tif="Gtc")
    assert out.fills[0].price == D("40000")
    bal = engine.balances(ACCOUNT)
    assert (bal["USDT"].free, bal["USDT"].locked) == (D("600"), D("0"))
    assert bal["BTC"].free == D("0.01") - D("0.00001")


def test_perp_position_entry_realized_pnl_and_fees():
    engine = perp_engine(price=D("40000"))
    engine.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.01"))
    engine.place(ACCOUNT, "BTC", BUY, D("38000"), D("0.01"))
    engine.advance("BTC", 2_000, D("37900"))
    pos = engine.position(ACCOUNT, "BTC")
    assert (pos.size, pos.entry_price) == (D("0.02"), D("38500"))
    assert pos.unrealized_pnl == D("0.02") * (D("37900") - D("38500"))
    engine.place(ACCOUNT, "BTC", SELL, D("39500"), D("0.015"))
    [close] = engine.advance("BTC", 3_000, D("39500"))
    assert (close.start_position, close.closed_pnl) == (D("0.02"), D("15"))
    pos = engine.position(ACCOUNT, "BTC")
    assert (pos.size, pos.entry_price, pos.realized_pnl) == (D("0.005"), D("38500"), D("15"))
    flip = engine.place(ACCOUNT, "BTC", SELL, D("39400"), D("0.01"), tif="Gtc")  # taker at 39500
    assert flip.fills[0].closed_pnl == D("0.005") * D("1000")
    pos = engine.position(ACCOUNT, "BTC")
    assert (pos.size, pos.entry_price, pos.realized_pnl) == (D("-0.005"), D("39500"), D("20"))
    maker = D("0.00015")
    fees = (D("390") + D("380") + D("592.5")) * maker + D("395") * D("0.00045")
    assert pos.fees == fees
    assert engine.balances(ACCOUNT)["USDC"].free == D("10000") + D("20") - fees


def test_negative_maker_fee_is_a_rebate():
    engine = MatchingEngine()
    engine.add_market(hl_btc(), "perp", maker_fee=D("-0.0001"))
    engine.fund(ACCOUNT, "USDC", D("1000"))
    engine.advance("BTC", 0, D("40000"))
    engine.place(ACCOUNT, "BTC", BUY, D("39990"), D("0.01"))
    [fill] = engine.advance("BTC", 1, D("39990"))
    assert fill.fee == D("-0.039990")
    assert engine.balances(ACCOUNT)["USDC"].free == D("1000.039990")


# -- fills and ids --------------------------------------------------------------------------------
def test_partial_fills_sum_exactly_and_respect_the_lot():
    engine = perp_engine(hl_btc(min_notional=D(0)), partial_fills=True, seed=42)
    sizes = [D("0.00037"), D("0.01234"), D("0.5"), D("0.00001")]
    orders = [engine.place(ACCOUNT, "BTC", BUY, D(39990 - 10 * i), s) for i, s in enumerate(sizes)]
    fills = engine.advance("BTC", 2_000, D("39000"))
    for order, size in zip(orders, sizes):
        parts = [f for f in fills if f.oid == order.oid]
        assert sum((f.size for f in parts), D(0)) == size
        assert all(f.size > 0 and f.size % D("0.00001") == 0 for f in parts)
        assert (2 if size > D("0.00001") else 1) <= len(parts) <= 3
        assert engine.order_status(ACCOUNT, oid=order.oid).status is OrderState.FILLED
    assert len({f.trade_id for f in fills}) == len(fills)
    assert engine.position(ACCOUNT, "BTC").size == sum(sizes, D(0))
    twin = perp_engine(hl_btc(min_notional=D(0)), partial_fills=True, seed=42)
    for i, s in enumerate(sizes):
        twin.place(ACCOUNT, "BTC", BUY, D(39990 - 10 * i), s)
    assert [f.size for f in twin.advance("BTC", 2_000, D("39000"))] == [f.size for f in fills]


def test_trade_ids_are_unique_and_increasing_across_many_fills():
    engine = perp_engine(collateral=D("1000000"))
    seen = []
    price = D("40000")
    for step in range(200):
        bid, ask = price - 10, price + 10
        engine.place(ACCOUNT, "BTC", BUY, bid, D("0.001"))
        engine.place(ACCOUNT, "BTC", SELL, ask, D("0.001"))
        price = ask if step % 2 else bid
        seen.extend(f.trade_id for f in engine.advance("BTC", 2_000 + step, price))
    assert len(seen) == 200
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_fills_query_by_time_in_time_and_trade_id_order():
    engine = perp_engine()
    for i in range(6):
        engine.place(ACCOUNT, "BTC", BUY, D(39990 - 10 * i), D("0.001"))
    for i in range(6):
        engine.advance("BTC", 10_000 + i * 1_000, D(39990 - 10 * i))
    all_fills = engine.fills(ACCOUNT)
    assert [f.time_ms for f in all_fills] == [10_000 + i * 1_000 for i in range(6)]
    assert [f.time_ms for f in engine.fills(ACCOUNT, since_ms=12_000, until_ms=14_000)] == [
        12_000, 13_000, 14_000]
    assert len(engine.fills(ACCOUNT, since_ms=11_000, limit=2)) == 2
    assert engine.fills("nobody") == []


def test_history_limit_keeps_open_orders_and_recent_fills():
    engine = perp_engine(collateral=D("1000000"), history_limit=10)
    resting = engine.place(ACCOUNT, "BTC", BUY, D("30000"), D("0.001"), client_id="keep")
    for i in range(40):
        engine.place(ACCOUNT, "BTC", BUY, D("40100"), D("0.001"), client_id=f"t{i}", tif="Gtc")
    assert 10 <= len(engine.fills(ACCOUNT)) <= 13
    assert engine.fills(ACCOUNT)[-1].client_id == "t39"
    assert engine.order_status(ACCOUNT, oid=resting.oid).status is OrderState.OPEN
    assert engine.place(ACCOUNT, "BTC", BUY, D("30000"), D("0.001"), client_id="t0").reason \
        is RejectReason.DUPLICATE_CLIENT_ID


# -- time, persistence, speed -----------------------------------------------------------------------
def test_time_comes_from_the_given_clock_not_the_wall():
    now = [123_456]
    engine = MatchingEngine(clock=lambda: now[0])
    engine.add_market(hl_btc(), "perp")
    engine.fund(ACCOUNT, "USDC", D("1000"))
    engine.advance("BTC", 1, D("40000"))
    out = engine.place(ACCOUNT, "BTC", BUY, D("40100"), D("0.001"), tif="Gtc")
    assert out.fills[0].time_ms == 123_456
    assert engine.order_status(ACCOUNT, oid=out.oid).created_ms == 123_456


def test_state_round_trip_continues_without_duplicate_trade_ids(tmp_path):
    engine = perp_engine(partial_fills=True, seed=3)
    spot = binance_btc()
    engine.add_market(spot, "spot")
    engine.fund(ACCOUNT, "USDT", D("500"))
    engine.advance("BTCUSDT", 1_000, D("40000"))
    engine.place(ACCOUNT, "BTCUSDT", BUY, D("39000"), D("0.001"), client_id="spot-b")
    engine.place(ACCOUNT, "BTC", BUY, D("39990"), D("0.002"), client_id="b1")
    engine.place(ACCOUNT, "BTC", BUY, D("39900"), D("0.002"), client_id="b2")
    engine.place(ACCOUNT, "BTC", BUY, D("41000"), D("0.002"), client_id="x")  # rejected: crosses
    first = engine.advance("BTC", 2_000, D("39950"))
    path = tmp_path / "venue.json"
    engine.save(path)
    assert sorted(os.listdir(tmp_path)) == ["venue.json"]
    restored = MatchingEngine.load(path)
    assert restored.to_state() == engine.to_state()
    assert restored.order_status(ACCOUNT, client_id="x").status is OrderState.REJECTED
    assert restored.balances(ACCOUNT) == engine.balances(ACCOUNT)
    assert restored.place(ACCOUNT, "BTC", BUY, D("39000"), D("0.002"), client_id="b1").reason \
        is RejectReason.DUPLICATE_CLIENT_ID
    later = restored.advance("BTC", 3_000, D("39800"))
    expected = engine.advance("BTC", 3_000, D("39800"))
    assert [(f.trade_id, f.size) for f in later] == [(f.trade_id, f.size) for f in expected]
    assert min(f.trade_id for f in later) > max(f.trade_id for f in first)
    assert restored.position(ACCOUNT, "BTC").size == D("0.004")
    assert [o.client_id for o in restored.open_orders(ACCOUNT)] == ["spot-b"]


def test_load_refuses_a_foreign_state():
    with pytest.raises(ValueError, match="not a matching engine state"):
        MatchingEngine.from_state({"format": "something else"})


def test_advance_is_cheap_with_forty_resting_orders():
    engine = perp_engine(collateral=D("1000000"))
    for i in range(20):
        engine.place(ACCOUNT, "BTC", BUY, D(39000 - 10 * i), D("0.001"))
        engine.place(ACCOUNT, "BTC", SELL, D(41000 + 10 * i), D("0.001"))
    moves = [D("40000"), D("40010.5"), D("39990"), D("40005")] * 45_000
    started = time.perf_counter()
    for t, price in enumerate(moves):
        engine.advance("BTC", t, price)
    assert time.perf_counter() - started < 2.0
    assert engine.fills(ACCOUNT) == [] and len(engine.open_orders(ACCOUNT)) == 40
