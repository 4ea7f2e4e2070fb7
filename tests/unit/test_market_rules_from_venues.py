"""Market rules built from the venues' own metadata (Hyperliquid meta, Binance exchangeInfo) refuse
exactly what those exchanges refuse (B-2.4), before anything is sent."""
from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from adapters.binance_wire import BinanceWireError, rules_from_exchange_info
from adapters.hyperliquid_wire import rules_from_meta
from messages.types import RejectReason as R
from tests.conftest import SHARED

pytestmark = pytest.mark.timeout(30)
D = Decimal
HL_META = SHARED / "fixtures" / "hyperliquid" / "http_meta_perp_sample.json"
BN_INFO = SHARED / "fixtures" / "binance" / "spot" / "http_json" / "exchange_info_response.json"


def load(path):
    if not path.is_file():
        pytest.skip("../shared/fixtures is not present")
    return json.loads(path.read_text())


def with_filters(info: dict, filters: list) -> dict:
    """The fixture's symbol with the documented filter shapes added (the capture lists none)."""
    info = copy.deepcopy(info)
    info["symbols"][0]["filters"] = filters
    return info


BTC_FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.00001000", "maxPrice": "922327.00000000", "tickSize": "0.00001000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "100000.00000000", "stepSize": "0.00010000"},
    {"filterType": "NOTIONAL", "minNotional": "0.00010000", "applyMinToMarket": True, "maxNotional": "9000000.00000000",
     "applyMaxToMarket": False, "avgPriceMins": 5},
    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
]


@pytest.mark.parametrize("coin, price, size, reason", [
    ("BTC", "60000", "0.001", None),
    ("BTC", "6000.5", "0.002", None),                # 5 significant figures, 1 decimal
    ("BTC", "60000.5", "0.001", R.PRICE_TICK),       # 6 significant figures
    ("BTC", "123456", "0.001", None),                # integers are always valid
    ("BTC", "60000", "0.000123", R.SIZE_LOT),        # szDecimals 5
    ("BTC", "60000", "0.0001", R.MIN_NOTIONAL),      # $6 < $10
    ("ETH", "300.12", "0.1", None),                  # 6 - 4 = 2 decimals
    ("ETH", "3000.12", "0.01", R.PRICE_TICK),        # 6 significant figures
    ("ETH", "30.123", "1", R.PRICE_TICK),            # 5 significant figures but 3 decimals
    ("ATOM", "9.8765", "2", None),                   # 6 - 2 = 4 decimals
    ("ATOM", "9.87654", "2", R.PRICE_TICK),
    ("ATOM", "9.8765", "2.001", R.SIZE_LOT),
])
def test_b24_hyperliquid_meta_rules_refuse_what_hyperliquid_refuses(coin, price, size, reason):
    rules = rules_from_meta(load(HL_META), coin)
    assert rules.check(D(price), D(size)) is reason


@pytest.mark.parametrize("price, size, open_orders, reason", [
    ("0.05123", "0.0100", 0, None),
    ("0.051235", "0.0100", 0, R.PRICE_TICK),          # PRICE_FILTER tickSize
    ("0.000001", "0.0100", 0, R.PRICE_RANGE),         # below minPrice
    ("922328", "0.0100", 0, R.PRICE_RANGE),           # above maxPrice
    ("0.05123", "0.01005", 0, R.SIZE_LOT),            # LOT_SIZE stepSize
    ("0.05123", "0.00005", 0, R.SIZE_RANGE),          # below minQty
    ("0.05123", "200000", 0, R.SIZE_RANGE),           # above maxQty
    ("0.00100", "0.0100", 0, R.MIN_NOTIONAL),         # 0.00001 < NOTIONAL.minNotional
    ("0.05123", "0.0100", 200, R.MAX_ORDERS),         # MAX_NUM_ORDERS
])
def test_b24_binance_exchange_info_rules_refuse_what_binance_refuses(price, size, open_orders, reason):
    rules = rules_from_exchange_info(with_filters(load(BN_INFO), BTC_FILTERS), "ETHBTC")
    assert rules.check(D(price), D(size), open_orders) is reason


def test_b24_binance_legacy_min_notional_is_accepted_too():
    legacy = [f for f in BTC_FILTERS if f["filterType"] != "NOTIONAL"] + [
        {"filterType": "MIN_NOTIONAL", "minNotional": "0.00100000", "applyToMarket": True, "avgPriceMins": 5}]
    rules = rules_from_exchange_info(with_filters(load(BN_INFO), legacy), "ETHBTC")
    assert rules.min_notional == D("0.001") and rules.max_notional is None
    assert rules.check(D("0.05"), D("0.0100")) is R.MIN_NOTIONAL


def test_b24_binance_fixture_without_filters_falls_back_to_precision():
    rules = rules_from_exchange_info(load(BN_INFO), "ETHBTC")
    assert (rules.base_asset, rules.quote_asset) == ("ETH", "BTC")
    assert rules.tick_size == D("0.00000001") and rules.lot_size == D("0.00000001")
    assert rules.check(D("0.051234567"), D("1")) is R.PRICE_TICK
    with pytest.raises(BinanceWireError, match="BTCUSDT is not listed"):
        rules_from_exchange_info(load(BN_INFO), "BTCUSDT")
