"""One backtest: the bot's own state classes (see `sim.backtest.pipeline`) replayed over a candle CSV
on the paper venue, candle by candle on the simulated clock, with the equity marked at every close.

Intrabar model (what a candle does to our resting orders)
----------------------------------------------------------
* Each candle is walked as the path open -> nearer extreme -> farther extreme -> close (`sim.paths.
  intrabar_points`; equal distances: the low first). Points sit at +0, 1/4, 1/2 and 3/4 of the candle;
  consecutive equal prices collapse into one point.
* A move from one point to the next fills every resting order it reaches (a touch fills) at the
  order's own limit price, as a maker, nearest to the previous price first (`MatchingEngine.advance`).
* The bot reacts after every point that filled something, before the price moves on (the live paper
  venue's `stop_on_fill`), and once more at the close: the fills are journaled, the position moves,
  the grid places its counter-orders at the price of that point (a level on the wrong side of it
  waits, as live), and timers due by then fire. So an order (re)placed after a fill CAN fill later in
  the same candle, on a later leg; it can never fill on the leg that filled its partner. Example: a
  buy filled on the way down to the low puts a sell one level up while the price sits at the low;
  if the leg from the low to the high reaches that level, the sell fills in the same candle.
* Price ticks reach the bot at those stops only (each fill point and each close): the extremes of a
  quiet candle are seen by the matching engine, not by the risk book's stop prices or drawdown.
* Timers run on the simulated clock and fire when the bot reacts: at most once per reaction, so a
  30-second audit fires about once per 1-minute candle.

Numbers: `fills` is what the bot journaled; `realized_pnl`, `unrealized_pnl` (at the last close),
`fees` and `final_position` are the bot's own ledger; `exchange_position` is the venue's.
`max_drawdown` is the largest fall of equity (realized - fees + unrealized, marked at every candle's
close; unrealized as the ledger counts it, the position its fills built times close - entry) from its
running peak (the start counts as a peak of 0). `grid_profit_per_fill` is
(realized_pnl - fees) / fills. The sweep score is realized + unrealized - fees. Nothing in the summary
but `wall_seconds` and `candles_per_second` depends on the wall clock.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Callable

from messages.types import Side
from sim.backtest.pipeline import Pipeline

__all__ = ["Series", "Result", "DataError", "backtest", "backtest_config", "PROGRESS_EVERY"]

ZERO = Decimal(0)
PROGRESS_EVERY = 500            # candles between two progress callbacks
_QUANTUM = Decimal("0.00000001")


class DataError(ValueError):
    """The candle data cannot be replayed (a malformed row, no candles)."""


@dataclass
class Series:
    """What the report draws: one entry per candle (its open time, close, position and equity), and
    every fill (time, side +1/-1, price)."""
    time_ms: array = field(default_factory=lambda: array("q"))
    close: array = field(default_factory=lambda: array("d"))
    position: array = field(default_factory=lambda: array("d"))
    equity: array = field(default_factory=lambda: array("d"))
    fill_time_ms: array = field(default_factory=lambda: array("q"))
    fill_side: array = field(default_factory=lambda: array("b"))
    fill_price: array = field(default_factory=lambda: array("d"))


@dataclass
class Result:
    summary: dict
    series: Series


AUDIT_EVERY_S = 3600.0


def backtest_config(config, data: str | os.PathLike, state_dir: str | os.PathLike):
    """The config a backtest runs: the paper venue on `data`, the journal in `state_dir`. The fill
    audit (a safety net against a venue that loses messages, which the paper venue never does) runs
    at most hourly in simulated time instead of every 30 s: it decides nothing here and was 80% of
    the replay's time."""
    audit = max(config.timing.audit_interval_s, AUDIT_EVERY_S)
    return config.with_overrides(bot={"exchange": "paper", "state_dir": str(Path(state_dir).resolve())},
                                 paper={"data": str(Path(data).resolve())}, timing={"audit_interval_s": audit})


def backtest(config, progress: Callable[[int, int], None] | None = None) -> Result:
    """Replay `config.paper.data` through the bot. `config.bot.state_dir` must be a fresh directory
    (the journal there is the bot's; a used one would be rebuilt from). `progress(done, total)` is
    called every PROGRESS_EVERY candles and at the end."""
    started = time.perf_counter()
    try:
        bot = Pipeline(config)
    except ValueError as exc:       # the venue could not load the price path
        raise DataError(str(exc)) from None
    try:
        series, drawdown = _replay(bot, progress)
        wall = time.perf_counter() - started
        summary = _summary(bot, series, drawdown, wall)
    finally:
        bot.close()
    return Result(summary, series)


