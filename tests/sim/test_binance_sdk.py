"""The unmodified python-binance 1.0.37 client against `gridbot exchange-sim binance` in its own process:
every endpoint the bot uses, Binance's errors and headers, balances, the WebSocket API user stream and
the market streams, and the faults a client must survive.

One simulator serves the module (the price paths paused, so prices move only when a test moves them);
each test trades on its own API key so tests do not see each other's orders.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from decimal import Decimal as D

import pytest

binance = pytest.importorskip("binance")
from binance import AsyncClient, BinanceSocketManager  # noqa: E402
from binance.base_client import BaseClient  # noqa: E402
from binance.client import Client  # noqa: E402
from binance.exceptions import BinanceAPIException  # noqa: E402
from binance.ws.reconnecting_websocket import ReconnectingWebsocket  # noqa: E402
from binance.ws.streams import BinanceSocketManager as _Bsm  # noqa: E402

from tests.bn_sim import start_bn_sim  # noqa: E402
from tests.conftest import SHARED  # noqa: E402
from tests.helpers import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(60)
FIXTURES = SHARED / "fixtures" / "binance" / "spot"
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The simulator, python-binance aimed at it. The sockets' read timeout (10 s) is cut to 1 s: closing
    a client waits for its read loop's pending recv() to time out, which would cost 10 s a test."""
    saved = (BaseClient.API_URL, BaseClient.WS_API_URL, _Bsm.STREAM_URL, ReconnectingWebsocket.TIMEOUT)
    with start_bn_sim(tmp_path_factory.mktemp("bn"), "--symbol", "BTCUSDT", "--symbol", "ETHUSDT") as server:
        server.point_python_binance()
        ReconnectingWebsocket.TIMEOUT = 1
        server.control("pause")
        yield server
    BaseClient.API_URL, BaseClient.WS_API_URL, _Bsm.STREAM_URL, ReconnectingWebsocket.TIMEOUT = saved


@pytest.fixture(autouse=True)
def calm(sim):
    """Every test starts at known prices with no faults."""
    sim.control("faults", spec="clear")
    sim.control("set_price", symbol="BTCUSDT", price="47000")
    sim.control("set_price", symbol="ETHUSDT", price="3700")
    yield
    sim.control("faults", spec="clear")


def account(sim, **balances) -> tuple[str, str]:
    """A fresh API key pair funded with `balances` (default 10000 USDT and 1 BTC)."""
    key, secret = f"key{next(_keys)}x{time.time_ns()}", f"secret{time.time_ns()}"
    for asset, amount in (balances or {"USDT": "10000", "BTC": "1"}).items():
        sim.control("fund", account=key, secret=secret, asset=asset, amount=str(amount))
    return key, secret


def client(sim, **balances) -> Client:
    return Client(*account(sim, **balances), ping=False)


def balance(c: Client, asset: str) -> tuple[D, D]:
    row = c.get_asset_balance(asset=asset)
    return D(row["free"]), D(row["locked"])


def api_error(call, *args, **kw) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        call(*args, **kw)
    return info.value


def limit(c: Client, side: str, qty: str, price: str, **kw) -> dict:
    return c.create_order(symbol=kw.pop("symbol", "BTCUSDT"), side=side, type="LIMIT", timeInForce="GTC",
                          quantity=qty, price=price, **kw)


# -- public endpoints ------------------------------------------------------------------------------------
def test_public_market_data_answers_in_binance_shapes(sim):
    c = Client(ping=False)
    assert c.ping() == {}
    assert abs(c.get_server_time()["serverTime"] - time.time() * 1000) < 5000
    info = c.get_exchange_info()
    from adapters.binance_wire import rules_from_exchange_info
    rules = rules_from_exchange_info(info, "BTCUSDT")
    assert (rules.tick_size, rules.lot_size, rules.min_notional, rules.max_orders) == (
        D("0.01"), D("0.00001"), D("5"), 200)
    assert {r["rateLimitType"] for r in info["rateLimits"]} >= {"REQUEST_WEIGHT", "ORDERS"}
    assert c.get_symbol_ticker(symbol="BTCUSDT") == {"symbol": "BTCUSDT", "price": "47000.00000000"}
    book = c.get_orderbook_ticker(symbol="BTCUSDT")
    assert D(book["bidPrice"]) < D("47000") < D(book["askPrice"])
    depth = c.get_order_book(symbol="BTCUSDT", limit=10)
    assert len(depth["bids"]) == len(depth["asks"]) == 10
    assert [D(p) for p, _ in depth["bids"]] == sorted((D(p) for p, _ in depth["bids"]), reverse=True)
    klines = c.get_klines(symbol="BTCUSDT", interval="1m", limit=5)
    assert klines and len(klines[-1]) == 12 and D(klines[-1][4]) == D("47000")
    assert int(c.response.headers["X-MBX-USED-WEIGHT-1M"]) > 0
    error = api_error(c.get_symbol_ticker, symbol="NOPE")
    assert (error.status_code, error.code, error.message) == (400, -1121, "Invalid symbol.")


