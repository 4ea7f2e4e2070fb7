"""Price paths: CSV candles, synthetic candles, intrabar order, resumable cursors."""
from __future__ import annotations

import statistics
import time
from decimal import Decimal
from pathlib import Path

import pytest

from sim.paths import Candle, PricePath, SyntheticCandles, intrabar_points, load_candles_csv

pytestmark = pytest.mark.timeout(60)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CSV_NAME = "btc-perp-2022-01-1m.csv"
HEADER = "timestamp,open,high,low,close,volume\n"


@pytest.fixture(scope="module")
def real_csv() -> Path:
    path = DATA_DIR / CSV_NAME
    if not path.exists():
        pytest.skip(f"real candle data not present at {path}")
    return path


def candle(o, h, lo, c, t=0) -> Candle:
    return Candle(t, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(1))


def prices(points) -> list[Decimal]:
    return [p for _, p in points]


# -- intrabar order -------------------------------------------------------------------------------
def test_intrabar_visits_the_nearer_extreme_first():
    near_high = candle("100", "101", "95", "98", t=60_000)
    assert prices(intrabar_points(near_high)) == [Decimal(x) for x in ("100", "101", "95", "98")]
    near_low = candle("100", "106", "99", "103")
    assert prices(intrabar_points(near_low)) == [Decimal(x) for x in ("100", "99", "106", "103")]


def test_intrabar_timestamps_spread_inside_the_candle():
    points = intrabar_points(candle("100", "101", "95", "98", t=60_000))
    assert [t for t, _ in points] == [60_000, 75_000, 90_000, 105_000]


def test_intrabar_equidistant_open_goes_to_the_low_first():
    assert prices(intrabar_points(candle("100", "102", "98", "101"))) == [
        Decimal("100"), Decimal("98"), Decimal("102"), Decimal("101")]


def test_intrabar_drops_consecutive_duplicates():
    opens_at_high = candle("100", "100", "97", "97")
    assert intrabar_points(opens_at_high) == ((0, Decimal("100")), (30_000, Decimal("97")))
    flat = candle("100", "100", "100", "100")
    assert intrabar_points(flat) == ((0, Decimal("100")),)


# -- CSV ------------------------------------------------------------------------------------------
def test_real_csv_loads_every_row_quickly(real_csv):
    started = time.perf_counter()
    candles = load_candles_csv(real_csv)
    elapsed = time.perf_counter() - started
    assert len(candles) == 45_031
    first = candles[0]
    assert first.time_ms == 1_640_991_660_000  # 2021-12-31 23:01:00 UTC
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("46319.0"), Decimal("46385.0"), Decimal("46319.0"), Decimal("46377.0"))
    assert all(isinstance(c.close, Decimal) for c in candles[:100])
    assert all(b.time_ms > a.time_ms for a, b in zip(candles, candles[1:]))
    assert elapsed < 2.0


def test_csv_without_volume_column_loads(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("timestamp,open,high,low,close\n2022-01-01 00:00:00,1,2,0.5,1.5\n")
    [only] = load_candles_csv(path)
    assert only.time_ms == 1_640_995_200_000 and only.volume == 0


@pytest.mark.parametrize("row, why", [
    ("2022-01-01 00:01:00.000000,100,abc,99,100,5", "not a number"),
    ("2022-01-01 00:01:00.000000,100,101,99", "columns"),
    ("2022-01-01 00:01:00.000000,100,99,98,100,5", "inconsistent"),
    ("2022-01-01 00:01:00.000000,100,101,0,100,5", "positive"),
    ("2022-01-01 00:01:00.000000,100,101,99,100,-1", "volume"),
    ("yesterday,100,101,99,100,5", "malformed"),
    ("2022-01-01 00:00:00.000000,100,101,99,100,5", "not after"),
])
def test_csv_bad_row_names_file_and_line(tmp_path, row, why):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "2022-01-01 00:00:00.000000,100,101,99,100,5\n" + row + "\n")
    with pytest.raises(ValueError) as err:
        load_candles_csv(path)
    assert f"{path}:3" in str(err.value)
    assert why in str(err.value)


def test_csv_bad_header_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,open,high,low\n")
    with pytest.raises(ValueError, match=r"bad.csv:1: header lacks column\(s\) timestamp, close"):
        load_candles_csv(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv:1: empty file"):
        load_candles_csv(empty)


# -- synthetic ------------------------------------------------------------------------------------
def test_synthetic_same_seed_same_candles():
    a, b = SyntheticCandles(seed=11), SyntheticCandles(seed=11)
    forward = [a[i] for i in range(700)]
    assert b[650] == forward[650]  # random access replays from the nearest block checkpoint
    assert [b[i] for i in range(700)] == forward
    assert SyntheticCandles(seed=12)[300] != forward[300]


def test_synthetic_candles_are_consistent_and_evenly_spaced():
    source = SyntheticCandles(seed=3, start_price=Decimal("40000"), start_ms=1_000_000, interval_ms=60_000)
    candles = [source[i] for i in range(2000)]
    assert candles[0].open == Decimal("40000")
    for prev, cur in zip(candles, candles[1:]):
        assert cur.time_ms - prev.time_ms == 60_000
        assert cur.open == prev.close
    for c in candles:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.low > 0


def test_synthetic_ranges_suit_a_tight_grid():
    source = SyntheticCandles(seed=7)
    candles = [source[i] for i in range(5000)]
    ranges = [(c.high - c.low) / c.open for c in candles]
    median = statistics.median(ranges)
    assert Decimal("0.0005") <= median <= Decimal("0.004")
    wide = sum(1 for r in ranges if r >= Decimal("0.001"))
    assert wide > len(ranges) // 4  # a 0.1% grid sees a fill every few candles
    assert max(ranges) > Decimal("0.004")  # occasional wicks


def test_synthetic_rejects_negative_index():
    with pytest.raises(IndexError):
        SyntheticCandles(seed=1)[-1]


# -- price path -----------------------------------------------------------------------------------
def test_path_cursor_resumes_without_repeating_or_skipping():
    source = SyntheticCandles(seed=5)
    path = PricePath(source)
    head = path.take(37)
    saved = path.cursor
    tail = path.take(50)
    resumed = PricePath(SyntheticCandles(seed=5), cursor=saved)
    assert resumed.take(50) == tail
    everything = PricePath(source).take(87)
    assert everything == head + tail
    assert [t for t, _ in everything] == sorted(t for t, _ in everything)


def test_finite_path_is_exhausted_at_the_end():
    candles = [candle("100", "101", "99", "100", t=0), candle("100", "100", "100", "100", t=60_000)]
    path = PricePath(candles)
    assert not path.exhausted
    points = list(path)
    assert prices(points) == [Decimal(x) for x in ("100", "99", "101", "100", "100")]
    assert path.exhausted and path.peek() is None and path.next_point() is None
    assert path.take(5) == []


def test_path_seek_to_a_finished_candle_moves_to_the_next():
    candles = [candle("100", "100", "99", "99", t=0), candle("99", "103", "98", "100", t=60_000)]
    path = PricePath(candles, cursor=(0, 5))
    assert path.cursor == (1, 0)
    assert path.peek() == (60_000, Decimal("99"))
    with pytest.raises(ValueError):
        path.seek((-1, 0))


def test_real_csv_path_walks_every_candle(real_csv):
    candles = load_candles_csv(real_csv)
    path = PricePath(candles)
    count = sum(1 for _ in path)
    assert len(candles) <= count <= 4 * len(candles)
    assert path.exhausted and path.cursor == (len(candles), 0)
