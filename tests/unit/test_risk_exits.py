"""Risk beyond position limits: the circuit breaker (H-3), max notional and skew, the drawdown kill
switch, stop-loss and take-profit prices, and the flatten that closes the position."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.breaker import CircuitBreaker
from actors.outbox import SUPERVISOR, Out
from actors.risk import RiskBook
from config.schema import RiskSection
from messages.commands import ApprovedIntents, EmergencyStop
from messages.events import ExchangeError, OrdersChanged, OrderUpdate, PositionChanged, PriceTick
from messages.lifecycle import Flatten, ModeChanged, Rebuild
from messages.reports import BalanceReport, PositionReport, VenueState
from messages.types import Mode, OrderState, Origin, Side
from tests.unit.test_risk import RULES, approved, intents, refused, spec

pytestmark = pytest.mark.timeout(30)
D = Decimal
BUY, SELL = Side.BUY, Side.SELL


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def risky(clock=None, pos="0", mid="40000", collateral="10000", **limits) -> RiskBook:
    section = RiskSection(**{"max_position": D("1"), **limits})
    r = RiskBook(section.max_position, 60, section, "bot", "BTC", "perp", None, clock or Clock())
    r.on_rebuild(Rebuild(VenueState(RULES, PositionReport("BTC", D(pos)), (BalanceReport("USDC", D(collateral)),),
                                    (), (), D(mid), 1), 1))
    r.on_mode(ModeChanged(Mode.TRADING))
    return r


def moved(r, pos, entry="40000", realized="0", version=2000):
    return r.on_position(PositionChanged(version, D(pos), None, D(entry), D(realized), D(0)))


def stops(out) -> list[EmergencyStop]:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, EmergencyStop) and o.to == SUPERVISOR]


# -- H-3: the circuit breaker ----------------------------------------------------------------------
def test_h3_rate_limit_trips_at_once_for_the_exchanges_retry_after():
    b = CircuitBreaker(network_limit=5, rejection_limit=20, window_s=60, cooldown_s=30)
    assert b.record("rate_limited", 100.0, retry_after=7.0, message="429")
    assert b.is_open(106.9) and not b.is_open(107.0)


def test_h3_network_errors_need_the_higher_count_within_the_window():
    b = CircuitBreaker(network_limit=3, rejection_limit=20, window_s=10, cooldown_s=30)
    assert not b.record("transient", 0.0) and not b.record("unknown", 1.0)
    assert not b.record("transient", 20.0)            # the first two fell out of the window
    assert not b.record("transient", 21.0)
    assert b.record("unknown", 22.0)
    assert b.is_open(51.9) and not b.is_open(52.0)


def test_h3_rejections_are_counted_separately_from_network_errors():
    b = CircuitBreaker(network_limit=2, rejection_limit=3, window_s=60, cooldown_s=5)
    assert not b.record("rejected", 0.0) and not b.record("transient", 1.0) and not b.record("rejected", 2.0)
    assert b.counts == {"rate_limited": 0, "network": 1, "rejected": 2}
    assert b.record("rejected", 3.0)


def test_h3_open_breaker_refuses_grid_intents_but_not_reduce_only_risk_orders():
    clock = Clock()
    r = risky(clock, pos="0.01")
    r.on_error(ExchangeError("rate_limited", "429 Too Many Requests", 5.0))
    out = r.on_intents(intents(spec("g1"), version=2000 - 1000))
    assert "circuit breaker open" in refused(out)["g1"]
    close = spec("sl", SELL, "0.01", origin=Origin.RISK, level=None, reduce_only=True)
    assert approved(r.on_intents(intents(close, version=1000, origin=Origin.RISK))) == ["sl"]
    clock.now += 5.0
    assert approved(r.on_intents(intents(spec("g2"), version=1000))) == ["g2"]


# -- max notional and skew -------------------------------------------------------------------------
def test_max_notional_counts_position_and_live_orders_at_the_mid():
    r = risky(max_notional=D("1000"))
    assert approved(r.on_intents(intents(spec("a", size="0.02"), version=1000))) == ["a"]   # 800
    assert refused(r.on_intents(intents(spec("b", size="0.01"), version=1000))) == {"b": "max notional 1000"}
    assert approved(r.on_intents(intents(spec("c", SELL, size="0.01"), version=1000))) == ["c"]


def test_max_skew_limits_the_position_value_against_equity():
    r = risky(max_skew=D("0.5"), collateral="1000")
    assert approved(r.on_intents(intents(spec("a", size="0.01"), version=1000))) == ["a"]   # 400 / 1000
    assert "max skew 0.5" in refused(r.on_intents(intents(spec("b", size="0.005"), version=1000)))["b"]


# -- grid-wide exits -------------------------------------------------------------------------------
def test_stop_loss_price_stops_the_grid_once_and_asks_to_flatten():
    r = risky(stop_loss_price=D("38000"))
    assert stops(r.on_tick(PriceTick("BTC", D("38001"), 1))) == []
    [stop] = stops(r.on_tick(PriceTick("BTC", D("37990"), 2)))
    assert stop.flatten and "stop-loss: mid 37990 <= 38000" in stop.reason
    assert stops(r.on_tick(PriceTick("BTC", D("37000"), 3))) == []


def test_take_profit_price_stops_the_grid():
    r = risky(take_profit_price=D("42000"))
    [stop] = stops(r.on_tick(PriceTick("BTC", D("42000"), 1)))
    assert "take-profit" in stop.reason


def test_drawdown_kill_switch_trips_from_the_peak_not_from_zero():
    r = risky(max_drawdown=D("100"))
    moved(r, "0.1", entry="40000")
    assert stops(r.on_tick(PriceTick("BTC", D("41000"), 1))) == []     # +100 peak
    assert stops(r.on_tick(PriceTick("BTC", D("40010"), 2))) == []     # +1: 99 below the peak
    [stop] = stops(r.on_tick(PriceTick("BTC", D("40000"), 3)))           # 0: 100 below the peak
    assert "kill switch: drawdown 100" in stop.reason and stop.flatten


def test_flatten_closes_the_position_with_reduce_only_orders_one_at_a_time():
    r = risky(pos="0")
    moved(r, "0.013")
    out = r.on_flatten(Flatten("test"))
    [sent] = [s for o in out if isinstance(o.msg, ApprovedIntents) for s in o.msg.orders]
    assert (sent.side, sent.size, sent.reduce_only, sent.post_only, sent.origin) == (
        SELL, D("0.013"), True, False, Origin.RISK)
    assert sent.price == D("39800.0")                                   # 0.5 % through the mid
    assert r.on_tick(PriceTick("BTC", D("40000"), 1)) == []              # one live at a time
    r.on_orders(OrdersChanged((OrderUpdate(sent.client_id, SELL, sent.price, sent.size, D("0.01"),
                                           OrderState.CANCELLED, Origin.RISK, None),)))
    out = moved(r, "0.003", version=3000)
    [again] = [s for o in out if isinstance(o.msg, ApprovedIntents) for s in o.msg.orders]
    assert again.size == D("0.003") and again.client_id != sent.client_id
    assert moved(r, "0", version=4000) == [] and not r.flattening
