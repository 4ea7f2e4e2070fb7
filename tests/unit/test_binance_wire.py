"""Binance spot payload parsers: every captured payload in ../shared/fixtures/binance/spot parses, the
numbers that matter (fills, fees, balances, order states) come out exact, and a malformed payload is
refused with BinanceWireError (the adapter logs and skips it) instead of anything else."""
from __future__ import annotations

import copy
import json
from decimal import Decimal as D

import pytest

from adapters.binance_wire import (
    BinanceWireError,
    NewOrderResult,
    parse_account,
    parse_avg_price,
    parse_book_ticker,
    parse_book_ticker_mid,
    parse_cancel_open_orders,
    parse_depth,
    parse_execution_report,
    parse_klines,
    parse_my_trade,
    parse_my_trades,
    parse_new_order,
    parse_order,
    parse_order_list,
    parse_orders,
    parse_ping,
    parse_public_trades,
    parse_server_time,
    parse_subscriptions,
    parse_ticker_24hr,
    parse_ticker_price,
    parse_user_event,
    rate_limits,
    reject_reason,
    rules_from_exchange_info,
)
from messages.reports import OrderReport
from messages.types import OrderState, RejectReason, Side
from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "binance" / "spot"
pytestmark = pytest.mark.timeout(30)

# Every REST fixture and the parser the adapter (or a tool) reads it with.
HTTP_PARSERS = {
    "account_response.json": parse_account,
    "account_trades_response.json": lambda d: parse_my_trades(d)[0],
    "all_orders_response.json": parse_orders,
    "avg_price_response.json": parse_avg_price,
    "book_ticker_response.json": parse_book_ticker,
    "cancel_open_orders_response.json": parse_cancel_open_orders,
    "cancel_order_response.json": parse_order,
    "depth_response.json": parse_depth,
    "exchange_info_response.json": lambda d: (rules_from_exchange_info(d, d["symbols"][0]["symbol"]),
                                              rate_limits(d)),
    "klines_response.json": parse_klines,
    "new_order_full_response.json": parse_new_order,
    "open_orders_response.json": parse_orders,
    "order_response.json": parse_order,
    "ping_response.json": parse_ping,
    "server_time_response.json": parse_server_time,
    "ticker_24hr_response.json": parse_ticker_24hr,
    "ticker_price_response.json": parse_ticker_price,
    "trades_response.json": parse_public_trades,
}


def load(kind: str, name: str):
    path = FIXTURES / kind / name
    if not path.is_file():
        pytest.skip("../shared/fixtures is not present")
    return json.loads(path.read_text())


def test_every_fixture_file_has_a_parser():
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    assert {p.name for p in (FIXTURES / "http_json").glob("*.json")} == set(HTTP_PARSERS)
    assert len(list((FIXTURES / "user_data_json").glob("*.json"))) >= 11


@pytest.mark.parametrize("name", sorted(HTTP_PARSERS))
def test_every_http_fixture_parses(name):
    """Each fixture parses to something the adapter can use: a report, a number, or (ping) nothing."""
    parsed = HTTP_PARSERS[name](load("http_json", name))
    if name == "ping_response.json":
        assert parsed is None
    elif isinstance(parsed, (list, tuple)):
        assert parsed and all(item is not None for item in parsed)
    else:
        assert isinstance(parsed, (D, int, OrderReport, NewOrderResult)), type(parsed)


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "user_data_json").glob("*.json"))
                         if FIXTURES.is_dir() else ["execution_report_trade.json"])
def test_every_user_data_fixture_parses_to_a_known_event(name):
    event = parse_user_event(load("user_data_json", name))
    assert event.kind in ("fill", "order", "balances", "balance_update", "list")


# -- the numbers that matter ------------------------------------------------------------------------------
def test_my_trade_is_a_fill_keyed_by_the_venue_trade_id_with_its_fee_asset():
    fill = parse_my_trade(load("http_json", "account_trades_response.json")[0], client_id="0xabc")
    assert (fill.trade_id, fill.symbol, fill.side, fill.price, fill.size) == (
        "28457", "BNBBTC", Side.BUY, D("4.00000100"), D("12.00000000"))
    assert (fill.fee, fill.fee_asset, fill.maker, fill.exchange_order_id, fill.client_id, fill.time_ms) == (
        D("10.10000000"), "BNB", False, "100234", "0xabc", 1499865549590)


def test_my_trades_uses_known_client_ids_and_skips_a_malformed_row():
    rows = load("http_json", "account_trades_response.json")
    bad = dict(rows[0], id="not-an-int")
    fills, problems = parse_my_trades([rows[0], bad], {"100234": "0xfeed"})
    assert [f.client_id for f in fills] == ["0xfeed"] and len(problems) == 1 and "trade.id" in problems[0]