def _replay(bot: Pipeline, progress) -> tuple[Series, Decimal]:
    exchange = bot.exchange
    engine, path, symbol = exchange.engine, exchange.path, exchange.settings.symbol
    source = path.source
    total = len(source)
    series = Series()
    times, closes, positions, equities = series.time_ms, series.close, series.position, series.equity
    position = book = entry = ZERO  # held; and held through journaled fills (spot: without the start)
    banked = ZERO                   # realized - fees: moves only with fills
    ledger_state = bot.states["position"]
    peak = drawdown = ZERO
    new_fills = exchange.new_fills
    bot.start()
    done = 0
    while not path.exhausted:
        bot.candle()
        index = path.cursor[0] - 1   # the candle just finished
        close = engine.mid(symbol)
        if new_fills:
            for fill in new_fills:
                series.fill_time_ms.append(fill.time_ms)
                series.fill_side.append(1 if fill.side is Side.BUY else -1)
                series.fill_price.append(float(fill.price))
            new_fills.clear()
            ledger = bot.status("position")
            position, entry = ledger["position"], ledger["average_entry"]
            banked = ledger["realized_pnl"] - ledger["fees"]
            book = ledger_state.book_position       # what the ledger's unrealized PnL is marked on
        equity = banked + book * (close - entry) if book else banked
        if equity > peak:
            peak = equity
        elif peak - equity > drawdown:
            drawdown = peak - equity
        times.append(source[index].time_ms)
        closes.append(float(close))
        positions.append(float(position))
        equities.append(float(equity))
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if progress is not None:
        progress(total, total)
    return series, drawdown


def _summary(bot: Pipeline, series: Series, drawdown: Decimal, wall: float) -> dict:
    ledger = bot.status("position")
    fills = bot.status("guarantor")["fills"]
    orderbook = bot.status("orderbook")
    risk = bot.status("risk")
    venue = bot.exchange.snapshot()
    candles = len(bot.exchange.path.source)
    realized, unrealized, fees = ledger["realized_pnl"], ledger["unrealized_pnl"], ledger["fees"]
    per_fill = ((realized - fees) / fills).quantize(_QUANTUM, ROUND_HALF_EVEN) if fills else ZERO
    return {
        "candles": candles,
        "fills": fills,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "fees": fees,
        "max_drawdown": drawdown,
        "final_position": ledger["position"],
        "exchange_position": venue.position.size,
        "grid_profit_per_fill": per_fill,
        "wall_seconds": round(wall, 3),
        "candles_per_second": round(candles / wall, 1) if wall > 0 else 0.0,
        # -- beyond the required keys: the score a sweep ranks by, and how the run ended --
        "score": realized + unrealized - fees,
        "buys": sum(1 for s in series.fill_side if s > 0),
        "sells": sum(1 for s in series.fill_side if s < 0),
        "mode": bot.mode.value,
        "emergency": bot.emergencies[0].reason if bot.emergencies else "",
        "refused_by_risk": dict(risk["refused"]),
        # Orders the order book would ask about by wall-clock age: must stay 0 for a clock-free run.
        "status_queries": orderbook["status_queries"],
        "lost_suspected": orderbook.get("lost_suspected", 0),
        "messages": bot.delivered,
        "first_candle_ms": series.time_ms[0] if len(series.time_ms) else None,
        "last_candle_ms": series.time_ms[-1] if len(series.time_ms) else None,
        "data": bot.config.paper.data,
    }


TIMING_KEYS = ("wall_seconds", "candles_per_second")


class StateDir:
    """A fresh state directory: `path` (must be empty or a previous backtest's, which is cleared) or
    a temporary one removed on exit."""
    MARKER = ".gridbot-backtest"

    def __init__(self, path: str | os.PathLike | None = None):
        self.requested = Path(path) if path is not None else None
        self.path: Path | None = None

    def __enter__(self) -> Path:
        if self.requested is None:
            self.path = Path(tempfile.mkdtemp(prefix="gridbot-backtest-"))
            return self.path
        path = self.requested
        if path.exists() and any(path.iterdir()):
            if not (path / self.MARKER).is_file():
                raise FileExistsError(f"{path} exists and is not a backtest's state directory")
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / self.MARKER).write_text("the state of a `gridbot backtest` run; cleared by the next one\n")
        self.path = path
        return path

    def __exit__(self, *exc) -> None:
        if self.requested is None and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
