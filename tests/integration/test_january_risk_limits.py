"""A month of real data (BTC, January 2022: a ~25% fall) through the bot's own state classes on the paper
exchange: every risk limit holds at every step, and the kill switch stops the grid for good."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from messages.commands import OrderIntents, PlaceOrders
from messages.types import Mode, Origin
from tests.helpers import paper_config
from tests.pipeline import Pipeline

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
D = Decimal


def january(tmp_path, csv, **risk):
    config = paper_config(tmp_path / "state", paper={"data": str(csv)}, timing={"audit_interval_s": 3600.0},
                          grid={"levels_per_side": 10, "spacing": "geometric", "spacing_pct": D("0.5"),
                                "order_size": D("0.002"), "trail_after_s": 6 * 3600.0},
                          risk={"max_position": D("0.01"), "max_notional": D("450"), **risk})
    bot = Pipeline(config)
    sent_after_stop: list = []
    bot.observers.append(lambda role, msg: sent_after_stop.extend(
        s for s in msg.orders if s.origin is Origin.GRID) if (
        role == "gateway" and isinstance(msg, PlaceOrders) and bot.mode is not Mode.TRADING) else None)
    return bot, sent_after_stop


def check_limits(bot, config) -> None:
    state = bot.exchange.snapshot()
    position, mid = state.position.size, state.mid
    assert abs(position) <= config.risk.max_position, f"position {position} over the limit"
    resting = [o for o in state.open_orders if not o.reduce_only]
    buys = sum((o.remaining for o in resting if o.side.value == "buy"), D(0))
    assert position + buys <= config.risk.max_position          # even if every buy filled
    assert abs(position) * mid <= config.risk.max_notional + 50  # one level's move past the check
    prices = Counter(o.price for o in resting)
    assert not prices or max(prices.values()) == 1, "two orders at one level"


def test_january_holds_position_notional_and_level_limits_all_month(tmp_path, january_csv):
    bot, _ = january(tmp_path, january_csv)
    config = bot.config
    bot.start()
    candles = 0
    while bot.step(1):
        candles += 1
        check_limits(bot, config)
    fills = bot.status("guarantor")["fills"]
    state = bot.exchange.snapshot()
    ledger = bot.status("position")
    bot.close()
    assert candles >= 44_000
    assert fills > 100
    assert bot.status("grid")["epoch"] > 1                         # it trailed the fall
    assert D(ledger["position"]) == state.position.size
    assert bot.states["risk"].refused["limit"] > 0                 # the limits were actually tested


def test_january_drawdown_kill_switch_stops_and_flattens_for_good(tmp_path, january_csv):
    bot, sent_after_stop = january(tmp_path, january_csv, max_drawdown=D("40"))
    bot.start()
    stopped_at = None
    while bot.step(1):
        if bot.emergencies and stopped_at is None:
            stopped_at = bot.now_ms
        if stopped_at is not None and bot.now_ms - stopped_at > 3_600_000:
            break
    state = bot.exchange.snapshot()
    risk = bot.status("risk")
    bot.close()
    [stop] = bot.emergencies
    assert "kill switch: drawdown" in stop.reason and stop.flatten
    assert bot.mode is Mode.EMERGENCY
    assert state.position.size == 0                                # flattened
    assert [o for o in state.open_orders] == []                    # nothing left behind
    assert sent_after_stop == []                                    # no grid order after the stop
    assert D(risk["peak_pnl"]) - D(risk["pnl"]) >= D("40")