def test_new_order_full_response_carries_its_taker_fills():
    result = parse_new_order(load("http_json", "new_order_full_response.json"))
    assert (result.exchange_order_id, result.client_id, result.state) == ("28", "6gCrw2kRUAF9CvJDGP16IP",
                                                                          OrderState.FILLED)
    assert [f.trade_id for f in result.fills] == ["56", "57", "58", "59", "60"]
    assert sum(f.size for f in result.fills) == result.report.filled == D("10")
    assert all(f.side is Side.SELL and not f.maker and f.fee_asset == "USDT" for f in result.fills)


def test_new_order_ack_and_result():
    ack = parse_new_order({"symbol": "BTCUSDT", "orderId": 7, "orderListId": -1, "clientOrderId": "0x1",
                           "transactTime": 1})
    assert (ack.exchange_order_id, ack.client_id, ack.report, ack.state) == ("7", "0x1", None, OrderState.OPEN)
    result = dict(load("http_json", "new_order_full_response.json"), status="NEW", executedQty="0")
    result.pop("fills")
    assert parse_new_order(result).state is OrderState.OPEN and parse_new_order(result).fills == ()


def test_order_status_cancel_and_partial_states():
    order = parse_order(load("http_json", "order_response.json"))
    assert (order.client_id, order.exchange_order_id, order.state, order.size, order.filled) == (
        "myOrder1", "1", OrderState.OPEN, D("1.0"), D("0.0"))
    partial = parse_order(dict(load("http_json", "order_response.json"), executedQty="0.4"))
    assert partial.state is OrderState.PARTIALLY_FILLED and partial.remaining == D("0.6")
    cancelled = parse_order(load("http_json", "cancel_order_response.json"))
    assert (cancelled.client_id, cancelled.state) == ("myOrder1", OrderState.CANCELLED)   # not the cancel's id
    expired = parse_order(dict(load("http_json", "order_response.json"), status="EXPIRED"))
    assert expired.state is OrderState.CANCELLED


def test_cancel_open_orders_flattens_order_lists_into_their_legs():
    reports = parse_cancel_open_orders(load("http_json", "cancel_open_orders_response.json"))
    assert all(r.state is OrderState.CANCELLED for r in reports)
    stop = next(r for r in reports if r.exchange_order_id == "20")
    assert stop.trigger_price == D("0.378131") and stop.client_id == "CwOOIPHSmYywx6jZX77TdL"


def test_account_balances_and_book_ticker_mid():
    balances = {b.asset: b for b in parse_account(load("http_json", "account_response.json"))}
    assert balances["BTC"].free == D("4723846.89208129") and balances["BTC"].locked == 0
    assert parse_book_ticker_mid(load("http_json", "book_ticker_response.json")) == D("4.00000100")
    assert parse_book_ticker_mid({"u": 1, "s": "BTCUSDT", "b": "100", "B": "1", "a": "102", "A": "1"}) == D(101)
    assert parse_book_ticker_mid({"bidPrice": "0", "askPrice": "5"}) is None


def test_exchange_info_without_filters_falls_back_to_precision():
    rules = rules_from_exchange_info(load("http_json", "exchange_info_response.json"), "ETHBTC")
    assert (rules.base_asset, rules.quote_asset, rules.tick_size, rules.lot_size) == (
        "ETH", "BTC", D("1E-8"), D("1E-8"))


def test_execution_report_trade_is_a_fill_and_new_is_an_order_state():
    fill_event = parse_user_event(load("user_data_json", "execution_report_trade.json"))
    fill = fill_event.payload
    assert fill_event.kind == "fill" and fill_event.order.state is OrderState.FILLED
    assert (fill.trade_id, fill.side, fill.price, fill.size, fill.fee, fill.fee_asset, fill.maker) == (
        "98765432", Side.BUY, D("2500"), D("1"), D("0.001"), "ETH", True)
    assert (fill.client_id, fill.exchange_order_id, fill.time_ms) == ("x-TD67BGP9-T0000000000000", "12345678",
                                                                      1709654401000)
    new = parse_user_event(load("user_data_json", "execution_report_wrapped.json"))
    assert new.kind == "order" and new.payload.state is OrderState.OPEN and new.payload.client_id == (
        "mUvoqJxFIILMdfAW5iGSOW")
    for name in ("execution_report_canceled.json", "execution_report_expired.json"):
        assert parse_user_event(load("user_data_json", name)).payload.state is OrderState.CANCELLED
    stop = parse_user_event(load("user_data_json", "execution_report_stop_loss.json")).payload
    assert stop.trigger_price == D("2450") and stop.price == D("2400")


def test_a_cancel_report_names_the_orders_client_id_not_the_cancels():
    event = dict(load("user_data_json", "execution_report_canceled.json"), c="cancel-7", C="0xorder")
    assert parse_execution_report(event)[0].client_id == "0xorder"


