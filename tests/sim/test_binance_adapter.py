"""The Binance adapter (python-binance 1.0.37, unmodified) against `gridbot exchange-sim binance` in its
own process: rules, orders, cancels, statuses, fills paged by trade id, balances, the clock, rate limits,
and the user-data stream, including a subscription the venue ends silently.

One simulator serves the module with its price path paused, so prices move only when a test moves them;
each test trades on its own API key.
"""
from __future__ import annotations

import itertools
import time
from decimal import Decimal as D

import pytest

pytest.importorskip("binance")
from binance.ws.reconnecting_websocket import ReconnectingWebsocket  # noqa: E402

import adapters.binance as bn  # noqa: E402
from adapters.base import RateLimited, Unknown  # noqa: E402
from adapters.binance import BinanceExchange, BinanceSettings  # noqa: E402
from adapters.secrets import Secret  # noqa: E402
from messages.commands import OrderSpec  # noqa: E402
from messages.events import (  # noqa: E402
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    PriceTick,
    StreamDown,
    StreamUp,
)
from messages.types import FillSource, OrderState, RejectReason, Side  # noqa: E402
from tests.bn_sim import start_bn_sim  # noqa: E402
from tests.helpers import wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(60)
_keys = itertools.count(1)
_cids = itertools.count(1)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The simulator. python-binance's socket read timeout (10 s) is cut to 1 s: an old stream generation
    closes in the background, but tests end faster when nothing waits on it."""
    saved = ReconnectingWebsocket.TIMEOUT
    with start_bn_sim(tmp_path_factory.mktemp("bn"), "--symbol", "BTCUSDT") as server:
        ReconnectingWebsocket.TIMEOUT = 1
        server.control("pause")
        yield server
    ReconnectingWebsocket.TIMEOUT = saved


@pytest.fixture(autouse=True)
def calm(sim):
    sim.control("faults", spec="clear")
    sim.control("set_price", symbol="BTCUSDT", price="47000")
    yield
    sim.control("faults", spec="clear")


@pytest.fixture
def exchanges():
    made = []
    yield made
    for ex in made:
        ex.close()


def account(sim, **balances) -> tuple[str, str]:
    key, secret = f"ad{next(_keys)}x{time.time_ns()}", f"s{time.time_ns()}"
    for asset, amount in (balances or {"USDT": "10000", "BTC": "1"}).items():
        sim.control("fund", account=key, secret=secret, asset=asset, amount=str(amount))
    return key, secret


def adapter(sim, exchanges, key_secret=None, **settings) -> BinanceExchange:
    key, secret = key_secret or account(sim)
    options = {"stream_check_s": 0.5, "reconnect_max_s": 1.0, "timeout_s": 5.0, **settings}
    ex = BinanceExchange(BinanceSettings(base_url=sim.url, symbol="BTCUSDT", **options), Secret(key), Secret(secret))
    exchanges.append(ex)
    ex.connect()
    return ex


def spec(side: Side, price: str, size: str = "0.001", post_only: bool = True, **kw) -> OrderSpec:
    return OrderSpec(f"0x{next(_cids):032x}", "BTCUSDT", side, D(price), D(size), post_only=post_only, **kw)


def venue(sim, key: str) -> dict:
    return sim.control("state")["accounts"][key]


def pump_until(ex: BinanceExchange, predicate, deadline_s: float, what: str) -> list:
    """Run the gateway's side of the adapter (pump, drain) until the events seen satisfy `predicate`."""
    seen: list = []

    def check():
        ex.pump(int(time.time() * 1000))
        seen.extend(ex.drain_events())
        return predicate(seen)

    wait_until(check, deadline_s, what, poll_s=0.05)
    return seen


def ws_fills(events) -> list:
    return [f for e in events if isinstance(e, FillsReceived) and e.source is FillSource.WS for f in e.fills]