# -- auth ------------------------------------------------------------------------------------------------
def test_bad_signature_and_unknown_key_are_refused_as_binance_refuses_them(sim):
    key, _secret = account(sim)
    error = api_error(Client(key, "not-the-secret", ping=False).get_account)
    assert (error.status_code, error.code, error.message) == (400, -1022, "Signature for this request is not valid.")
    error = api_error(Client("no-such-key", "whatever", ping=False).get_account)
    assert (error.status_code, error.code) == (401, -2015)
    assert error.message == "Invalid API-key, IP, or permissions for action."


def test_clock_skew_gives_1021_until_the_client_syncs(sim):
    c = client(sim)
    sim.control("faults", spec="clock_skew_ms=30000")
    error = api_error(c.get_account)
    assert (error.status_code, error.code) == (400, -1021)
    assert error.message == "Timestamp for this request is outside of the recvWindow."
    # python-binance never resyncs by itself: the caller sets the offset from /api/v3/time
    c.timestamp_offset = c.get_server_time()["serverTime"] - int(time.time() * 1000)
    assert c.get_account()["accountType"] == "SPOT"
    sim.control("faults", spec="clock_skew_ms=-20000")
    c.timestamp_offset = 0
    assert api_error(c.get_account).message == "Timestamp for this request was 1000ms ahead of the server's time."


# -- rate limits -----------------------------------------------------------------------------------------
def test_429_carries_retry_after_and_hammering_on_gets_418(sim):
    c = Client(ping=False)
    sim.control("faults", spec="http_429=1")
    error = api_error(c.ping)
    assert (error.status_code, error.code) == (429, -1003)
    assert error.response.headers["Retry-After"] == "1"
    error = api_error(c.ping)          # did not wait: banned
    assert (error.status_code, error.code) == (418, -1003)
    assert "IP banned until" in error.message and int(error.response.headers["Retry-After"]) > 1
    sim.control("faults", spec="clear")  # lifts the ban
    assert c.ping() == {}


def test_unfilled_order_count_headers_and_1015(sim):
    c = client(sim)
    sim.control("limits", orders_1d=3)
    try:
        for n in range(1, 4):
            limit(c, "BUY", "0.001", f"{46000 + n}")
            assert c.response.headers["X-MBX-ORDER-COUNT-1D"] == str(n)
        error = api_error(limit, c, "BUY", "0.001", "46000")
        assert (error.status_code, error.code) == (429, -1015)
        assert error.message == "Too many new orders; current limit is 3 orders per 1 DAY."
        assert "Retry-After" not in error.response.headers
    finally:
        sim.control("limits", orders_1d=200000)


def test_delay_ms_holds_every_answer_back(sim):
    c = Client(ping=False)
    sim.control("faults", spec="delay_ms=300")
    started = time.monotonic()
    assert c.ping() == {}
    assert time.monotonic() - started >= 0.3


def test_5xx_means_unknown_execution_status_and_the_order_exists(sim):
    c = client(sim)
    sim.control("faults", spec="http_5xx=1")
    error = api_error(limit, c, "BUY", "0.001", "46000", newClientOrderId="maybe-1")
    assert (error.status_code, error.code) == (503, -1007)
    assert c.get_order(symbol="BTCUSDT", origClientOrderId="maybe-1")["status"] == "NEW"


# -- orders and filters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("qty, price, failure", [
    ("0.001", "46000.005", "PRICE_FILTER"),     # off the 0.01 tick
    ("0.000015", "46000", "LOT_SIZE"),          # off the 0.00001 step
    ("0.0001", "46000", "NOTIONAL"),            # 4.6 USDT < 5
])
def test_each_filter_refuses_with_its_own_1013_text(sim, qty, price, failure):
    c = client(sim)
    error = api_error(limit, c, "BUY", qty, price)
    assert (error.status_code, error.code, error.message) == (400, -1013, f"Filter failure: {failure}")
    assert c.get_open_orders(symbol="BTCUSDT") == []


