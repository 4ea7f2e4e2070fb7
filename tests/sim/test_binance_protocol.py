"""The Binance simulator without a process: signatures and timing rules, parameters, rate limits,
faults, the venue's order semantics (filters, balances, stops, OCO, persistence) and the wire shapes
against the captured fixtures."""
from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from messages.types import Side
from sim.binance import protocol as P
from sim.binance.faults import Faults, parse_spec
from sim.binance.limits import Limits
from sim.binance.lists import OcoOrder
from sim.binance.orders import NewOrder
from sim.binance.params import ApiError, Params, check_signed, check_timestamp, parse_params, sign, ws_payload
from sim.binance.venue import BnVenue, VenueSettings
from sim.binance.ws import Hub
from tests.conftest import SHARED

pytestmark = pytest.mark.timeout(30)
FIXTURES = SHARED / "fixtures" / "binance" / "spot"
T0 = 1_700_000_000_000


def fixture(kind: str, name: str):
    path = FIXTURES / kind / name
    if not path.is_file():
        pytest.skip("../shared/fixtures is not present")
    return json.loads(path.read_text())


# -- signatures and timing (the examples of Binance's own documentation) --------------------------------
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"


@pytest.mark.parametrize("query, body, signature", [
    ("", DOC_PARAMS, "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"),
    (DOC_PARAMS, "", "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"),
    ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC", "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
     "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"),
])
def test_hmac_over_total_params_accepts_the_documented_examples(query, body, signature):
    if body:
        body += f"&signature={signature}"
    else:
        query += f"&signature={signature}"
    params = parse_params(query, body)
    assert check_signed("K", {"K": DOC_SECRET}, query, body, params, 1499827319559 + 100) == "K"
    tampered = body.replace("quantity=1", "quantity=2") if "quantity=1" in body else body
    tampered_query = query.replace("quantity=1", "quantity=2")
    with pytest.raises(ApiError) as info:
        check_signed("K", {"K": DOC_SECRET}, tampered_query, tampered, parse_params(tampered_query, tampered),
                     1499827319559 + 100)
    assert (info.value.code, info.value.status) == (-1022, 400)


def test_api_key_checks_come_first():
    params = parse_params(DOC_PARAMS + "&signature=x", "")
    for key, code in ((None, -2014), ("other", -2015)):
        with pytest.raises(ApiError) as info:
            check_signed(key, {"K": DOC_SECRET}, DOC_PARAMS + "&signature=x", "", params, 1499827319559)
        assert (info.value.code, info.value.status) == (code, 401)


@pytest.mark.parametrize("timestamp, window, server, code, text", [
    (T0, None, T0 + 5000, None, None),                       # default recvWindow 5000, inclusive
    (T0, None, T0 + 5001, -1021, "outside of the recvWindow"),
    (T0, 60000, T0 + 59000, None, None),
    (T0, 60001, T0, -1131, "recvWindow must be less than 60000"),
    (T0 + 999, None, T0, None, None),
    (T0 + 1000, None, T0, -1021, "1000ms ahead of the server's time"),
])
def test_timestamp_and_recv_window_rules(timestamp, window, server, code, text):
    values = {"timestamp": str(timestamp), **({"recvWindow": str(window)} if window else {})}
    if code is None:
        check_timestamp(Params(values), server)
        return
    with pytest.raises(ApiError) as info:
        check_timestamp(Params(values), server)
    assert info.value.code == code and text in info.value.msg


def test_parameters_query_wins_duplicates_refused_precision_and_characters_checked():
    params = parse_params("price=2", "price=1&quantity=3")
    assert (params.decimal("price"), params.decimal("quantity")) == (D(2), D(3))
    with pytest.raises(ApiError, match="Duplicate values"):
        parse_params("a=1&a=2", "")
    with pytest.raises(ApiError) as info:
        Params({"price": "1.000000001"}).decimal("price")
    assert (info.value.code, info.value.msg) == (-1111, "Parameter 'price' has too much precision.")
    with pytest.raises(ApiError) as info:
        Params({"price": "1e5"}).decimal("price")
    assert info.value.code == -1100
    with pytest.raises(ApiError) as info:
        Params({}).decimal("quantity", required=True)
    assert info.value.msg == "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
    with pytest.raises(ApiError):
        Params({"newClientOrderId": "has space"}).client_id("newClientOrderId")


