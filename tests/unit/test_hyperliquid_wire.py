"""Hyperliquid payload parsers: every captured payload in ../shared/fixtures/hyperliquid parses, and the
numbers that matter (position, fills, orders, rules) come out exact."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from adapters.hyperliquid_wire import (
    WireError,
    parse_all_mids,
    parse_asset_ctxs,
    parse_balances,
    parse_cancel_statuses,
    parse_fill,
    parse_fills,
    parse_funding_history,
    parse_l2_book,
    parse_open_order,
    parse_order_status,
    parse_perp_metas,
    parse_place_statuses,
    parse_position,
    parse_recent_trades,
    parse_spot_balances,
    parse_spot_meta,
    parse_ws_message,
    reject_reason,
    rules_from_meta,
)
from messages.types import OrderState, RejectReason, Side
from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "hyperliquid"
pytestmark = pytest.mark.timeout(30)


def fixture(name: str):
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip("../shared/fixtures is not present")
    return json.loads(path.read_text())


PARSERS = {
    "exchange_error_messages.json": lambda d: [reject_reason(e["message"]) for e in d["errors"]],
    "http_all_perp_metas_non_usdc_collateral.json": parse_perp_metas,
    "http_clearinghouse_state.json": lambda d: (parse_position(d, "BTC"), parse_balances(d)),
    "http_clearinghouse_state_negative_total_raw_usd.json": lambda d: (parse_position(d, "BTC"), parse_balances(d)),
    "http_frontend_open_orders.json": lambda d: [parse_open_order(o) for o in d],
    "http_funding_history.json": parse_funding_history,
    "http_l2_book_btc.json": parse_l2_book,
    "http_l2_book_snapshot.json": parse_l2_book,
    "http_meta_perp_sample.json": lambda d: [rules_from_meta(d, e["name"]) for e in d["universe"]],
    "http_recent_trades_btc.json": parse_recent_trades,
    "http_spot_clearinghouse_state.json": parse_spot_balances,
    "http_spot_meta_non_usdc_collateral.json": parse_spot_meta,
    "http_user_fills_dust_conversion.json": lambda d: [parse_fill(f) for f in d],
    "http_user_fills_with_cloid.json": lambda d: [parse_fill(f) for f in d],
    "ws_all_dexs_asset_ctxs.json": parse_asset_ctxs,
    "ws_allmids.json": lambda d: parse_ws_message(d, "BTC"),
    "ws_book_data.json": parse_l2_book,
    "ws_user_fill_liquidation.json": lambda d: parse_ws_message(d, "BTC"),
}


def test_every_fixture_file_has_a_parser_and_parses():
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    names = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert set(names) <= set(PARSERS), f"no parser for {set(names) - set(PARSERS)}"
    for name in names:
        assert PARSERS[name](fixture(name)) is not None, name


def test_meta_gives_hyperliquid_rules():
    btc, eth, atom = (rules_from_meta(fixture("http_meta_perp_sample.json"), c) for c in ("BTC", "ETH", "ATOM"))
    assert (btc.lot_size, btc.max_price_decimals, btc.sig_figs, btc.min_notional) == (
        Decimal("0.00001"), 1, 5, Decimal(10))
    assert (eth.lot_size, eth.max_price_decimals) == (Decimal("0.0001"), 2)
    assert (atom.lot_size, atom.max_price_decimals) == (Decimal("0.01"), 4)
    assert btc.round_price(Decimal("98450.55")) in (Decimal("98450"), Decimal("98451"))
    with pytest.raises(WireError, match="DOGE is not listed"):
        rules_from_meta(fixture("http_meta_perp_sample.json"), "DOGE")


def test_clearinghouse_state_gives_signed_position_and_margin():
    state = fixture("http_clearinghouse_state.json")
    position = parse_position(state, "BTC")
    assert (position.size, position.entry_price) == (Decimal("0.1"), Decimal("98450.0"))
    assert parse_position(state, "ETH").size == 0
    [usdc] = parse_balances(state)
    assert (usdc.free, usdc.locked) == (Decimal("8277.125"), Decimal("1969.0"))
    [usdc] = parse_balances(fixture("http_clearinghouse_state_negative_total_raw_usd.json"))
    assert usdc.locked == Decimal("963.798764")


def test_fills_keep_trade_id_cloid_fee_sign_and_taker_flag():
    fills = [parse_fill(f) for f in fixture("http_user_fills_with_cloid.json")]
    assert [f.trade_id for f in fills] == ["1109765720343214", "780373658822388"]
    assert fills[0].client_id == "0x5bdd47600dea461f36c8378cd7b4150c"
    assert fills[0].fee == Decimal("-0.012639") and fills[0].maker
    assert fills[0].side is Side.BUY and fills[0].size == Decimal("0.00535")
    dust = fixture("http_user_fills_dust_conversion.json")
    btc_only, problems = parse_fills(dust, "BTC")
    assert btc_only == [] and problems == []
    assert {f.symbol for f in parse_fills(dust)[0]} >= {"ARB", "JUP", "@156", "@142"}


def test_malformed_fills_are_reported_and_skipped_not_fatal():
    good = fixture("http_user_fills_with_cloid.json")[0]
    bad = [{**good, "px": "NaN"}, {**good, "side": "X"}, {k: v for k, v in good.items() if k != "tid"}, "junk"]
    fills, problems = parse_fills(bad + [good])
    assert [f.trade_id for f in fills] == [str(good["tid"])]
    assert len(problems) == 4


def test_frontend_open_orders_partial_fill_and_trigger():
    orders = [parse_open_order(o) for o in fixture("http_frontend_open_orders.json")]
    assert orders[0].state is OrderState.PARTIALLY_FILLED and orders[0].filled == Decimal("0.05")
    assert orders[0].client_id == "0xaabbccdd00112233aabbccdd00112233"
    assert orders[1].client_id is None and orders[1].reduce_only


def test_order_status_maps_every_outcome():
    order = {"coin": "BTC", "side": "B", "limitPx": "60000.0", "sz": "0.0", "origSz": "0.001", "oid": 7,
             "timestamp": 1, "cloid": "0x" + "ab" * 16}
    def status(s):
        return parse_order_status({"status": "order", "order": {"order": order, "status": s, "statusTimestamp": 2}})
    assert status("filled").state is OrderState.FILLED and status("filled").filled == Decimal("0.001")
    assert status("scheduledCancel").state is OrderState.CANCELLED
    assert status("badAloPxRejected").state is OrderState.REJECTED
    assert parse_order_status({"status": "unknownOid"}) is None
    with pytest.raises(WireError):
        status("teleported")


def test_exchange_answers_per_order_and_error_texts():
    answer = {"status": "ok", "response": {"type": "order", "data": {"statuses": [
        {"resting": {"oid": 11}}, {"filled": {"totalSz": "0.1", "avgPx": "60000", "oid": 12}},
        {"error": "Price must be divisible by tick size. asset=0"}]}}}
    assert parse_place_statuses(answer, 3) == [("resting", "11"), ("filled", "12"),
                                                ("error", "Price must be divisible by tick size. asset=0")]
    with pytest.raises(WireError):
        parse_place_statuses(answer, 2)
    with pytest.raises(WireError):
        parse_place_statuses({"status": "err", "response": "User or API Wallet 0x1 does not exist."}, 1)
    cancels = {"status": "ok", "response": {"type": "cancel", "data": {"statuses": [
        "success", {"error": "Order was never placed, already canceled, or filled. asset=0"}]}}}
    assert parse_cancel_statuses(cancels, 2) == [None, "Order was never placed, already canceled, or filled. asset=0"]
    texts = {e["type"]: e["message"] for e in fixture("exchange_error_messages.json")["errors"]}
    assert reject_reason(texts["Tick"]) is RejectReason.PRICE_TICK
    assert reject_reason(texts["MinTradeNtl"]) is RejectReason.MIN_NOTIONAL
    assert reject_reason(texts["PerpMargin"]) is RejectReason.INSUFFICIENT_FUNDS
    assert reject_reason(texts["BadAloPx"]) is RejectReason.POST_ONLY_WOULD_CROSS
    assert reject_reason(texts["ReduceOnly"]) is RejectReason.REDUCE_ONLY
    assert reject_reason(texts["MissingOrder"]) is RejectReason.UNKNOWN_ORDER


def test_ws_messages_give_fills_and_mids():
    kind, fills, _ = parse_ws_message(fixture("ws_user_fill_liquidation.json"), "BTC")
    assert kind == "fills" and fills[0].trade_id == "745210434703679" and fills[0].side is Side.SELL
    assert parse_ws_message(fixture("ws_allmids.json"), "BTC")[:2] == ("mid", Decimal("80868.5"))
    assert parse_ws_message({"channel": "pong"}, "BTC")[0] == "other"
    snapshot = {"channel": "userFills", "data": {"user": "0x1", "isSnapshot": True,
                                                  "fills": fixture("http_user_fills_with_cloid.json")}}
    assert len(parse_ws_message(snapshot, "BTC")[1]) == 2
    assert parse_all_mids({"BTC": "1"}) == {"BTC": Decimal(1)}
