"""MarketRules: rounding, validation and price keys as the exchanges apply them (M-6, I7, C-2), and the
deterministic client order id."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from messages.types import MarketRules, RejectReason, Side, canonical, client_order_id

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def hyperliquid(sz_decimals: int, **overrides) -> MarketRules:
    """Hyperliquid perp rules: 5 significant figures, at most 6 - szDecimals decimals, sizes at
    szDecimals decimals, $10 minimum order value."""
    fields = dict(symbol="X", base_asset="X", quote_asset="USDC", lot_size=D(1).scaleb(-sz_decimals),
                  sig_figs=5, max_price_decimals=6 - sz_decimals, min_notional=D("10"))
    fields.update(overrides)
    return MarketRules(**fields)


def binance(**overrides) -> MarketRules:
    fields = dict(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", lot_size=D("0.00001"),
                  tick_size=D("0.01"), min_notional=D("5"), max_orders=200)
    fields.update(overrides)
    return MarketRules(**fields)


HL_BTC = hyperliquid(5)     # BTC: szDecimals 5 -> 1 price decimal
HL_ETH = hyperliquid(4)     # ETH: szDecimals 4 -> 2 price decimals
HL_SZ0 = hyperliquid(0)     # szDecimals 0 -> 6 price decimals


# -- price keys (M-6) -------------------------------------------------------------------------------
@pytest.mark.parametrize("rules", [binance(), HL_BTC], ids=["binance", "hyperliquid"])
@pytest.mark.parametrize("paths, key", [
    ((0.1 + 0.2, D("0.30"), D("0.3"), "0.300", D(0.3), 0.3), "0.3"),
    ((40000.1, D("40000.10"), D("4.00001E+4"), "40000.1", 40000.05 + 0.05), None),
    ((100, D("1E+2"), 100.0, D("100.00"), "100"), "100"),
])
def test_m6_price_key_identical_for_equal_prices_reached_by_different_paths(rules, paths, key):
    keys = {rules.price_key(p) for p in paths}
    assert len(keys) == 1, keys
    (only,) = keys
    if key is not None:
        assert only == key
    assert "E" not in only and "e" not in only


def test_m6_price_keys_differ_for_prices_one_tick_apart():
    rules = binance()
    assert rules.price_key(D("40000.01")) != rules.price_key(D("40000.02"))
    assert rules.price_key(D("40000.01")) == "40000.01"
    assert HL_BTC.price_key(D("1234.5")) != HL_BTC.price_key(D("1234.4"))


@pytest.mark.parametrize("value, text", [
    (D("1E+2"), "100"), (D("100.00"), "100"), (D("0.50"), "0.5"), (D("0"), "0"), (D("0.000"), "0"),
    (D("4.001E+4"), "40010"), (D("1E-7"), "0.0000001"),
])
def test_m6_canonical_is_plain_and_unique(value, text):
    assert canonical(value) == text


# -- Hyperliquid: 5 significant figures, 6 - szDecimals decimals, integers always valid ------------
@pytest.mark.parametrize("rules, price, valid", [
    (HL_SZ0, "1234.5", True),       # the exchange's own examples
    (HL_SZ0, "1234.56", False),     # 6 significant figures
    (HL_SZ0, "0.001234", True),
    (HL_SZ0, "0.0012345", False),   # 7 decimals > 6
    (HL_BTC, "40000", True),
    (HL_BTC, "123456", True),       # integer: always valid, whatever its figures
    (HL_BTC, "40000.5", False),     # 6 significant figures
    (HL_BTC, "1234.5", True),
    (HL_BTC, "1234.56", False),
    (HL_ETH, "123.45", True),
    (HL_ETH, "12.345", False),      # 5 figures but 3 decimals > 2
    (HL_ETH, "0.12", True),
    (HL_ETH, "0.123", False),
])
def test_hyperliquid_price_validity_matches_the_exchange(rules, price, valid):
    assert rules.price_is_valid(D(price)) is valid
    expected = None if valid else RejectReason.PRICE_TICK
    size = rules.round_size(D(100) / D(price) + 1)     # comfortably above the $10 minimum
    assert rules.check(D(price), size) is expected


@pytest.mark.parametrize("rules, price, nearest, down, up", [
    (HL_BTC, "40000.5", "40000", "40000", "40001"),
    (HL_BTC, "40001.5", "40002", "40001", "40002"),
    (HL_BTC, "1234.56", "1234.6", "1234.5", "1234.6"),
    (HL_ETH, "12.345", "12.34", "12.34", "12.35"),
    (HL_SZ0, "0.0012345", "0.001234", "0.001234", "0.001235"),
    (HL_SZ0, "0.00123456", "0.001235", "0.001234", "0.001235"),
])
def test_hyperliquid_rounding_gives_valid_prices_and_passive_rounding_never_crosses(rules, price, nearest,
                                                                                     down, up):
    p = D(price)
    assert rules.round_price(p) == D(nearest)
    assert rules.round_price_passive(p, BUY) == D(down)     # buys round down
    assert rules.round_price_passive(p, SELL) == D(up)      # sells round up
    for rounded in (rules.round_price(p), rules.round_price_passive(p, BUY), rules.round_price_passive(p, SELL)):
        assert rules.price_is_valid(rounded)
        assert rules.check(rounded, rules.round_size(D(100) / rounded + 1)) is None


@pytest.mark.parametrize("rules, price, tick", [
    (HL_BTC, "40000", "1"), (HL_BTC, "1234.5", "0.1"), (HL_BTC, "123456", "1"),
    (HL_ETH, "123.45", "0.01"), (HL_ETH, "12.34", "0.01"), (HL_SZ0, "0.001234", "0.000001"),
])
def test_hyperliquid_tick_at_is_the_step_between_valid_prices(rules, price, tick):
    p, step = D(price), D(tick)
    assert rules.tick_at(p) == step
    assert rules.price_is_valid(p + step)


def test_hyperliquid_size_lot_and_minimum_value():
    assert HL_BTC.check(D("40000"), D("0.001")) is None
    assert HL_BTC.check(D("40000"), D("0.000011")) is RejectReason.SIZE_LOT      # 6 decimals > szDecimals 5
    assert HL_BTC.check(D("40000"), D("0.0002")) is RejectReason.MIN_NOTIONAL   # $8 < $10
    assert HL_BTC.check(D("40000"), D("0.00025")) is None                       # exactly $10
    assert HL_BTC.check(D("40000"), D("0")) is RejectReason.SIZE_RANGE
    assert HL_BTC.check(D("0"), D("1")) is RejectReason.PRICE_RANGE
    assert HL_BTC.check(D("-1"), D("1")) is RejectReason.PRICE_RANGE


# -- Binance filters ---------------------------------------------------------------------------------
def test_binance_tick_rounding_and_lot_floor():
    rules = binance()
    assert rules.round_price(D("40000.005")) == D("40000.00")      # half even
    assert rules.round_price(D("40000.015")) == D("40000.02")
    assert rules.round_price_passive(D("40000.019"), BUY) == D("40000.01")
    assert rules.round_price_passive(D("40000.011"), SELL) == D("40000.02")
    assert rules.round_size(D("0.123456789")) == D("0.12345")      # never more than asked
    assert rules.round_size(D("0.000009")) == D("0")


def test_binance_check_rejects_like_the_exchange_filters():
    rules = binance(min_price=D("0.01"), max_price=D("1000000"), min_size=D("0.00001"), max_size=D("9000"),
                    max_notional=D("9000000"))
    assert rules.check(D("40000.01"), D("0.001")) is None
    assert rules.check(D("40000.011"), D("0.001")) is RejectReason.PRICE_TICK
    assert rules.check(D("2000000"), D("0.001")) is RejectReason.PRICE_RANGE
    assert rules.check(D("40000"), D("0.0000101")) is RejectReason.SIZE_LOT
    assert rules.check(D("40000"), D("9001")) is RejectReason.SIZE_RANGE
    assert rules.check(D("40000"), D("0.0001")) is RejectReason.MIN_NOTIONAL      # 4 < 5
    assert rules.check(D("50000"), D("0.0001")) is None                            # exactly 5
    assert rules.check(D("40000"), D("0.001"), open_orders=199) is None
    assert rules.check(D("40000"), D("0.001"), open_orders=200) is RejectReason.MAX_ORDERS
    assert rules.check(D("999999"), D("9000")) is RejectReason.MAX_NOTIONAL


def test_c2_order_complete_when_remaining_below_one_lot_not_at_a_percentage():
    rules = binance(lot_size=D("0.001"))
    assert not rules.is_complete(D("0.001"))       # one lot left: not done, even at 99.9 %
    assert not rules.is_complete(D("0.005"))
    assert rules.is_complete(D("0.0009"))
    assert rules.is_complete(D("0"))


# -- client order ids ---------------------------------------------------------------------------------
HL_CLOID = re.compile(r"^0x[0-9a-f]{32}$")
BINANCE_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
BASE = ("bot-a", 3, -2, BUY, 7000, 0)


def test_client_order_id_is_deterministic_and_fits_both_exchanges():
    cid = client_order_id(*BASE)
    assert cid == client_order_id(*BASE)
    assert HL_CLOID.match(cid)
    assert BINANCE_ID.match(cid)


@pytest.mark.parametrize("position, value", [
    (0, "bot-b"), (1, 4), (2, 2), (2, -3), (3, SELL), (4, 7001), (5, 1),
])
def test_client_order_id_differs_when_any_input_differs(position, value):
    changed = list(BASE)
    changed[position] = value
    assert client_order_id(*changed) != client_order_id(*BASE)


def test_client_order_ids_over_a_whole_grid_are_distinct_and_well_formed():
    ids = {client_order_id(bot, epoch, level, side, version, attempt)
           for bot in ("a", "b") for epoch in (1, 2) for level in range(-10, 11) for side in (BUY, SELL)
           for version in (0, 1000, 1001) for attempt in (0, 1)}
    assert len(ids) == 2 * 2 * 21 * 2 * 3 * 2
    assert all(HL_CLOID.match(c) and BINANCE_ID.match(c) for c in ids)
