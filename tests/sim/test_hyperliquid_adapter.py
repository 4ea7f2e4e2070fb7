"""gridbot's Hyperliquid adapter (the SDK underneath) against the local exchange in its own process:
every Exchange-interface call, classified failures, fill paging, stream rebuild and the dead man's
switch, as the gateway sees them."""
from __future__ import annotations

import select
import time
from decimal import Decimal

import pytest
from eth_account import Account

from adapters.base import RateLimited, Rejected, Unknown
from adapters.hyperliquid import HyperliquidExchange, HyperliquidSettings
from adapters.secrets import Secret
from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    PriceTick,
    StreamDown,
    StreamUp,
)
from messages.types import OrderState, RejectReason, Side, client_order_id
from tests.hl_sim import start_hl_sim

pytestmark = pytest.mark.timeout(90)
KEY = "0x" + "7c" * 32
ADDRESS = Account.from_key(KEY).address.lower()


def cid(n: int) -> str:
    return client_order_id("adapter-test", 1, n, Side.BUY, 0)


def spec(n: int, side: Side, price: str, size: str = "0.001", post_only: bool = True) -> OrderSpec:
    return OrderSpec(cid(n), "BTC", side, Decimal(price), Decimal(size), post_only=post_only)


def adapter(url: str, **kw) -> HyperliquidExchange:
    ex = HyperliquidExchange(HyperliquidSettings(base_url=url, symbol="BTC", timeout_s=5.0, **kw), Secret(KEY))
    ex.connect()
    return ex


def pump_until(ex: HyperliquidExchange, predicate, deadline_s: float = 15.0) -> list:
    """Drive the adapter as the gateway does (pump, drain) until the events seen satisfy predicate."""
    seen: list = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        ex.pump(int(time.time() * 1000))
        seen += ex.drain_events()
        if predicate(seen):
            return seen
        # Block until the stream queues an event, at most one pump interval (liveness needs pumps).
        select.select([ex.wakeup_fd], [], [], min(0.1, max(0.0, end - time.monotonic())))
    raise AssertionError(f"events never matched; saw {[type(e).__name__ for e in seen]}")


@pytest.fixture
def sim(tmp_path):
    with start_hl_sim(tmp_path, "--page-limit", "5", fund=[(ADDRESS, "10000")], speed=1) as s:
        s.control("pause")
        s.control("set_price", coin="BTC", px="50000")
        yield s


def test_rules_orders_statuses_and_cancels(sim):
    ex = adapter(sim.url)
    rules = ex.rules()
    assert (rules.lot_size, rules.sig_figs, rules.max_price_decimals, rules.min_notional) == (
        Decimal("0.00001"), 5, 1, Decimal(10))
    results = ex.place([spec(1, Side.BUY, "49900"), spec(2, Side.BUY, "49900.55"),
                        spec(3, Side.BUY, "50100", post_only=False), spec(4, Side.BUY, "49000", "0.0001"),
                        spec(5, Side.BUY, "50100")])
    assert isinstance(results[0], OrderAcked) and results[0].state is OrderState.OPEN
    assert isinstance(results[1], OrderRejected) and results[1].reason is RejectReason.PRICE_TICK
    assert results[1].message.startswith("Price must be divisible by tick size.")
    assert isinstance(results[2], OrderAcked) and results[2].state is OrderState.FILLED
    assert isinstance(results[3], OrderRejected) and results[3].reason is RejectReason.MIN_NOTIONAL
    assert isinstance(results[4], OrderRejected) and results[4].reason is RejectReason.POST_ONLY_WOULD_CROSS

    statuses = ex.order_status([cid(1), cid(3), cid(99)])
    assert statuses[0].state is OrderState.OPEN and statuses[0].exchange_order_id == results[0].exchange_order_id
    assert statuses[1].state is OrderState.FILLED and statuses[1].filled == Decimal("0.001")
    assert statuses[2] is None

    snap = ex.snapshot(fills_since_ms=0)
    assert snap.position.size == Decimal("0.001")
    assert [o.client_id for o in snap.open_orders] == [cid(1)]
    assert [f.client_id for f in snap.fills] == [cid(3)] and snap.mid == Decimal(50000)

    cancelled = ex.cancel([(cid(1), None), (cid(3), None), (None, results[0].exchange_order_id)])
    assert isinstance(cancelled[0], OrderCancelled)
    assert isinstance(cancelled[1], CancelFailed) and cancelled[1].ambiguous       # it filled: ask its status
    assert isinstance(cancelled[2], CancelFailed)                                  # already gone by oid
    assert ex.order_status([cid(1)])[0].state is OrderState.CANCELLED
    ex.close()