def test_ws_api_signature_payload_is_sorted_params_without_signature():
    params = {"timestamp": 5, "apiKey": "K", "signature": "zz"}
    assert ws_payload(params) == "apiKey=K&timestamp=5"
    assert sign("s", "apiKey=K&timestamp=5") == sign("s", ws_payload(dict(reversed(params.items()))))


# -- rate limits and faults -----------------------------------------------------------------------------
def test_weight_limit_429_then_418_for_not_backing_off_and_clear_lifts_the_ban():
    limits = Limits(weight_1m=10)
    now = T0 - T0 % 60_000 + 30_000
    assert limits.admit("ip", 6, now) == 6
    with pytest.raises(ApiError) as info:
        limits.admit("ip", 6, now + 1)
    assert (info.value.status, info.value.code, info.value.headers["Retry-After"]) == (429, -1003, "30")
    with pytest.raises(ApiError) as info:
        limits.admit("ip", 1, now + 2)
    assert info.value.status == 418 and info.value.headers["Retry-After"] == "120"
    limits.clear()
    assert limits.admit("ip", 1, now + 60_000) == 1          # a new minute, no ban


def test_unfilled_order_count_windows_and_first_fill_decrement():
    limits = Limits(orders_10s=2)
    limits.count_order("a", T0)
    limits.count_order("a", T0 + 1)
    with pytest.raises(ApiError) as info:
        limits.check_new_order("a", T0 + 2)
    assert (info.value.status, info.value.code) == (429, -1015) and "Retry-After" not in info.value.headers
    limits.first_fill("a", T0 + 3)
    limits.check_new_order("a", T0 + 3)
    assert limits.order_headers("a", T0 + 3) == {"X-MBX-ORDER-COUNT-10S": "1", "X-MBX-ORDER-COUNT-1D": "1"}
    assert limits.order_headers("b", T0 + 3)["X-MBX-ORDER-COUNT-10S"] == "0"


