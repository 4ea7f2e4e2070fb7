"""The backtest's intrabar model against a small independent replay: a few hand-made candles, a tiny
grid with a fixed anchor, and the fills it must give computed here by hand-written rules, not by the
paper venue's path code or the grid's.

The rules (sim/backtest/run.py's docstring): each candle goes open -> nearer extreme -> farther
extreme -> close (a tie: the low first), at +0, +15, +30, +45 s; a leg fills every resting order it
reaches at the order's price, nearest first; after a leg that filled, the bot re-places at that
point's price (a level on the wrong side of the price waits), so a counter-order can fill on a later
leg of the same candle."""
from __future__ import annotations

from decimal import Decimal

import pytest

from messages.types import Side
from sim.backtest.pipeline import Pipeline
from tests.helpers import paper_config

pytestmark = pytest.mark.timeout(60)
D = Decimal
START_MS = 1_640_995_200_000
ANCHOR, STEP, LEVELS, SIZE = 1000, 10, 2, D("0.02")     # levels 980 990 [1000] 1010 1020

CANDLES = [  # open, high, low, close
    (1000, 1003, 995, 1000),     # quiet: no level reached
    (1000, 1001, 988, 1000),     # high first; the buy at 990 fills, its sell at 1000 fills on the next leg
    (1000, 1025, 999, 1012),     # low first; one leg fills the sells at 1010 then 1020, nearest first
    (1012, 1013, 1005, 1010),    # the buy re-placed at 1010 in the candle before fills now
    (1010, 1020, 1000, 1015),    # a tie (10 each way): the low first (buy 1000), then up: sells 1010, 1020
    (1015, 1030, 975, 990),      # a wide candle: high first (nothing), every buy on the way down, then
                                 #   the sell re-placed at 990 fills on the way back up
    (990, 1000, 985, 999),       # low first (nothing reaches 980), then the sell at 1000
]


def independent_replay(candles) -> list[tuple[int, str, Decimal]]:
    """(time ms, side, price) of every fill the model gives, in order."""
    prices = {level: D(ANCHOR + level * STEP) for level in range(-LEVELS, LEVELS + 1)}
    resting: dict[int, str] = {}
    units = 0                       # position in order sizes
    fills = []

    def place(mid: Decimal) -> None:
        empty = -units
        for level, price in prices.items():
            if level == empty or level in resting:
                continue
            side = "buy" if level < empty else "sell"
            if (side == "buy" and price < mid) or (side == "sell" and price > mid):
                resting[level] = side

    place(D(candles[0][0]))
    for index, (o, h, low, c) in enumerate(candles):
        t0 = START_MS + index * 60_000
        first, second = (h, low) if h - o < o - low else (low, h)
        points = [(t0, D(o))]
        for k, price in enumerate((first, second, c), start=1):
            if D(price) != points[-1][1]:
                points.append((t0 + k * 15_000, D(price)))
        for (_, before), (t, after) in zip(points, points[1:]):
            if after < before:
                reached = sorted((lv for lv, s in resting.items() if s == "buy" and prices[lv] >= after),
                                 key=lambda lv: -prices[lv])
            else:
                reached = sorted((lv for lv, s in resting.items() if s == "sell" and prices[lv] <= after),
                                 key=lambda lv: prices[lv])
            for level in reached:
                side = resting.pop(level)
                units += 1 if side == "buy" else -1
                fills.append((t, side, prices[level]))
            if reached:
                place(after)                 # the bot reacts before the price moves on
        place(points[-1][1])                 # and at the close
    return fills


@pytest.fixture
def candles_csv(tmp_path):
    path = tmp_path / "hand.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{START_MS + i * 60_000},{o},{h},{lo},{c},1" for i, (o, h, lo, c) in enumerate(CANDLES)]
    path.write_text("\n".join(rows) + "\n")
    return path


def run_pipeline(tmp_path, csv) -> tuple[Pipeline, list[tuple[int, str, Decimal]]]:
    config = paper_config(tmp_path / "state", paper={"data": str(csv)},
                          grid={"levels_per_side": LEVELS, "spacing": "arithmetic", "spacing_pct": D(1),
                                "order_size": SIZE, "anchor": D(ANCHOR)},
                          risk={"max_position": D("0.2")})
    bot = Pipeline(config)
    bot.start()
    while not bot.exchange.path.exhausted:
        bot.candle()
    fills = bot.exchange.engine.fills(bot.exchange.settings.account)
    got = [(f.time_ms, "buy" if f.side is Side.BUY else "sell", f.price)
           for f in sorted(fills, key=lambda f: f.trade_id)]
    return bot, got


def test_fills_match_the_independent_replay(tmp_path, candles_csv):
    bot, got = run_pipeline(tmp_path, candles_csv)
    expected = independent_replay(CANDLES)
    ledger = bot.status("position")
    venue = bot.exchange.snapshot().position.size
    bot.close()
    assert got == expected
    assert len(expected) >= 12                                    # the candles really trade
    assert ledger["position"] == venue == SIZE * sum(1 if s == "buy" else -1 for _, s, _ in expected)


def test_the_model_cases_the_candles_were_made_for(tmp_path, candles_csv):
    """What each hand-made candle is for, stated on the replay the pipeline matched."""
    fills = independent_replay(CANDLES)
    by_candle: dict[int, list] = {}
    for t, side, price in fills:
        by_candle.setdefault((t - START_MS) // 60_000, []).append((side, price, (t - START_MS) % 60_000))
    assert 0 not in by_candle
    # the buy filled on the leg down to the low; its counter-sell fills on the leg up, same candle
    assert by_candle[1] == [("buy", D(990), 30_000), ("sell", D(1000), 45_000)]
    # one leg reaches two sells: the nearer (1010) fills first
    assert by_candle[2] == [("sell", D(1010), 30_000), ("sell", D(1020), 30_000)]
    # a tie goes low first: the buy at 1000, then its counter-sell at 1010 and the sell at 1020
    assert by_candle[4] == [("buy", D(1000), 15_000), ("sell", D(1010), 30_000), ("sell", D(1020), 30_000)]
    # the wide candle's leg down reaches four buys, nearest first; a counter-sell fills on the next leg
    assert by_candle[5] == [("buy", D(1010), 30_000), ("buy", D(1000), 30_000), ("buy", D(990), 30_000),
                            ("buy", D(980), 30_000), ("sell", D(990), 45_000)]
    assert by_candle[6] == [("sell", D(1000), 30_000)]
