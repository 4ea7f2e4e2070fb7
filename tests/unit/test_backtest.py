"""One backtest run on two days of January 2022: the summary's numbers hang together, the bot agrees
with the venue, the same config and data give the same summary whatever the wall clock says, and
both output files are written. Sweep specs are parsed and validated like the config file."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from config import schema
from sim.backtest import ISSUE_GRID, run_backtest
from sim.backtest.cli import parse_sweep, sweep_configs
from sim.backtest.report import read_summary, write_report, write_summary
from sim.backtest.run import TIMING_KEYS, StateDir, backtest, backtest_config

pytestmark = pytest.mark.timeout(60)
D = Decimal
REQUIRED = ("candles", "fills", "realized_pnl", "unrealized_pnl", "fees", "max_drawdown", "final_position",
            "exchange_position", "grid_profit_per_fill", "wall_seconds", "candles_per_second")


@pytest.fixture(scope="module")
def two_days_csv(tmp_path_factory):
    from tests.conftest import SHARED
    source = SHARED / "data" / "btc-perp-2022-01-1m.csv"
    if not source.is_file():
        pytest.skip("../shared/data is not present")
    path = tmp_path_factory.mktemp("data") / "two-days.csv"
    path.write_text("\n".join(source.read_text().splitlines()[:1 + 2 * 1440]) + "\n")
    return path


def run(csv, state_dir, **grid):
    config = schema.load(None).with_overrides(grid={**ISSUE_GRID, "spacing_pct": D("0.3"), **grid})
    return backtest(backtest_config(config, csv, state_dir))


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


def test_the_summary_adds_up_and_the_bot_agrees_with_the_venue(tmp_path, two_days_csv):
    result = run(two_days_csv, tmp_path / "state")
    s, series = result.summary, result.series
    assert set(REQUIRED) <= set(s)
    assert s["candles"] == 2 * 1440
    assert len(series.close) == s["candles"]
    assert s["fills"] >= 10 and s["fills"] == s["buys"] + s["sells"] == len(series.fill_price)
    assert s["final_position"] == s["exchange_position"]
    assert s["final_position"] == D("0.002") * (s["buys"] - s["sells"])
    assert s["fees"] > 0 and s["max_drawdown"] >= 0
    assert s["score"] == s["realized_pnl"] + s["unrealized_pnl"] - s["fees"]
    assert s["grid_profit_per_fill"] == ((s["realized_pnl"] - s["fees"]) / s["fills"]).quantize(D("1e-8"))
    # the equity curve ends where the ledger does, and the drawdown is the curve's
    assert series.equity[-1] == pytest.approx(float(s["score"]), abs=1e-6)
    peak, worst = 0.0, 0.0
    for value in series.equity:
        peak = max(peak, value)
        worst = max(worst, peak - value)
    assert worst == pytest.approx(float(s["max_drawdown"]), abs=1e-6)
    assert s["mode"] == "trading" and s["emergency"] == ""
    assert s["status_queries"] == 0 and s["lost_suspected"] == 0     # nothing asked by wall-clock age
    assert s["candles_per_second"] > 0 and s["wall_seconds"] > 0


def test_spot_with_a_starting_balance_adds_up_too(tmp_path, two_days_csv):
    config = schema.load(None).with_overrides(paper={"kind": "spot", "base_balance": D("0.05")},
                                              grid={"spacing_pct": D("0.3")})
    result = backtest(backtest_config(config, two_days_csv, tmp_path / "state"))
    s = result.summary
    assert s["fills"] >= 10 and s["final_position"] == s["exchange_position"]
    assert result.series.equity[-1] == pytest.approx(float(s["score"]), abs=1e-6)


def test_same_config_same_data_same_summary_whatever_the_wall_clock(tmp_path, two_days_csv, monkeypatch):
    first = run(two_days_csv, tmp_path / "a").summary
    real_time, real_monotonic = time.time, time.monotonic
    monkeypatch.setattr(time, "time", lambda: real_time() + 10 * 365 * 86400)       # ten years on
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + 1e6)
    second = run(two_days_csv, tmp_path / "b").summary
    monkeypatch.undo()
    assert without_timing(first) == without_timing(second)
    write_summary(tmp_path / "a.json", first)
    write_summary(tmp_path / "b.json", second)
    assert without_timing(read_summary(tmp_path / "a.json")) == without_timing(read_summary(tmp_path / "b.json"))


def test_run_backtest_writes_both_files_and_decimals_as_strings(tmp_path, two_days_csv):
    summary = run_backtest(two_days_csv, None, tmp_path / "out", overrides={"grid": ISSUE_GRID})
    written = read_summary(tmp_path / "out" / "summary.json")
    assert list(written)[:len(REQUIRED)] == list(REQUIRED)
    for key in ("realized_pnl", "unrealized_pnl", "fees", "max_drawdown", "final_position",
                "exchange_position", "grid_profit_per_fill"):
        assert isinstance(written[key], str) and D(written[key]) == summary[key]
    assert isinstance(written["candles"], int) and isinstance(written["candles_per_second"], float)
    png = (tmp_path / "out" / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (tmp_path / "out" / "state" / "journal.db").is_file()


def test_report_of_a_run_without_fills(tmp_path, two_days_csv):
    result = run(two_days_csv, tmp_path / "state", spacing_pct=D("9"), levels_per_side=2)
    assert result.summary["fills"] == 0 and result.summary["grid_profit_per_fill"] == 0
    assert write_report(tmp_path / "r.png", result.series).stat().st_size > 10_000


def test_a_state_directory_is_fresh(tmp_path):
    used = tmp_path / "used"
    with StateDir(used) as path:
        (path / "journal.db").write_text("old")
    with StateDir(used) as path:                              # a previous backtest's: cleared
        assert not (path / "journal.db").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        StateDir(foreign).__enter__()
    assert (foreign / "mine.txt").read_text() == "keep"
    with StateDir() as temporary:
        assert temporary.is_dir()
    assert not temporary.exists()


def test_sweep_specs():
    assert parse_sweep("grid.spacing_pct=0.3,0.5,0.8") == ("grid.spacing_pct", [0.3, 0.5, 0.8])
    assert parse_sweep("grid.spacing=arithmetic, geometric") == ("grid.spacing", ["arithmetic", "geometric"])
    assert parse_sweep("grid.levels_per_side=5,10") == ("grid.levels_per_side", [5, 10])
    for bad in ("spacing_pct=0.3", "grid.spacing_pct", "grid.spacing_pct=", "grid.spacing_pct=0.3,,0.5", "=1"):
        with pytest.raises(schema.ConfigError):
            parse_sweep(bad)


def test_sweep_combinations_are_validated_like_the_file():
    base = schema.load(None)
    runs = sweep_configs(base, [parse_sweep("grid.spacing_pct=0.3,0.5"), parse_sweep("grid.levels_per_side=5,8")])
    assert [values for values, _ in runs] == [
        {"grid.spacing_pct": 0.3, "grid.levels_per_side": 5}, {"grid.spacing_pct": 0.3, "grid.levels_per_side": 8},
        {"grid.spacing_pct": 0.5, "grid.levels_per_side": 5}, {"grid.spacing_pct": 0.5, "grid.levels_per_side": 8}]
    assert runs[3][1].grid.spacing_pct == D("0.5") and runs[3][1].grid.levels_per_side == 8
    assert runs[0][1].risk == base.risk                        # everything else as in the file
    for spec, problem in (("grid.spacing_pct=-1", "greater than 0"), ("grid.nope=1", "unknown key"),
                          ("nope.x=1", "unknown section"), ("grid.spacing=diagonal", "must be one of")):
        with pytest.raises(schema.ConfigError, match=problem):
            sweep_configs(base, [parse_sweep(spec)])
    with pytest.raises(schema.ConfigError, match="set by the backtest"):
        sweep_configs(base, [parse_sweep("paper.data=a.csv,b.csv")])
    with pytest.raises(schema.ConfigError, match="swept twice"):
        sweep_configs(base, [parse_sweep("grid.spacing_pct=1"), parse_sweep("grid.spacing_pct=2")])
