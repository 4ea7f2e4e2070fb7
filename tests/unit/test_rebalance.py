"""Funds deadlock on spot (B-2.1, B-2.2): a limit order at the touch first, market only if allowed,
bounded attempts with a cool-down, dust never retried, then an empty side with a logged reason."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.balance import Balances, Funds
from actors.rebalance import Rebalancer
from messages.commands import OrderIntents, RequestCancels
from messages.events import IntentRefused, IntentsRefused, OrdersChanged, OrderUpdate, PriceTick
from messages.lifecycle import Rebuild
from messages.reports import BalanceReport, PositionReport, VenueState
from messages.types import MarketRules, OrderState, Origin, Side
from tests.unit.test_balance import SPOT_RULES, approve, spec

pytestmark = pytest.mark.timeout(30)
D = Decimal
BUY, SELL = Side.BUY, Side.SELL


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def spot(usdt, btc, attempts=2, cooldown=60.0, market=False, rules=SPOT_RULES):
    clock = Clock()
    b = Balances(Funds("spot", "?", "?", 1), Rebalancer("bot", "BTCUSDT", attempts, cooldown, market), clock)
    b.on_rebuild(Rebuild(VenueState(rules, PositionReport("BTCUSDT"),
                                    (BalanceReport("USDT", D(usdt)), BalanceReport("BTC", D(btc))), (), (),
                                    D("40000"), 1_000), 1))
    return b, clock


def rebalances(out):
    return [s for o in out if isinstance(o.msg, OrderIntents) and o.msg.origin is Origin.REBALANCE
            for s in o.msg.orders]


def sells(*cids):
    return [spec(c, SELL, "40100", "0.01", level=i + 1) for i, c in enumerate(cids)]


def test_b21_grid_without_base_rebalances_with_a_limit_buy_at_the_touch():
    b, _ = spot(usdt="1000", btc="0")
    out = approve(b, *sells("s1", "s2"))
    [order] = rebalances(out)
    assert (order.side, order.price, order.size, order.post_only) == (BUY, D("40000.00"), D("0.01250"), True)
    # capped at half the free quote (500 of 1000), not the 0.02 BTC the sells wanted
    assert [o.to for o in out if isinstance(o.msg, OrderIntents)] == ["risk"]


def test_b21_refusals_on_both_sides_are_not_a_deadlock_to_trade_out_of():
    b, _ = spot(usdt="0", btc="0")
    assert rebalances(approve(b, spec("b1", BUY, "39900", "0.01"), *sells("s1"))) == []


def test_b22_attempts_are_bounded_and_spaced_by_the_cool_down_then_the_side_stays_empty():
    b, clock = spot(usdt="1000", btc="0", attempts=2, cooldown=60.0)
    first = rebalances(approve(b, *sells("s1")))[0]
    assert rebalances(approve(b, *sells("s2"))) == []              # one in flight at a time
    clock.now += 61
    cancel = b.on_tick(PriceTick("BTCUSDT", D("40500"), 1))         # it rested past the cool-down
    assert [o.msg for o in cancel if isinstance(o.msg, RequestCancels)][0].client_ids == (first.client_id,)
    b.on_orders(OrdersChanged((OrderUpdate(first.client_id, BUY, first.price, first.size, D(0),
                                           OrderState.CANCELLED, Origin.REBALANCE, None),)))
    assert rebalances(approve(b, *sells("s3"))) == []              # the cool-down restarted at the cancel
    clock.now += 61
    second = rebalances(approve(b, *sells("s4")))[0]
    assert second.client_id != first.client_id and second.price == D("40500.00")
    b.on_refused(IntentsRefused((IntentRefused(second.client_id, "max position", Origin.REBALANCE, None),)))
    clock.now += 61
    assert rebalances(approve(b, *sells("s5"))) == []              # 2 attempts used: no third, no market
    assert "2 rebalance attempts did not free funds for the sells" in b.rebalancer.gave_up
    clock.now += 600
    assert rebalances(approve(b, *sells("s6"))) == []              # and no loop later either


def test_b21_market_order_only_when_config_allows_and_only_after_the_limits():
    b, clock = spot(usdt="1000", btc="0", attempts=1, cooldown=1.0, market=True)
    limit = rebalances(approve(b, *sells("s1")))[0]
    b.on_refused(IntentsRefused((IntentRefused(limit.client_id, "funds", Origin.REBALANCE, None),)))
    clock.now += 2
    market = rebalances(approve(b, *sells("s2")))[0]
    assert not market.post_only and market.price == D("40200.00")   # through the touch by the slippage
    b.on_refused(IntentsRefused((IntentRefused(market.client_id, "funds", Origin.REBALANCE, None),)))
    clock.now += 2
    assert rebalances(approve(b, *sells("s3"))) == []               # one market order at most


def test_b22_dust_is_never_tried():
    dusty = MarketRules("BTCUSDT", "BTC", "USDT", lot_size=D("0.00001"), tick_size=D("0.01"), min_notional=D("10"))
    b, _ = spot(usdt="15", btc="0", rules=dusty)
    assert rebalances(approve(b, *sells("s1"))) == []                # half of 15 USDT is under the 10 minimum
    assert "below the market's minimum (dust)" in b.rebalancer.gave_up


def test_b21_a_filled_rebalance_resets_the_attempts():
    b, clock = spot(usdt="1000", btc="0", attempts=1)
    order = rebalances(approve(b, *sells("s1")))[0]
    b.on_orders(OrdersChanged((OrderUpdate(order.client_id, BUY, order.price, order.size, order.size,
                                           OrderState.FILLED, Origin.REBALANCE, None),)))
    assert b.rebalancer.view()["attempts"] == 0 and b.rebalancer.live is None
