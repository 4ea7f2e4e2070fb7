"""The unmodified hyperliquid-python-sdk against the local Hyperliquid exchange, run in its own process:
orders, cancels, order status, fill paging, the WebSocket streams, signatures, the dead man's switch,
persistence across SIGKILL, and the injected faults the bot must survive."""
from __future__ import annotations

import json
import queue
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action
from hyperliquid.utils.types import Cloid

from tests.helpers import wait_until
from tests.hl_sim import start_hl_sim

pytestmark = pytest.mark.timeout(60)
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "hyperliquid"
MISSING = "Order was never placed, already canceled, or filled."


def order(coin, is_buy, sz, px, tif="Gtc", cloid=None, reduce_only=False) -> dict:
    out = {"coin": coin, "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": tif}},
           "reduce_only": reduce_only}
    if cloid is not None:
        out["cloid"] = cloid
    return out


def statuses(response) -> list:
    assert response["status"] == "ok", response
    return response["response"]["data"]["statuses"]


def next_message(messages: queue.Queue, predicate, deadline_s=10.0) -> dict:
    """The first queued WS message that satisfies predicate (others are skipped)."""
    end = time.monotonic() + deadline_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching WebSocket message before the deadline")
        try:
            msg = messages.get(timeout=left)
        except queue.Empty:
            continue
        if predicate(msg):
            return msg


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One paused server for the tests that do not need a fresh venue; BTC at 47000."""
    with start_hl_sim(tmp_path_factory.mktemp("hl")) as server:
        server.control("pause")
        server.control("set_price", coin="BTC", px="47000")
        yield server


@pytest.fixture
def wallet(sim):
    account = Account.create()
    sim.control("fund", user=account.address, usdc="10000")
    return account


def test_bulk_orders_rest_fill_and_reject_with_cloids(sim, wallet):
    ex = Exchange(wallet, sim.url)
    info = Info(sim.url, skip_ws=True)
    c1, c2, c3 = Cloid.from_int(101), Cloid.from_int(102), Cloid.from_int(103)
    result = statuses(ex.bulk_orders([
        order("BTC", True, 0.001, 46000, "Alo", c1),        # rests below the mid
        order("BTC", True, 0.001, 48000, "Gtc", c2),        # crosses: fills at the mid
        order("BTC", True, 0.0001, 46000, "Gtc", c3),       # $4.60 < $10
    ]))
    assert result[0] == {"resting": {"oid": result[0]["resting"]["oid"], "cloid": c1.to_raw()}}
    assert result[1]["filled"]["totalSz"] == "0.001" and result[1]["filled"]["avgPx"] == "47000.0"
    assert result[1]["filled"]["cloid"] == c2.to_raw()
    assert result[2]["error"].startswith("Order must have minimum value of $10.")

    resting_oid = result[0]["resting"]["oid"]
    by_oid = info.query_order_by_oid(wallet.address, resting_oid)
    assert by_oid["status"] == "order" and by_oid["order"]["status"] == "open"
    assert by_oid["order"]["order"]["cloid"] == c1.to_raw() and by_oid["order"]["order"]["limitPx"] == "46000.0"
    by_cloid = info.query_order_by_cloid(wallet.address, c2)
    assert by_cloid["order"]["status"] == "filled" and by_cloid["order"]["order"]["oid"] == result[1]["filled"]["oid"]
    assert info.query_order_by_cloid(wallet.address, c3) == {"status": "unknownOid"}
    assert info.query_order_by_oid(wallet.address, 987654321) == {"status": "unknownOid"}

    position = info.user_state(wallet.address)["assetPositions"][0]["position"]
    assert (position["coin"], position["szi"], position["entryPx"]) == ("BTC", "0.001", "47000.0")
    fills = info.user_fills(wallet.address)
    assert [(f["cloid"], f["side"], f["dir"], f["crossed"]) for f in fills] == [(c2.to_raw(), "B", "Open Long", True)]


def test_tick_invalid_prices_get_the_real_text(sim, wallet):
    ex = Exchange(wallet, sim.url)
    result = statuses(ex.bulk_orders([order("BTC", True, 0.001, 46000.55), order("BTC", True, 0.001, 46000.5),
                                      order("BTC", True, 0.001, 46001)]))
    assert result[0]["error"].startswith("Price must be divisible by tick size.")
    assert result[1]["error"].startswith("Price must be divisible by tick size.")   # 6 significant figures
    assert "resting" in result[2]


def test_cancel_by_oid_and_by_cloid(sim, wallet):
    ex = Exchange(wallet, sim.url)
    info = Info(sim.url, skip_ws=True)
    c1, c2 = Cloid.from_int(201), Cloid.from_int(202)
    placed = statuses(ex.bulk_orders([order("BTC", True, 0.001, 45000, "Alo", c1),
                                      order("BTC", False, 0.001, 49000, "Alo", c2)]))
    oid = placed[0]["resting"]["oid"]
    assert statuses(ex.cancel("BTC", oid)) == ["success"]
    assert statuses(ex.cancel_by_cloid("BTC", c2)) == ["success"]
    assert info.frontend_open_orders(wallet.address) == []
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "canceled"
    assert info.query_order_by_cloid(wallet.address, c2)["order"]["status"] == "canceled"
    again = statuses(ex.cancel("BTC", oid))
    assert again[0]["error"].startswith(MISSING)


def test_bad_signatures_are_refused_as_unknown_users(sim, wallet):
    stranger = Account.create()
    answer = Exchange(stranger, sim.url).order("BTC", True, 0.001, 46000, {"limit": {"tif": "Alo"}})
    assert answer == {"status": "err", "response": f"User or API Wallet {stranger.address.lower()} does not exist."}

    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "46000", "s": "0.001", "r": False,
                                           "t": {"limit": {"tif": "Alo"}}}], "grouping": "na"}
    nonce = get_timestamp_ms()
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    action["orders"][0]["s"] = "0.01"                       # tampered after signing
    body = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None, "expiresAfter": None}
    answer = requests.post(sim.url + "/exchange", json=body, timeout=10).json()
    assert answer["status"] == "err"
    assert answer["response"].startswith("User or API Wallet 0x") and answer["response"].endswith("does not exist.")
    assert wallet.address.lower() not in answer["response"]
    assert Info(sim.url, skip_ws=True).frontend_open_orders(wallet.address) == []


def test_schedule_cancel_fires_and_order_status_says_scheduled_cancel(sim, wallet):
    ex = Exchange(wallet, sim.url)
    info = Info(sim.url, skip_ws=True)
    too_early = ex.schedule_cancel(get_timestamp_ms() + 1000)
    assert too_early["status"] == "err"
    placed = statuses(ex.bulk_orders([order("BTC", True, 0.001, 45500, "Alo"), order("ETH", True, 0.01, 3500, "Alo")]))
    assert ex.schedule_cancel(get_timestamp_ms() + 60_000) == {"status": "ok", "response": {"type": "default"}}
    assert sim.control("state")["users"][wallet.address.lower()]["scheduled_cancel"] is not None
    sim.control("fire_scheduled_cancel")
    assert info.frontend_open_orders(wallet.address) == []
    for status in placed:
        answer = info.query_order_by_oid(wallet.address, status["resting"]["oid"])
        assert answer["order"]["status"] == "scheduledCancel"
    user = sim.control("state")["users"][wallet.address.lower()]
    assert user["scheduled_cancel"] is None and user["scheduled_cancel_triggers_today"] == 1


def test_user_fills_stream_snapshot_then_new_fill(sim, wallet):
    ex = Exchange(wallet, sim.url)
    sim.control("set_price", coin="SOL", px="170")
    statuses(ex.order("SOL", True, 1.0, 175.0, {"limit": {"tif": "Gtc"}}))        # one fill before subscribing
    info = Info(sim.url, skip_ws=False)
    messages: queue.Queue = queue.Queue()
    try:
        info.subscribe({"type": "userFills", "user": wallet.address}, messages.put)
        info.subscribe({"type": "orderUpdates", "user": wallet.address}, messages.put)
        snapshot = next_message(messages, lambda m: m["channel"] == "userFills")
        assert snapshot["data"]["isSnapshot"] is True and len(snapshot["data"]["fills"]) == 1
        cloid = Cloid.from_int(301)
        oid = statuses(ex.order("SOL", True, 1.0, 168.0, {"limit": {"tif": "Alo"}}, cloid=cloid))[0]["resting"]["oid"]
        sim.control("set_price", coin="SOL", px="167.5")
        new = next_message(messages, lambda m: m["channel"] == "userFills" and not m["data"].get("isSnapshot"))
        fill = new["data"]["fills"][0]
        assert (fill["oid"], fill["cloid"], fill["px"], fill["sz"], fill["crossed"]) == (oid, cloid.to_raw(), "168.0", "1.0", False)
        assert fill["startPosition"] == "1.0" and fill["dir"] == "Open Long"
        update = next_message(messages, lambda m: m["channel"] == "orderUpdates"
                              and m["data"][0]["order"]["oid"] == oid and m["data"][0]["status"] == "filled")
        assert update["data"][0]["order"]["cloid"] == cloid.to_raw()
    finally:
        info.disconnect_websocket()


def test_drop_ws_closes_the_sdk_socket(sim, wallet):
    info = Info(sim.url, skip_ws=False)
    messages: queue.Queue = queue.Queue()
    try:
        info.subscribe({"type": "allMids"}, messages.put)
        mids = next_message(messages, lambda m: m["channel"] == "allMids")
        assert mids["data"]["mids"]["BTC"]
        wait_until(lambda: sim.control("state")["ws_connections"] >= 1, 10, what="the socket to register")
        sim.control("drop_ws")
        wait_until(lambda: not info.ws_manager.ws.keep_running, 10, what="the SDK to see the close")
        assert sim.control("state")["ws_connections"] == 0
    finally:
        info.disconnect_websocket()


def test_http_429_then_answers_again(sim, wallet):
    info = Info(sim.url, skip_ws=True)
    sim.control("faults", spec="http_429=2")
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            info.all_mids()
        assert caught.value.status_code == 429
    assert info.all_mids()["BTC"] == "47000.0"


def test_exchange_5xx_order_placed_although_the_sdk_raised(sim, wallet):
    ex = Exchange(wallet, sim.url)
    sim.control("faults", spec="exchange_5xx=1")
    cloid = Cloid.from_int(401)
    with pytest.raises(ServerError):
        ex.order("BTC", True, 0.001, 45000, {"limit": {"tif": "Alo"}}, cloid=cloid)
    status = Info(sim.url, skip_ws=True).query_order_by_cloid(wallet.address, cloid)
    assert status["order"]["status"] == "open"
    assert statuses(ex.cancel_by_cloid("BTC", cloid)) == ["success"]


def test_user_fills_by_time_pages_past_the_page_limit(tmp_path):
    account = Account.create()
    with start_hl_sim(tmp_path, "--page-limit", "50", fund=[(account.address, "100000")]) as sim:
        sim.control("pause")
        ex = Exchange(account, sim.url)
        start = get_timestamp_ms()
        for i in range(60):
            is_buy = i % 2 == 0
            statuses(ex.order("ETH", is_buy, 0.01, 4000.0 if is_buy else 3000.0, {"limit": {"tif": "Ioc"}}))
        info = Info(sim.url, skip_ws=True)
        first = info.user_fills_by_time(account.address, start)
        assert len(first) == 50
        assert [f["time"] for f in first] == sorted(f["time"] for f in first)
        seen = {f["tid"]: f for f in first}
        cursor = first[-1]["time"]
        while True:
            page = info.user_fills_by_time(account.address, cursor)
            fresh = [f for f in page if f["tid"] not in seen]
            if not fresh:
                break
            seen.update((f["tid"], f) for f in fresh)
            cursor = page[-1]["time"]
        assert len(seen) == 60
        assert len(info.user_fills(account.address)) == 60
        assert info.user_fills(account.address)[0]["tid"] == max(seen)            # newest first


def test_state_survives_sigkill(tmp_path):
    account = Account.create()
    state = tmp_path / "venue.json"
    sim = start_hl_sim(tmp_path, fund=[(account.address, "10000")], state=state)
    try:
        sim.control("pause")
        ex = Exchange(account, sim.url)
        rest = Cloid.from_int(501)
        statuses(ex.bulk_orders([order("BTC", True, 0.001, 40000, "Alo", rest),
                                 order("BTC", True, 0.001, 60000, "Gtc", Cloid.from_int(502))]))
        info = Info(sim.url, skip_ws=True)
        before_orders, before_fills = info.frontend_open_orders(account.address), info.user_fills(account.address)
        mids = info.all_mids()
    finally:
        sim.kill()
    with start_hl_sim(tmp_path, fund=[(account.address, "10000")], state=state) as again:
        info = Info(again.url, skip_ws=True)
        assert info.frontend_open_orders(account.address) == before_orders
        assert info.user_fills(account.address) == before_fills
        assert info.all_mids()["BTC"] == mids["BTC"]
        assert again.control("state")["paused"] is True
        assert info.user_state(account.address)["marginSummary"]["accountValue"].startswith("99")
        assert statuses(Exchange(account, again.url).cancel_by_cloid("BTC", rest)) == ["success"]
        assert again.stop() == 0                              # SIGTERM: saved and exited cleanly
    with start_hl_sim(tmp_path, state=state) as third:
        assert Info(third.url, skip_ws=True).frontend_open_orders(account.address) == []


def _keys(value) -> set:
    return set(value)


def test_response_shapes_match_the_captured_payloads(sim, wallet):
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    fixture = {p.stem: json.loads(p.read_text()) for p in FIXTURES.glob("*.json")}
    ex = Exchange(wallet, sim.url)
    info = Info(sim.url, skip_ws=True)
    sim.control("set_price", coin="BTC", px="47000")
    before = {level["px"]: level for level in info.l2_snapshot("BTC")["levels"][0]}
    statuses(ex.bulk_orders([order("BTC", True, 0.001, 46990, "Alo", Cloid.from_int(601)),
                             order("BTC", True, 0.001, 48000, "Gtc", Cloid.from_int(602))]))
    meta = info.meta()
    assert _keys(fixture["http_meta_perp_sample"]) <= _keys(meta)
    assert _keys(meta["universe"][0]) == _keys(fixture["http_meta_perp_sample"]["universe"][0])
    assert [(a["name"], a["szDecimals"], a["maxLeverage"]) for a in meta["universe"]][:4] == [
        ("BTC", 5, 40), ("ETH", 4, 25), ("SOL", 2, 20), ("ATOM", 2, 5)]
    state, want = info.user_state(wallet.address), fixture["http_clearinghouse_state"]
    assert _keys(state) == _keys(want)
    assert _keys(state["marginSummary"]) == _keys(want["marginSummary"])
    assert _keys(state["assetPositions"][0]) == _keys(want["assetPositions"][0])
    assert _keys(state["assetPositions"][0]["position"]) == _keys(want["assetPositions"][0]["position"])
    assert _keys(info.frontend_open_orders(wallet.address)[0]) == _keys(fixture["http_frontend_open_orders"][0])
    assert _keys(info.user_fills(wallet.address)[0]) == _keys(fixture["http_user_fills_with_cloid"][0])
    book, want_book = info.l2_snapshot("BTC"), fixture["http_l2_book_btc"]
    assert _keys(book) == _keys(want_book)
    assert _keys(book["levels"][0][0]) == _keys(fixture["ws_book_data"]["levels"][0][0])
    bids, asks = book["levels"]
    assert 0 < len(bids) <= 20 and 0 < len(asks) <= 20
    assert float(bids[0]["px"]) < 47000 < float(asks[0]["px"])
    ours = next(level for level in bids if level["px"] == "46990.0")
    assert ours["n"] == before["46990.0"]["n"] + 1
    assert Decimal(ours["sz"]) == Decimal(before["46990.0"]["sz"]) + Decimal("0.001")
    assert _keys(info.all_mids()) >= {"BTC", "ETH", "SOL", "ATOM"}


def test_fill_push_faults_and_non_user_cancels_on_user_events(sim, wallet):
    ex = Exchange(wallet, sim.url)
    sim.control("set_price", coin="ETH", px="3700")
    info = Info(sim.url, skip_ws=False)
    messages: queue.Queue = queue.Queue()

    def fill_push():
        return next_message(messages, lambda m: m["channel"] == "user" and "fills" in m["data"])

    def rest_and_fill(px: float, through: str, size: float = 0.01) -> int:
        oid = statuses(ex.order("ETH", True, size, px, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
        sim.control("set_price", coin="ETH", px=through)
        return oid

    try:
        info.subscribe({"type": "userEvents", "user": wallet.address}, messages.put)
        wait_until(lambda: sim.control("state")["ws_connections"] >= 1, 10, what="the socket to register")
        sim.control("faults", spec="dup_fills=1")
        oid = rest_and_fill(3690, "3689")
        first, second = fill_push(), fill_push()
        assert first == second and first["data"]["fills"][0]["oid"] == oid

        sim.control("faults", spec="dup_fills=0,reorder_fills=1")
        a = rest_and_fill(3680, "3679")
        b = rest_and_fill(3670, "3669")
        assert [fill_push()["data"]["fills"][0]["oid"] for _ in range(2)] == [b, a]

        sim.control("faults", spec="reorder_fills=0,partial_fills=1")
        c = rest_and_fill(3660, "3659", size=0.05)
        parts = fill_push()["data"]["fills"]
        assert len(parts) >= 2 and {f["oid"] for f in parts} == {c} and len({f["tid"] for f in parts}) == len(parts)
        assert sum(Decimal(f["sz"]) for f in parts) == Decimal("0.05")

        sim.control("faults", spec="partial_fills=0")
        d = statuses(ex.order("ETH", True, 0.01, 3000, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
        assert ex.schedule_cancel(get_timestamp_ms() + 30_000)["status"] == "ok"
        sim.control("fire_scheduled_cancel")
        cancel = next_message(messages, lambda m: m["channel"] == "user" and "nonUserCancel" in m["data"])
        assert cancel["data"]["nonUserCancel"] == [{"coin": "ETH", "oid": d}]
    finally:
        sim.control("faults", spec="clear")
        info.disconnect_websocket()


def test_ws_survives_malformed_messages_and_goes_quiet_under_ws_silence(sim):
    import websocket

    ws = websocket.create_connection("ws" + sim.url[4:] + "/ws", timeout=5)
    try:
        for junk in ("not json", "[1, 2]", '{"method": "subscribe", "subscription": {"type": "nope"}}',
                     '{"method": "dance"}'):
            ws.send(junk)
            assert json.loads(ws.recv())["channel"] == "error"
        ws.send('{"method": "ping"}')
        assert json.loads(ws.recv()) == {"channel": "pong"}
        sim.control("faults", spec="ws_silence=1.5")
        ws.send('{"method": "ping"}')
        ws.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        ws.settimeout(5)

        def pong():
            ws.send('{"method": "ping"}')
            try:
                return json.loads(ws.recv()) == {"channel": "pong"}
            except websocket.WebSocketTimeoutException:
                return False
        ws.settimeout(0.2)
        wait_until(pong, 10, what="pongs after the silence")
    finally:
        sim.control("faults", spec="clear")
        ws.close()


def test_restart_fault_keeps_the_venue_and_drops_sockets(sim, wallet):
    ex = Exchange(wallet, sim.url)
    info = Info(sim.url, skip_ws=False)
    messages: queue.Queue = queue.Queue()
    try:
        info.subscribe({"type": "allMids"}, messages.put)
        next_message(messages, lambda m: m["channel"] == "allMids")
        oid = statuses(ex.order("ATOM", True, 1.0, 30.0, {"limit": {"tif": "Alo"}}))[0]["resting"]["oid"]
        sim.control("restart")
        wait_until(lambda: not info.ws_manager.ws.keep_running, 10, what="the SDK to see the close")
        rest = Info(sim.url, skip_ws=True)
        assert rest.query_order_by_oid(wallet.address, oid)["order"]["status"] == "open"
        assert statuses(ex.cancel("ATOM", oid)) == ["success"]
    finally:
        info.disconnect_websocket()