def test_fault_spec_grammar():
    assert parse_spec("http_429=2, clock_skew_ms=-1500,dup_fills,restart") == [
        ("http_429", 2), ("clock_skew_ms", -1500), ("dup_fills", True), ("restart", True)]
    for bad in ("nope", "drop_ws=1", "http_5xx=x", "clock_skew_ms=1.5", "partial_fills=maybe"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    faults = Faults()
    faults.apply("http_5xx=1,ws_silence=2,clock_skew_ms=10", T0)
    assert faults.take_5xx() and not faults.take_5xx() and faults.silent(T0 + 1999) and faults.clock_skew_ms == 10
    faults.apply("clear", T0)
    assert faults.describe(T0) == Faults().describe(T0)


# -- the venue ----------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def venue():
    v = BnVenue(VenueSettings(), clock=Clock())
    v.add_account("A", "s")
    v.fund("A", "USDT", D("10000"))
    v.fund("A", "BTC", D("1"))
    v.set_price("BTCUSDT", D("47000"))
    v.commit()
    return v


def events(v: BnVenue) -> list[dict]:
    out, v.out = v.out, type(v.out)()
    return [e for _, e in out.events]


def order(symbol="BTCUSDT", side=Side.BUY, kind="LIMIT", qty="0.01", price="46000", stop="0", **kw) -> NewOrder:
    return NewOrder(symbol, side, kind, kw.pop("tif", "GTC"), D(qty), D(price), stop=D(stop), **kw)


def free_locked(v, asset):
    b = v.engine.balances("A")[asset]
    return b.free, b.locked


def test_order_responses_and_events_have_the_fixture_shapes(venue):
    new = venue.place("A", order(client_id="c1"), T0)
    assert list(new) == list(fixture("http_json", "new_order_full_response.json"))
    new_event, position = events(venue)
    assert set(fixture("user_data_json", "execution_report_new.json")) <= set(new_event)
    assert list(position) == list(fixture("user_data_json", "account_position.json"))
    info = venue.infos[new["orderId"]]
    assert list(P.query_order(info, venue.record(info))) == list(fixture("http_json", "order_response.json"))
    cancelled = venue.cancel("A", "BTCUSDT", new["orderId"], None, "undo", T0)
    assert list(cancelled) == list(fixture("http_json", "cancel_order_response.json"))
    report = events(venue)[0]
    assert (report["x"], report["c"], report["C"]) == ("CANCELED", "undo", "c1")
    venue.place("A", order(kind="MARKET", price="0", qty="0.01"), T0)
    trade = events(venue)[1]
    assert set(fixture("user_data_json", "execution_report_trade.json")) <= set(trade)
    [mine] = venue.engine.fills("A")
    assert list(P.trade_wire(mine, -1)) == list(fixture("http_json", "account_trades_response.json")[0])


@pytest.mark.parametrize("kw, error", [
    (dict(price="46000.001"), (-1013, "Filter failure: PRICE_FILTER")),
    (dict(price="2000000"), (-1013, "Filter failure: PRICE_FILTER")),
    (dict(qty="0.000001"), (-1013, "Filter failure: LOT_SIZE")),
    (dict(qty="10000"), (-1013, "Filter failure: LOT_SIZE")),
    (dict(qty="0.0001"), (-1013, "Filter failure: NOTIONAL")),
    (dict(kind="LIMIT_MAKER", price="47000"), (-2010, "Order would immediately match and take.")),
    (dict(qty="0.5"), (-2010, "Account has insufficient balance for requested action.")),
])
def test_refusals_carry_binance_codes_and_texts(venue, kw, error):
    with pytest.raises(ApiError) as info:
        venue.place("A", order(**kw), T0)
    assert (info.value.code, info.value.msg) == error
    assert free_locked(venue, "USDT") == (D(10000), D(0))


def test_duplicate_client_id_only_among_open_orders(venue):
    first = venue.place("A", order(client_id="same"), T0)
    with pytest.raises(ApiError, match="Duplicate order sent"):
        venue.place("A", order(price="45000", client_id="same"), T0)
    venue.cancel("A", "BTCUSDT", first["orderId"], None, None, T0)
    assert venue.place("A", order(price="45000", client_id="same"), T0)["status"] == "NEW"


def test_stop_loss_limit_holds_funds_until_it_triggers(venue):
    with pytest.raises(ApiError, match="Order would trigger immediately"):
        venue.place("A", order(side=Side.SELL, kind="STOP_LOSS_LIMIT", qty="0.1", price="46900", stop="47100"), T0)
    ack = venue.place("A", order(side=Side.SELL, kind="STOP_LOSS_LIMIT", qty="0.1", price="45900", stop="46000"), T0)
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}   # ACK by default
    assert free_locked(venue, "BTC") == (D("0.9"), D("0.1"))
    info = venue.infos[ack["orderId"]]
    assert P.query_order(info, None)["isWorking"] is False
    venue.set_price("BTCUSDT", D("46500"))
    assert venue.status(info) == "NEW"
    venue.set_price("BTCUSDT", D("45950"))              # triggers: a LIMIT sell at 45900 crosses 45950
    assert venue.status(info) == "FILLED" and free_locked(venue, "BTC") == (D("0.9"), D("0"))
    assert free_locked(venue, "USDT")[0] == D("10000") + D("4595") - D("4.595")


def test_buy_oco_holds_the_dearer_leg_and_the_stop_side_expires_the_limit(venue):
    oco = OcoOrder("BTCUSDT", Side.BUY, D("0.1"),
                   NewOrder("BTCUSDT", Side.BUY, "STOP_LOSS_LIMIT", "GTC", None, D("48100"), stop=D("48000")),
                   NewOrder("BTCUSDT", Side.BUY, "LIMIT_MAKER", "GTC", None, D("46000")), "list-1")
    wire = venue.place_oco("A", oco, T0)
    assert list(wire) == list(fixture("http_json", "cancel_open_orders_response.json")[2])
    assert free_locked(venue, "USDT") == (D("10000") - D("4810"), D("4810"))
    status = [e for e in events(venue) if e["e"] == "listStatus"][0]
    assert list(status) == list(fixture("user_data_json", "list_status_wrapped.json")["event"])
    stop_id, maker_id = (r["orderId"] for r in wire["orderReports"])
    venue.set_price("BTCUSDT", D("48050"))
    assert venue.status(venue.infos[maker_id]) == "EXPIRED"
    assert venue.status(venue.infos[stop_id]) == "FILLED"
    assert venue.lists[wire["orderListId"]].done
    assert free_locked(venue, "USDT") == (D("10000") - D("4805"), D("0"))
    assert free_locked(venue, "BTC")[0] == D("1.0999")