def test_fills_since_pages_past_the_page_limit_in_order(sim):
    ex = adapter(sim.url)
    placed = ex.place([spec(10 + i, Side.BUY, str(49990 - 10 * i)) for i in range(12)])
    assert all(isinstance(r, OrderAcked) for r in placed)
    for i in range(12):                 # one level at a time: fills in distinct milliseconds
        sim.control("set_price", coin="BTC", px=str(49985 - 10 * i))
    fills = ex.fills_since(0)
    assert len(fills) == 12 == len({f.trade_id for f in fills})           # the server pages by 5
    assert [f.order_key for f in fills] == sorted(f.order_key for f in fills)
    assert {f.client_id for f in fills} == {cid(10 + i) for i in range(12)}
    ex.close()


def test_stream_reports_fills_and_rebuilds_after_a_drop_and_after_silence(sim):
    ex = adapter(sim.url, stream_stale_s=1.5, reconnect_max_s=0.5)
    ex.start_stream()
    pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen))
    ex.place([spec(30, Side.BUY, "49950")])
    sim.control("set_price", coin="BTC", px="49900")
    pump_until(ex, lambda seen: any(isinstance(e, FillsReceived) and e.fills for e in seen)
               and any(isinstance(e, PriceTick) and e.mid == Decimal(49900) for e in seen))

    sim.control("drop_ws")
    seen = pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen))
    assert isinstance(next(e for e in seen if isinstance(e, (StreamDown, StreamUp))), StreamDown)

    sim.control("faults", spec="ws_silence=3")
    seen = pump_until(ex, lambda seen: any(isinstance(e, StreamUp) for e in seen), deadline_s=20)
    assert any(isinstance(e, StreamDown) and e.reason == "stream silent" for e in seen)
    assert ex.reconnects >= 2
    ex.close()


def test_failures_are_classified_for_the_circuit_breaker(sim):
    ex = adapter(sim.url)
    sim.control("faults", spec="exchange_5xx=1")
    with pytest.raises(Unknown):
        ex.place([spec(40, Side.BUY, "49000")])
    assert ex.order_status([cid(40)])[0].state is OrderState.OPEN      # it did reach the book
    sim.control("faults", spec="http_429=1")
    with pytest.raises(RateLimited) as err:
        ex.snapshot()
    assert err.value.retry_after > 0
    stranger = HyperliquidExchange(HyperliquidSettings(base_url=sim.url, symbol="BTC"), Secret("0x" + "3d" * 32))
    with pytest.raises(Rejected, match="does not exist"):
        stranger.place([spec(41, Side.BUY, "49000")])
    ex.close()
    stranger.close()


def test_dead_mans_switch_is_kept_ahead_and_cleared(sim):
    ex = adapter(sim.url, dead_man_s=6.0, dead_man_refresh_s=3.0)
    ex.keepalive(int(time.time() * 1000))
    armed = sim.control("state")["users"][ADDRESS]["scheduled_cancel"]
    assert armed is not None and 0 < armed - time.time() * 1000 <= 6_000
    ex.keepalive(int(time.time() * 1000))               # far from expiry: no new action
    assert sim.control("state")["users"][ADDRESS]["scheduled_cancel"] == armed
    ex.disarm()
    assert sim.control("state")["users"][ADDRESS]["scheduled_cancel"] is None
    ex.close()