def test_max_num_orders_filter(sim):
    c = client(sim, USDT="10000", ETH="10")
    sim.control("limits", max_num_orders=2, symbol="ETHUSDT")
    try:
        limit(c, "BUY", "0.01", "3600", symbol="ETHUSDT")
        limit(c, "BUY", "0.01", "3601", symbol="ETHUSDT")
        error = api_error(limit, c, "BUY", "0.01", "3602", symbol="ETHUSDT")
        assert (error.code, error.message) == (-1013, "Filter failure: MAX_NUM_ORDERS")
    finally:
        sim.control("limits", max_num_orders=200, symbol="ETHUSDT")


def test_crossing_limit_maker_and_missing_funds_get_2010(sim):
    c = client(sim, USDT="100")
    error = api_error(c.create_order, symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.001",
                      price="47100")
    assert (error.status_code, error.code, error.message) == (400, -2010, "Order would immediately match and take.")
    error = api_error(limit, c, "BUY", "0.01", "46000")
    assert (error.code, error.message) == (-2010, "Account has insufficient balance for requested action.")


def test_balances_lock_on_place_unlock_on_cancel_and_settle_on_fill(sim):
    c = client(sim, USDT="10000", BTC="1")
    order = limit(c, "BUY", "0.01", "46000", newClientOrderId="grid-buy-1")
    assert order["status"] == "NEW" and order["clientOrderId"] == "grid-buy-1"
    assert balance(c, "USDT") == (D("9540"), D("460"))
    sell = limit(c, "SELL", "0.25", "48000")
    assert balance(c, "BTC") == (D("0.75"), D("0.25"))
    cancelled = c.cancel_order(symbol="BTCUSDT", orderId=sell["orderId"])
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == sell["clientOrderId"]
    assert balance(c, "BTC") == (D("1"), D("0"))
    sim.control("set_price", symbol="BTCUSDT", price="45990")        # the buy fills at its limit, as maker
    filled = c.get_order(symbol="BTCUSDT", origClientOrderId="grid-buy-1")
    assert (filled["status"], filled["executedQty"], filled["cummulativeQuoteQty"]) == (
        "FILLED", "0.01000000", "460.00000000")
    assert balance(c, "USDT") == (D("9540"), D("0"))
    assert balance(c, "BTC") == (D("1.00999"), D("0"))               # 0.01 less the 0.1% commission
    [trade] = c.get_my_trades(symbol="BTCUSDT")
    assert (trade["commission"], trade["commissionAsset"], trade["isMaker"], trade["isBuyer"]) == (
        "0.00001000", "BTC", True, True)


def test_market_and_ioc_orders(sim):
    c = client(sim)
    market = c.order_market_sell(symbol="BTCUSDT", quantity="0.1")
    assert market["status"] == "FILLED" and market["fills"][0]["price"] == "47000.00000000"
    assert market["fills"][0]["commission"] == "4.70000000" and market["fills"][0]["commissionAsset"] == "USDT"
    by_quote = c.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="470")
    assert by_quote["executedQty"] == "0.01000000"
    ioc = c.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01",
                         price="46000")
    assert ioc["status"] == "EXPIRED" and ioc["executedQty"] == "0.00000000"
    assert balance(c, "USDT")[1] == 0


def test_cancel_of_a_filled_or_unknown_order_is_2011_and_query_of_unknown_is_2013(sim):
    c = client(sim)
    filled = c.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    error = api_error(c.cancel_order, symbol="BTCUSDT", orderId=filled["orderId"])
    assert (error.status_code, error.code, error.message) == (400, -2011, "Unknown order sent.")
    assert api_error(c.cancel_order, symbol="BTCUSDT", origClientOrderId="never-sent").code == -2011
    error = api_error(c.get_order, symbol="BTCUSDT", orderId=987654321)
    assert (error.code, error.message) == (-2013, "Order does not exist.")


def test_open_orders_and_cancel_all(sim):
    c = client(sim)
    ids = {limit(c, "BUY", "0.001", f"{46000 + n}")["orderId"] for n in range(3)}
    assert {o["orderId"] for o in c.get_open_orders(symbol="BTCUSDT")} == ids
    assert {o["orderId"] for o in c.get_open_orders()} == ids
    cancelled = c.cancel_all_open_orders(symbol="BTCUSDT")
    assert {o["orderId"] for o in cancelled} == ids and {o["status"] for o in cancelled} == {"CANCELED"}
    assert c.get_open_orders(symbol="BTCUSDT") == []
    assert api_error(c.cancel_all_open_orders, symbol="BTCUSDT").code == -2011
    assert len(c.get_all_orders(symbol="BTCUSDT")) == 3