def test_cancel_replace_stop_on_failure_leaves_everything_when_the_cancel_fails(venue):
    with pytest.raises(ApiError) as info:
        venue.cancel_replace("A", "STOP_ON_FAILURE", 999, None, None, order(), T0)
    assert (info.value.code, info.value.status) == (-2022, 400)
    assert info.value.data["newOrderResult"] == "NOT_ATTEMPTED"
    with pytest.raises(ApiError) as info:
        venue.cancel_replace("A", "ALLOW_FAILURE", 999, None, None, order(), T0)
    assert (info.value.code, info.value.status, info.value.data["newOrderResult"]) == (-2021, 409, "SUCCESS")


def test_state_round_trip_keeps_orders_stops_lists_and_balances(tmp_path):
    settings = VenueSettings(state=str(tmp_path / "bn.json"))
    v = BnVenue(settings, clock=Clock())
    v.add_account("A", "s")
    v.fund("A", "USDT", D("10000"))
    v.fund("A", "BTC", D("1"))
    v.set_price("BTCUSDT", D("47000"))
    v.place("A", order(client_id="rest"), T0)
    v.place("A", order(side=Side.SELL, kind="STOP_LOSS", qty="0.2", price="0", stop="46000"), T0)
    v.place_oco("A", OcoOrder("BTCUSDT", Side.SELL, D("0.1"),
                              NewOrder("BTCUSDT", Side.SELL, "LIMIT_MAKER", "GTC", None, D("48000")),
                              NewOrder("BTCUSDT", Side.SELL, "STOP_LOSS", "GTC", None, stop=D("45000"))), T0)
    v.commit()
    again = BnVenue(settings, clock=Clock())
    assert again.engine.balances("A") == v.engine.balances("A")
    assert {o: again.status(i) for o, i in again.infos.items()} == {o: v.status(i) for o, i in v.infos.items()}
    assert again.open_lists("A") == v.open_lists("A") and again.secrets == {"A": "s"}
    again.set_price("BTCUSDT", D("45500"))                  # the restored stop still fires
    stop = next(i for i in again.infos.values() if i.type == "STOP_LOSS" and i.list_id == -1)
    assert again.status(stop) == "FILLED"


# -- the WebSocket fault edge ---------------------------------------------------------------------------
class FakeConn:
    def __init__(self):
        self.sent, self.held, self.subs = [], None, {0: "A"}

    def put(self, text):
        self.sent.append(json.loads(text)["event"])


def test_reorder_and_dup_faults_touch_trade_reports_only():
    faults = Faults(reorder_fills=True, dup_fills=True)
    hub = Hub(faults)
    conn = FakeConn()
    batch = [{"e": "executionReport", "x": "NEW"}, {"e": "executionReport", "x": "TRADE", "z": "1"},
             {"e": "executionReport", "x": "TRADE", "z": "2"}, {"e": "outboundAccountPosition"}]
    hub._send_events(conn, 0, batch, T0)
    assert [(e["x"], e.get("z")) for e in conn.sent[:5]] == [
        ("NEW", None), ("TRADE", "2"), ("TRADE", "2"), ("TRADE", "1"), ("TRADE", "1")]
    conn.sent.clear()
    hub._send_events(conn, 0, batch[1:2], T0)             # a lone trade report is held back ...
    assert conn.sent == [] and conn.held is not None
    hub._send_events(conn, 0, batch[2:3], T0)             # ... and sent after the next one
    assert [e["z"] for e in conn.sent] == ["2", "2", "1", "1"]
