"""Price paths for the simulated venues: real candles from CSV, seeded synthetic candles, and a
resumable walk through each candle's intrabar points.

A path is what the paper exchange and the protocol servers call "the market": every point is fed to
the matching engine, and the cursor is persisted with the venue so a restarted venue resumes exactly
where it stopped.
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Iterator, Sequence

__all__ = [
    "Candle", "load_candles_csv", "SyntheticCandles", "intrabar_points", "PricePath",
    "DEFAULT_START_MS", "Point",
]

Point = tuple[int, Decimal]

DEFAULT_START_MS = 1_640_995_200_000  # 2022-01-01 00:00 UTC, next to the real data set
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)
_ZERO = Decimal(0)
_REQUIRED = ("timestamp", "open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class Candle:
    time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)


# -- CSV -------------------------------------------------------------------------------------------
def _parse_time_ms(text: str) -> int:
    """Epoch ms from `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC, naive or with offset) or from integer ms."""
    if text.isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return (stamp - _EPOCH) // _MS


def _parse_row(row: list[str], columns: tuple[int, ...]) -> Candle:
    t, o, h, lo, c, v = columns
    time_ms = _parse_time_ms(row[t].strip())
    open_, high, low, close = Decimal(row[o]), Decimal(row[h]), Decimal(row[lo]), Decimal(row[c])
    volume = Decimal(row[v]) if v >= 0 else _ZERO
    # Decimal comparisons with NaN raise InvalidOperation, so these also reject non-numbers.
    if not (low > 0 and high.is_finite()):
        raise ValueError(f"prices must be positive and finite (low {low}, high {high})")
    if high < open_ or high < close or low > open_ or low > close:
        raise ValueError(f"inconsistent candle: open {open_} high {high} low {low} close {close}")
    if not (volume >= 0 and volume.is_finite()):
        raise ValueError(f"volume must be >= 0, got {volume}")
    return Candle(time_ms, open_, high, low, close, volume)


def load_candles_csv(path) -> list[Candle]:
    """Candles from a `timestamp,open,high,low,close[,volume]` file, in strictly increasing time.

    A bad row raises ValueError naming the file and line: a backtest on silently skipped data would
    report results for a market that never existed.
    """
    candles: list[Candle] = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}:1: empty file, expected a header {','.join(_REQUIRED)}")
        names = [name.strip().lower() for name in header]
        missing = [name for name in _REQUIRED if name not in names]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        columns = tuple(names.index(n) for n in _REQUIRED) + (
            names.index("volume") if "volume" in names else -1,)
        width = max(columns) + 1
        last_ms = None
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                if len(row) < width:
                    raise ValueError(f"expected {len(names)} columns, got {len(row)}")
                candle = _parse_row(row, columns)
            except (ValueError, InvalidOperation, IndexError) as exc:
                reason = "not a number" if isinstance(exc, InvalidOperation) else exc
                raise ValueError(f"{path}:{line}: malformed candle row {row!r}: {reason}") from None
            if last_ms is not None and candle.time_ms <= last_ms:
                raise ValueError(
                    f"{path}:{line}: timestamp {row[columns[0]]} is not after the previous row")
            last_ms = candle.time_ms
            candles.append(candle)
    return candles


# -- synthetic -------------------------------------------------------------------------------------
_BLOCK = 256
_TENTH = Decimal("0.1")
# Volatility regimes (per-minute sigma of log returns) and the chance per candle to leave each one.
_REGIME_SIGMA = (0.0004, 0.0008, 0.0016)
_REGIME_EXIT = (0.004, 0.003, 0.01)
_WICK_CHANCE = 0.012
_PULL = 2e-5  # weak pull back to the start price (time constant ~35 days) keeps long runs plausible


class SyntheticCandles:
    """An infinite, seeded stream of 1-minute candles: a mean-reverting trend, three volatility regimes
    and occasional long wicks; the typical high-low range is 0.05-0.4% of price.

    Candles are regenerated by replay: block b (256 candles) draws from its own RNG seeded by
    (seed, b), and the carried state (price, regime, trend) at each block start is cached as blocks
    are first generated. So `candles[i]` costs at most one block of replay once the blocks before it
    were visited, and the same seed always gives the same candles (prices kept as integer tenths, so
    float noise never accumulates).
    """

    def __init__(self, seed: int, start_price: Decimal = Decimal("40000"),
                 start_ms: int = DEFAULT_START_MS, interval_ms: int = 60_000):
        if start_price <= 0:
            raise ValueError("start_price must be positive")
        self.seed = seed
        self.start_price = Decimal(start_price)
        self.start_ms = start_ms
        self.interval_ms = interval_ms
        self._checkpoints: list[tuple[int, int, float]] = [
            (int((self.start_price / _TENTH).to_integral_value()), 1, 0.0)]
        self._block_index = -1
        self._block: list[Candle] = []

    def __getitem__(self, index: int) -> Candle:
        if not isinstance(index, int) or index < 0:
            raise IndexError(f"synthetic candle index must be an int >= 0, got {index!r}")
        block, offset = divmod(index, _BLOCK)
        if block != self._block_index:
            self._block = self._generate_block(block)
            self._block_index = block
        return self._block[offset]

    def __iter__(self) -> Iterator[Candle]:
        index = 0
        while True:
            yield self[index]
            index += 1

    def _generate_block(self, block: int) -> list[Candle]:
        while len(self._checkpoints) <= block:
            self._generate(len(self._checkpoints) - 1, keep=False)
        return self._generate(block, keep=True)

    def _generate(self, block: int, keep: bool) -> list[Candle]:
        """Walk one block from its checkpoint; record the next block's checkpoint on the way out."""
        rng = random.Random(f"gridbot-synthetic:{self.seed}:{block}")
        price, regime, trend = self._checkpoints[block]
        start = self._checkpoints[0][0]
        time_ms = self.start_ms + block * _BLOCK * self.interval_ms
        out: list[Candle] = []
        for _ in range(_BLOCK):
            if rng.random() < _REGIME_EXIT[regime]:
                regime = rng.choice((0, 2)) if regime == 1 else 1
            sigma = _REGIME_SIGMA[regime]
            trend = trend * 0.995 + rng.gauss(0.0, sigma * 0.01)
            step = trend + rng.gauss(0.0, sigma) - _PULL * math.log(price / start)
            close = max(10, round(price * math.exp(step)))
            body_hi, body_lo = max(price, close), min(price, close)
            up = abs(rng.gauss(0.0, sigma * 0.45)) * price
            down = abs(rng.gauss(0.0, sigma * 0.45)) * price
            if rng.random() < _WICK_CHANCE:
                wick = rng.uniform(3.0, 9.0) * sigma * price
                if rng.random() < 0.5:
                    up += wick
                else:
                    down += wick
            high = body_hi + round(up)
            low = max(1, body_lo - round(down))
            volume = round(rng.uniform(0.5, 1.5) * (high - low + 10) * 1000)
            if keep:
                out.append(Candle(time_ms, Decimal(price).scaleb(-1), Decimal(high).scaleb(-1),
                                  Decimal(low).scaleb(-1), Decimal(close).scaleb(-1), Decimal(volume)))
            time_ms += self.interval_ms
            price = close
        if len(self._checkpoints) == block + 1:
            self._checkpoints.append((price, regime, trend))
        return out


# -- intrabar points -------------------------------------------------------------------------------
def intrabar_points(candle: Candle, interval_ms: int = 60_000) -> tuple[Point, ...]:
    """The candle as a path: open -> nearer extreme -> farther extreme -> close, at +0, +1/4, +1/2 and
    +3/4 of the interval. When the open is equally far from both extremes the low comes first (the
    pessimistic order for a long grid). Consecutive equal prices collapse into the first point."""
    open_, high, low = candle.open, candle.high, candle.low
    first, second = (high, low) if high - open_ < open_ - low else (low, high)
    quarter = interval_ms // 4
    t = candle.time_ms
    points = [(t, open_)]
    for k, price in ((1, first), (2, second), (3, candle.close)):
        if price != points[-1][1]:
            points.append((t + k * quarter, price))
    return tuple(points)


class PricePath:
    """Walks a candle source point by point. The cursor `(candle_index, point_index)` names the next
    point to emit, so saving it and seeking back to it resumes without repeating or skipping a price.

    `source` is a list of candles (finite: the path ends) or a SyntheticCandles (infinite).
    """

    def __init__(self, source: Sequence[Candle] | SyntheticCandles,
                 cursor: tuple[int, int] = (0, 0), interval_ms: int = 60_000):
        self.source = source
        self.interval_ms = interval_ms
        self._finite = hasattr(source, "__len__")
        self._candle_index = -1
        self._points: tuple[Point, ...] = ()
        self._ci, self._pi = 0, 0
        self.seek(cursor)

    @property
    def cursor(self) -> tuple[int, int]:
        return (self._ci, self._pi)

    def seek(self, cursor: tuple[int, int]) -> None:
        ci, pi = int(cursor[0]), int(cursor[1])
        if ci < 0 or pi < 0:
            raise ValueError(f"bad path cursor {cursor!r}")
        self._ci, self._pi = ci, pi
        self._normalize()

    @property
    def exhausted(self) -> bool:
        return self._finite and self._ci >= len(self.source)

    def _load(self) -> None:
        if self._candle_index != self._ci:
            self._points = intrabar_points(self.source[self._ci], self.interval_ms)
            self._candle_index = self._ci

    def _normalize(self) -> None:
        """Move past finished candles so the cursor always names a real point (or the end)."""
        while not self.exhausted:
            self._load()
            if self._pi < len(self._points):
                return
            self._ci, self._pi = self._ci + 1, 0

    def peek(self) -> Point | None:
        """The next point without consuming it (None at the end of a finite path)."""
        if self.exhausted:
            return None
        return self._points[self._pi]

    def next_point(self) -> Point | None:
        if self.exhausted:
            return None
        point = self._points[self._pi]
        self._pi += 1
        if self._pi >= len(self._points):
            self._ci, self._pi = self._ci + 1, 0
            self._normalize()
        return point

    def take(self, count: int) -> list[Point]:
        """Up to `count` points (fewer only at the end of a finite path)."""
        out = []
        for _ in range(count):
            point = self.next_point()
            if point is None:
                break
            out.append(point)
        return out

    def __iter__(self) -> Iterator[Point]:
        while True:
            point = self.next_point()
            if point is None:
                return
            yield point