def test_account_position_balance_update_and_list_status():
    balances = parse_user_event(load("user_data_json", "account_position_wrapped.json"))
    assert balances.kind == "balances" and balances.payload[0].asset == "ETH"
    update = parse_user_event(load("user_data_json", "balance_update.json"))
    assert update.payload == ("BTC", D("0.001"), 1709654400000)
    negative = parse_user_event(dict(load("user_data_json", "balance_update.json"), d="-0.5"))
    assert negative.payload[1] == D("-0.5")
    lst = parse_user_event(load("user_data_json", "list_status_wrapped.json")).payload
    assert (lst.list_id, lst.status, lst.done, lst.legs) == (2, "EXECUTING", False, (
        ("17", "AJYsMjErWJesZvqlJCTUgL"), ("18", "bfYPSQdLoqAJeNrOr9adzq")))


def test_python_binance_error_event_and_subscriptions():
    assert parse_user_event({"e": "error", "type": "ConnectionClosedOK", "m": "bye"}).kind == "error"
    assert parse_subscriptions([]) == [] and parse_subscriptions([{"subscriptionId": 0}]) == [0]


@pytest.mark.parametrize("code, text, reason", [
    (-2010, "Order would immediately match and take.", RejectReason.POST_ONLY_WOULD_CROSS),
    (-2010, "Account has insufficient balance for requested action.", RejectReason.INSUFFICIENT_FUNDS),
    (-2010, "Duplicate order sent.", RejectReason.DUPLICATE_CLIENT_ID),
    (-1013, "Filter failure: PRICE_FILTER", RejectReason.PRICE_TICK),
    (-1013, "Filter failure: LOT_SIZE", RejectReason.SIZE_LOT),
    (-1013, "Filter failure: NOTIONAL", RejectReason.MIN_NOTIONAL),
    (-1013, "Filter failure: MIN_NOTIONAL", RejectReason.MIN_NOTIONAL),
    (-1013, "Filter failure: MAX_NUM_ORDERS", RejectReason.MAX_ORDERS),
    (-2010, "Order would trigger immediately.", RejectReason.OTHER),
])
def test_reject_reasons(code, text, reason):
    assert reject_reason(code, text) is reason


# -- malformed payloads ----------------------------------------------------------------------------------
def _broken(kind: str, name: str, path: tuple, value):
    data = copy.deepcopy(load(kind, name))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize("parser, kind, name, path, value", [
    (parse_my_trade, "http_json", "account_trades_response.json", (0, "id"), KeyError),
    (parse_my_trade, "http_json", "account_trades_response.json", (0, "qty"), "lots"),
    (parse_my_trade, "http_json", "account_trades_response.json", (0, "isBuyer"), "yes"),
    (parse_my_trade, "http_json", "account_trades_response.json", (0, "price"), "-1"),
    (parse_order, "http_json", "order_response.json", ("status",), "WEIRD"),
    (parse_order, "http_json", "order_response.json", ("side",), "UP"),
    (parse_order, "http_json", "order_response.json", ("orderId",), "1"),
    (parse_new_order, "http_json", "new_order_full_response.json", ("fills", 0, "tradeId"), None),
    (parse_account, "http_json", "account_response.json", ("balances", 0, "free"), None),
    (parse_account, "http_json", "account_response.json", ("balances",), {}),
    (parse_user_event, "user_data_json", "execution_report_trade.json", ("t",), -1),
    (parse_user_event, "user_data_json", "execution_report_trade.json", ("l",), "NaN"),
    (parse_user_event, "user_data_json", "execution_report_trade.json", ("N",), None),
    (parse_user_event, "user_data_json", "execution_report_trade.json", ("e",), KeyError),
    (parse_user_event, "user_data_json", "execution_report_wrapped.json", ("event", "X"), "MAYBE"),
    (parse_user_event, "user_data_json", "account_position.json", ("B",), "none"),
    (parse_user_event, "user_data_json", "balance_update.json", ("d",), "lots"),
    (parse_user_event, "user_data_json", "list_status_wrapped.json", ("event", "O"), None),
    (parse_order_list, "http_json", "cancel_open_orders_response.json", (2, "listOrderStatus"), "??"),
])
def test_malformed_payloads_raise_binance_wire_error(parser, kind, name, path, value):
    data = _broken(kind, name, path, value)
    if isinstance(path[0], int):
        data = data[path[0]]
    with pytest.raises(BinanceWireError):
        parser(data)


@pytest.mark.parametrize("payload", [None, [], "text", 5, {"e": "executionReport"}])
def test_garbage_user_events_raise_binance_wire_error(payload):
    with pytest.raises(BinanceWireError):
        parse_user_event(payload)


@pytest.mark.parametrize("parser", [parse_account, parse_book_ticker, parse_server_time, parse_depth,
                                    parse_orders, parse_klines, parse_public_trades, parse_ping,
                                    parse_subscriptions, rate_limits])
def test_garbage_rest_answers_raise_binance_wire_error(parser):
    with pytest.raises(BinanceWireError):
        parser("<html>502 Bad Gateway</html>")