# -- rules and orders -------------------------------------------------------------------------------------
def test_rules_and_budget_come_from_exchange_info(sim, exchanges):
    ex = adapter(sim, exchanges)
    rules = ex.rules()
    assert (rules.base_asset, rules.quote_asset, rules.tick_size, rules.lot_size, rules.min_notional,
            rules.max_orders) == ("BTC", "USDT", D("0.01"), D("0.00001"), D("5"), 200)
    view = ex.budget.view()
    assert {"X-MBX-USED-WEIGHT-1M", "X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1D"} <= set(view)
    assert int(view["X-MBX-USED-WEIGHT-1M"].split("/")[0]) > 0        # synced from the answer's header


def test_limit_maker_rests_on_the_venue_and_a_crossing_one_is_rejected(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    resting = spec(Side.BUY, "46000")
    [ack] = ex.place([resting])
    assert isinstance(ack, OrderAcked) and ack.state is OrderState.OPEN
    assert venue(sim, key)["open_orders"] == 1
    state = ex.snapshot()
    assert [(o.client_id, o.price, o.size) for o in state.open_orders] == [(resting.client_id, D("46000"), D("0.001"))]
    [crossing] = ex.place([spec(Side.BUY, "47100")])
    assert isinstance(crossing, OrderRejected) and crossing.reason is RejectReason.POST_ONLY_WOULD_CROSS
    [broke] = ex.place([spec(Side.BUY, "46000", size="5")])
    assert isinstance(broke, OrderRejected) and broke.reason is RejectReason.INSUFFICIENT_FUNDS
    [tiny] = ex.place([spec(Side.BUY, "46000", size="0.0001")])
    assert isinstance(tiny, OrderRejected) and tiny.reason is RejectReason.MIN_NOTIONAL
    assert venue(sim, key)["open_orders"] == 1


def test_a_plain_limit_through_the_book_fills_at_once(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    order = spec(Side.BUY, "47100", post_only=False)
    [ack] = ex.place([order])
    assert isinstance(ack, OrderAcked) and ack.state is OrderState.FILLED
    fills = ex.fills_since(0)
    assert [(f.client_id, f.side, f.size, f.maker, f.fee_asset) for f in fills] == [
        (order.client_id, Side.BUY, D("0.001"), False, "BTC")]


def test_cancel_and_cancel_of_a_filled_order_is_ambiguous(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    live, filled = spec(Side.BUY, "46000"), spec(Side.BUY, "46990")
    assert all(isinstance(r, OrderAcked) for r in ex.place([live]) + ex.place([filled]))
    assert ex.cancel([(live.client_id, None)]) == [OrderCancelled(live.client_id)]
    sim.control("set_price", symbol="BTCUSDT", price="46980")
    [failed] = ex.cancel([(filled.client_id, None)])
    assert isinstance(failed, CancelFailed) and failed.ambiguous         # the order book asks its status
    [report] = ex.order_status([filled.client_id])
    assert (report.state, report.filled) == (OrderState.FILLED, D("0.001"))
    assert venue(sim, key)["open_orders"] == 0


def test_status_by_client_id_and_unknown_ids(sim, exchanges):
    ex = adapter(sim, exchanges)
    order = spec(Side.SELL, "48000")
    [ack] = ex.place([order])
    open_report, missing = ex.order_status([order.client_id, "0x" + "f" * 32])
    assert (open_report.client_id, open_report.exchange_order_id, open_report.state, open_report.side) == (
        order.client_id, ack.exchange_order_id, OrderState.OPEN, Side.SELL)
    assert missing is None
    ex.cancel([("", ack.exchange_order_id)])        # by exchange id when no client id is at hand
    assert ex.order_status([order.client_id])[0].state is OrderState.CANCELLED


def test_fills_since_pages_by_trade_id_and_skips_nothing(sim, exchanges, monkeypatch):
    monkeypatch.setattr(bn, "_TRADES_PAGE", 3)          # page through 7 trades 3 at a time
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    started = int(time.time() * 1000) - 1
    orders = [spec(Side.BUY, str(46990 - 10 * i)) for i in range(7)]
    for order in orders:
        assert isinstance(ex.place([order])[0], OrderAcked)
    sim.control("set_price", symbol="BTCUSDT", price="46900")
    fills = ex.fills_since(started)
    assert len(fills) == 7 and len({f.trade_id for f in fills}) == 7
    assert [f.time_ms for f in fills] == sorted(f.time_ms for f in fills)
    assert {f.client_id for f in fills} == {o.client_id for o in orders}     # myTrades lacks them: we knew
    assert all(f.fee_asset == "BTC" and f.maker for f in fills)
    assert venue(sim, key)["trades"] == 7
    # a fresh adapter knows no trade ids yet: it finds the first one by time, then pages by id
    fresh = adapter(sim, exchanges, (key, secret))
    assert [f.trade_id for f in fresh.fills_since(started)] == [f.trade_id for f in fills]
    assert fresh.fills_since(fills[-1].time_ms + 1) == []
    assert [f.trade_id for f in fresh.fills_since(0)] == [f.trade_id for f in fills]


def test_snapshot_balances_equal_the_venue_and_the_position_is_the_base_held(sim, exchanges):
    key, secret = account(sim, USDT="5000", BTC="0.25")
    ex = adapter(sim, exchanges, (key, secret))
    ex.place([spec(Side.SELL, "48000", size="0.05")])
    ex.place([spec(Side.BUY, "46000", size="0.01")])
    state = ex.snapshot(0)
    server = venue(sim, key)["balances"]
    assert {b.asset: (b.free, b.locked) for b in state.balances} == {
        a: (D(v["free"]), D(v["locked"])) for a, v in server.items()}
    assert state.balance("BTC").locked == D("0.05") and state.balance("USDT").locked == D("460")
    assert state.position.size == D("0.25") and state.mid is not None and abs(state.mid - 47000) < 1
    assert len(state.open_orders) == 2 and state.fills == ()


def test_clock_skew_is_resynced_and_the_request_retried(sim, exchanges):
    ex = adapter(sim, exchanges)
    sim.control("faults", spec="clock_skew_ms=30000")
    syncs = ex.clock_syncs
    assert ex.snapshot().rules.symbol == "BTCUSDT"
    assert ex.clock_syncs == syncs + 1
    [ack] = ex.place([spec(Side.BUY, "46000")])
    assert isinstance(ack, OrderAcked)


def test_429_is_rate_limited_with_retry_after(sim, exchanges):
    ex = adapter(sim, exchanges)
    sim.control("faults", spec="http_429=1")
    with pytest.raises(RateLimited) as info:
        ex.snapshot()
    assert info.value.retry_after == 1.0


def test_local_order_budget_refuses_before_the_venue_does(sim, exchanges):
    ex = adapter(sim, exchanges)
    ex.budget.configure([("ORDERS", "SECOND", 10, 2)])
    ex.place([spec(Side.BUY, "46000")])
    ex.place([spec(Side.BUY, "46001")])
    with pytest.raises(RateLimited) as info:
        ex.place([spec(Side.BUY, "46002")])
    assert 0 < info.value.retry_after <= 10


def test_5xx_on_a_write_is_unknown_and_the_order_exists(sim, exchanges):
    ex = adapter(sim, exchanges)
    order = spec(Side.BUY, "46000")
    sim.control("faults", spec="http_5xx=1")
    with pytest.raises(Unknown):
        ex.place([order])
    assert ex.order_status([order.client_id])[0].state is OrderState.OPEN


def test_protective_stop_is_a_stop_loss_that_never_executes_at_once(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    stop = spec(Side.SELL, "45000", size="0.01", post_only=False, reduce_only=True, trigger_price=D("45000"))
    [ack] = ex.place([stop])
    assert isinstance(ack, OrderAcked)
    [report] = ex.order_status([stop.client_id])
    assert (report.state, report.trigger_price) == (OrderState.OPEN, D("45000"))
    now = spec(Side.SELL, "47500", size="0.01", post_only=False, reduce_only=True, trigger_price=D("47500"))
    [refused] = ex.place([now])
    assert isinstance(refused, OrderRejected)
    buy = spec(Side.BUY, "49000", size="0.01", post_only=False, reduce_only=True, trigger_price=D("49000"))
    [refused] = ex.place([buy])
    assert isinstance(refused, OrderRejected) and "short" in refused.message
    assert venue(sim, key)["trades"] == 0


# -- the streams ------------------------------------------------------------------------------------------
def test_user_stream_delivers_a_fill_and_book_ticker_the_price(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    ex.start_stream()
    pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15, "the subscription")
    order = spec(Side.BUY, "46500", size="0.002")
    ex.place([order])
    sim.control("set_price", symbol="BTCUSDT", price="46400")
    events = pump_until(ex, lambda seen: ws_fills(seen), 10, "the fill over the user stream")
    [fill] = ws_fills(events)
    [trade] = ex.fills_since(0)
    assert (fill.trade_id, fill.client_id, fill.price, fill.size, fill.fee, fill.fee_asset, fill.maker) == (
        trade.trade_id, order.client_id, D("46500"), D("0.002"), trade.fee, "BTC", True)
    ticks = pump_until(ex, lambda seen: [e for e in seen if isinstance(e, PriceTick) and abs(e.mid - 46400) < 1],
                       10, "a price tick near 46400")
    assert ticks and not any(isinstance(e, StreamDown) for e in events + ticks)


def test_silently_ended_subscription_is_detected_resubscribed_and_backfilled(sim, exchanges):
    key, secret = account(sim)
    ex = adapter(sim, exchanges, (key, secret))
    ex.start_stream()
    pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15, "the subscription")
    since = int(time.time() * 1000)
    sim.control("user_stream_unsubscribe")
    order = spec(Side.BUY, "46500")
    ex.place([order])
    sim.control("set_price", symbol="BTCUSDT", price="46400")
    events = pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15,
                        "StreamDown, then a new subscription")
    down = [i for i, e in enumerate(events) if isinstance(e, StreamDown)]
    up = [i for i, e in enumerate(events) if isinstance(e, StreamUp)]
    assert down and up and down[0] < up[0]
    assert "session.subscriptions" in events[down[0]].reason
    assert ws_fills(events) == []                       # the stream never delivered it ...
    [fill] = ex.fills_since(since)                      # ... the guarantor's backfill does
    assert fill.client_id == order.client_id and ex.reconnects == 1
    assert sim.control("state")["subscriptions"] >= 1
    # and the new subscription delivers the next fill
    ex.place([spec(Side.BUY, "46300")])
    sim.control("set_price", symbol="BTCUSDT", price="46200")
    assert ws_fills(pump_until(ex, lambda seen: ws_fills(seen), 10, "a fill on the new subscription"))


def test_dropped_connection_is_reported_and_resubscribed(sim, exchanges):
    ex = adapter(sim, exchanges)
    ex.start_stream()
    pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15, "the subscription")
    sim.control("drop_ws")
    events = pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15, "resubscribed")
    assert any(isinstance(e, StreamDown) for e in events) and ex.stream_live


def test_a_silent_venue_is_reported_down_once_and_retried_with_backoff_until_it_answers(sim, exchanges):
    ex = adapter(sim, exchanges, timeout_s=1.0)
    ex.start_stream()
    pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 15, "the subscription")
    sim.control("faults", spec="ws_silence=4")
    events = pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), 20,
                        "resubscribed once the venue answers again")
    assert sum(isinstance(e, StreamDown) for e in events) == 1       # one outage, one StreamDown
    assert ex.reconnects >= 2                                          # attempts failed while it was silent
    assert ex.stream_live