def test_my_trades_pages_by_from_id(sim):
    c = client(sim)
    for _ in range(5):
        c.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    everything = c.get_my_trades(symbol="BTCUSDT")
    assert len(everything) == 5
    pages, from_id = [], everything[0]["id"]
    while True:
        page = c.get_my_trades(symbol="BTCUSDT", fromId=from_id, limit=2)
        if not page:
            break
        pages.extend(page)
        from_id = page[-1]["id"] + 1
    assert [t["id"] for t in pages] == [t["id"] for t in everything]
    assert api_error(c.get_my_trades, symbol="BTCUSDT", limit=1001).code == -1130
    error = api_error(c.get_my_trades, symbol="BTCUSDT", fromId=1, startTime=1)
    assert error.code == -1128


def test_cancel_replace_success_and_partial_failure(sim):
    c = client(sim)
    old = limit(c, "BUY", "0.001", "46000")
    done = c.cancel_replace_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                  quantity="0.002", price="46100", cancelReplaceMode="STOP_ON_FAILURE",
                                  cancelOrderId=old["orderId"])
    assert (done["cancelResult"], done["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert done["cancelResponse"]["status"] == "CANCELED" and done["newOrderResponse"]["status"] == "NEW"
    error = api_error(c.cancel_replace_order, symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER",
                      quantity="0.001", price="47500", cancelReplaceMode="STOP_ON_FAILURE",
                      cancelOrderId=done["newOrderResponse"]["orderId"])
    assert (error.status_code, error.code) == (409, -2021)
    data = json.loads(error.response.text)["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"] == {"code": -2010, "msg": "Order would immediately match and take."}
    assert c.get_open_orders(symbol="BTCUSDT") == []


def test_oco_created_listed_cancelled_and_triggered(sim):
    c = client(sim, USDT="10000", BTC="1")
    oco = c.create_oco_order(symbol="BTCUSDT", side="SELL", quantity="0.1", aboveType="LIMIT_MAKER",
                             abovePrice="48000", belowType="STOP_LOSS_LIMIT", belowStopPrice="46000",
                             belowPrice="45900", belowTimeInForce="GTC")
    assert (oco["contingencyType"], oco["listOrderStatus"]) == ("OCO", "EXECUTING")
    assert [r["type"] for r in oco["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert balance(c, "BTC") == (D("0.9"), D("0.1"))                 # locked once for both legs
    assert [x["orderListId"] for x in c.get_open_oco_orders()] == [oco["orderListId"]]
    listed = c._get("orderList", True, data={"orderListId": oco["orderListId"]})
    assert [o["orderId"] for o in listed["orders"]] == [r["orderId"] for r in oco["orderReports"]]
    gone = c._delete("orderList", True, data={"symbol": "BTCUSDT", "orderListId": oco["orderListId"]})
    assert gone["listOrderStatus"] == "ALL_DONE" and {r["status"] for r in gone["orderReports"]} == {"CANCELED"}
    assert c.get_open_oco_orders() == [] and balance(c, "BTC") == (D("1"), D("0"))
    # a second one: the price falls through the stop, the stop-limit sells, the take-profit expires
    oco = c.create_oco_order(symbol="BTCUSDT", side="SELL", quantity="0.1", aboveType="LIMIT_MAKER",
                             abovePrice="48000", belowType="STOP_LOSS_LIMIT", belowStopPrice="46000",
                             belowPrice="45900", belowTimeInForce="GTC")
    stop_id, maker_id = (r["orderId"] for r in oco["orderReports"])
    sim.control("set_price", symbol="BTCUSDT", price="45950")
    assert c.get_order(symbol="BTCUSDT", orderId=stop_id)["status"] == "FILLED"
    assert c.get_order(symbol="BTCUSDT", orderId=maker_id)["status"] == "EXPIRED"
    assert balance(c, "BTC") == (D("0.9"), D("0"))
    assert c._get("orderList", True, data={"orderListId": oco["orderListId"]})["listOrderStatus"] == "ALL_DONE"


def test_oco_price_relationship_and_leg_rules(sim):
    c = client(sim)
    error = api_error(c.create_oco_order, symbol="BTCUSDT", side="SELL", quantity="0.1", aboveType="LIMIT_MAKER",
                      abovePrice="46500", belowType="STOP_LOSS", belowStopPrice="46000")
    assert (error.code, error.message) == (-2010, "The relationship of the prices for the orders is not correct.")
    error = api_error(c.create_oco_order, symbol="BTCUSDT", side="SELL", quantity="0.1", aboveType="STOP_LOSS",
                      aboveStopPrice="48000", belowType="LIMIT_MAKER", belowPrice="46000")
    assert error.code == -1166


# -- WebSocket API user stream ---------------------------------------------------------------------------
def _fixture_keys(name: str) -> set[str]:
    path = FIXTURES / "user_data_json" / name
    if not path.is_file():
        pytest.skip("../shared/fixtures is not present")
    return set(json.loads(path.read_text())["event"])


async def _events(socket, count: int) -> list[dict]:
    return [await asyncio.wait_for(socket.recv(), 10) for _ in range(count)]


def test_user_data_events_arrive_over_the_ws_api_for_a_fill(sim):
    key, secret = account(sim)

    async def main():
        c = await AsyncClient.create(key, secret)
        try:
            async with BinanceSocketManager(c).user_socket() as socket:
                assert sim.control("state")["subscriptions"] == 1
                order = await c.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                             quantity="0.01", price="46000", newClientOrderId="ws-1")
                new, position = await _events(socket, 2)
                await asyncio.to_thread(sim.control, "set_price", symbol="BTCUSDT", price="45999")
                trade, after = await _events(socket, 2)
                await asyncio.to_thread(sim.control, "fund", account=key, asset="USDT", amount="5")
                deposit, _ = await _events(socket, 2)
                return order, new, position, trade, after, deposit
        finally:
            await c.close_connection()

    order, new, position, trade, after, deposit = asyncio.run(main())
    assert _fixture_keys("execution_report_wrapped.json") <= set(new)
    assert (new["e"], new["x"], new["X"], new["c"], new["i"]) == ("executionReport", "NEW", "NEW", "ws-1",
                                                                  order["orderId"])
    assert _fixture_keys("account_position_wrapped.json") <= set(position)
    assert {b["a"]: (b["f"], b["l"]) for b in position["B"]}["USDT"] == ("9540.00000000", "460.00000000")
    assert (trade["x"], trade["X"], trade["l"], trade["L"], trade["m"]) == (
        "TRADE", "FILLED", "0.01000000", "46000.00000000", True)
    assert (trade["n"], trade["N"]) == ("0.00001000", "BTC") and trade["t"] > 0
    assert {b["a"]: b["l"] for b in after["B"]}["USDT"] == "0.00000000"
    assert _fixture_keys("balance_update_wrapped.json") <= set(deposit)
    assert (deposit["e"], deposit["a"], deposit["d"]) == ("balanceUpdate", "USDT", "5.00000000")


def test_oco_pushes_list_status_and_partial_dup_fills_push_cumulative_reports(sim):
    key, secret = account(sim)
    sim.control("faults", spec="partial_fills,dup_fills")

    async def main():
        c = await AsyncClient.create(key, secret)
        try:
            async with BinanceSocketManager(c).user_socket() as socket:
                await c.create_oco_order(symbol="BTCUSDT", side="SELL", quantity="0.1", aboveType="LIMIT_MAKER",
                                         abovePrice="48000", belowType="STOP_LOSS", belowStopPrice="46000")
                oco = await _events(socket, 4)        # NEW, NEW, listStatus, account position
                await c.order_market_buy(symbol="BTCUSDT", quantity="0.01")
                events = [await asyncio.wait_for(socket.recv(), 10)]
                while events[-1]["e"] != "outboundAccountPosition":
                    events.append(await asyncio.wait_for(socket.recv(), 10))
                return oco, events
        finally:
            await c.close_connection()

    oco, events = asyncio.run(main())
    status = next(e for e in oco if e["e"] == "listStatus")
    assert _fixture_keys("list_status_wrapped.json") <= set(status)
    assert (status["c"], status["l"], status["L"], len(status["O"])) == ("OCO", "EXEC_STARTED", "EXECUTING", 2)
    trades = [e for e in events if e.get("x") == "TRADE"]
    assert len(trades) >= 4 and trades[0] == trades[1]                     # each pushed twice
    unique = [t for i, t in enumerate(trades) if i == 0 or t != trades[i - 1]]
    assert len(unique) >= 2 and sum(D(t["l"]) for t in unique) == D("0.01")
    assert [D(t["z"]) for t in unique] == sorted(D(t["z"]) for t in unique)
    assert [t["X"] for t in unique] == ["PARTIALLY_FILLED"] * (len(unique) - 1) + ["FILLED"]


def test_user_stream_unsubscribe_silences_events_while_pings_still_work(sim):
    key, secret = account(sim)

    async def main():
        c = await AsyncClient.create(key, secret)
        try:
            async with BinanceSocketManager(c).user_socket() as socket:
                await c.order_market_buy(symbol="BTCUSDT", quantity="0.001")
                before = await _events(socket, 3)
                await asyncio.to_thread(sim.control, "user_stream_unsubscribe")
                await c.order_market_buy(symbol="BTCUSDT", quantity="0.001")
                # the server pushed any event for that order before answering it, and a WebSocket
                # delivers in order: once the ping's answer is in, nothing is still on its way
                pong = await c.ws_ping()
                silent = socket._queue.empty()
                state = await asyncio.to_thread(sim.control, "state")
                # what an adapter can ask to notice it: the session's live subscriptions
                subscriptions = await c._ws_api_request("session.subscriptions", False, {})
                return before, pong, silent, state, subscriptions
        finally:
            await c.close_connection()

    before, pong, silent, state, subscriptions = asyncio.run(main())
    assert [e["e"] for e in before] == ["executionReport", "executionReport", "outboundAccountPosition"]
    assert pong == {} and silent
    assert (state["ws_connections"], state["subscriptions"]) == (1, 0)
    assert subscriptions == []


def test_after_drop_ws_the_library_reconnects_but_does_not_resubscribe(sim):
    key, secret = account(sim)

    async def main():
        c = await AsyncClient.create(key, secret)
        try:
            async with BinanceSocketManager(c).user_socket() as socket:
                await asyncio.to_thread(sim.control, "drop_ws")
                error = await asyncio.wait_for(socket.recv(), 10)
                state = await asyncio.to_thread(
                    wait_until, lambda: (lambda s: s if s["ws_connections"] == 1 else None)(sim.control("state")),
                    10, "python-binance to reconnect its WebSocket API connection")
                return error, state, await c.ws_get_time()
        finally:
            await c.close_connection()

    error, state, server_time = asyncio.run(main())
    assert error["e"] == "error"
    assert state["subscriptions"] == 0 and "serverTime" in server_time


def test_ws_silence_leaves_requests_unanswered_until_it_ends(sim):
    from binance.exceptions import BinanceWebsocketUnableToConnect

    async def main():
        c = await AsyncClient.create()
        try:
            assert await c.ws_ping() == {}
            await asyncio.to_thread(sim.control, "faults", spec="ws_silence=30")
            with pytest.raises(BinanceWebsocketUnableToConnect, match="timed out"):
                await c.ws_ping()
            await asyncio.to_thread(sim.control, "faults", spec="clear")
            return await c.ws_get_time()
        finally:
            await c.close_connection()

    assert "serverTime" in asyncio.run(main())


def test_market_streams_trade_and_combined_book_ticker(sim):
    async def main():
        c = await AsyncClient.create()
        try:
            manager = BinanceSocketManager(c)
            async with manager.trade_socket("BTCUSDT") as trades:
                await asyncio.to_thread(sim.control, "set_price", symbol="BTCUSDT", price="47010")
                trade = await asyncio.wait_for(trades.recv(), 10)
            async with manager.multiplex_socket(["ethusdt@bookTicker", "ethusdt@depth5"]) as combined:
                await asyncio.to_thread(sim.control, "set_price", symbol="ETHUSDT", price="3701")
                first = await asyncio.wait_for(combined.recv(), 10)
            return trade, first
        finally:
            await c.close_connection()

    trade, first = asyncio.run(main())
    assert (trade["e"], trade["s"], trade["p"]) == ("trade", "BTCUSDT", "47010.00000000")
    assert first["stream"] in ("ethusdt@bookTicker", "ethusdt@depth5")
    data = first["data"]
    if first["stream"] == "ethusdt@bookTicker":
        assert data["s"] == "ETHUSDT" and D(data["b"]) < D("3701") < D(data["a"])
    else:
        assert len(data["bids"]) == 5
