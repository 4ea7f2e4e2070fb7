"""`gridbot backtest`: the bot's own state classes replayed over a candle CSV on the paper venue.

* `sim.backtest.pipeline`: the actors' state classes wired in one process on a simulated clock (and
  why not Thespian's simpleSystemBase);
* `sim.backtest.run`: one replay, the intrabar model, what the summary's numbers mean;
* `sim.backtest.report`: summary.json, report.png, the console tables;
* `sim.backtest.cli`: the command and its parameter sweeps.
"""
from __future__ import annotations

from decimal import Decimal

__all__ = ["run_backtest", "ISSUE_GRID"]

# Issue 9's benchmark grid: the default paper config's grid made 20 levels a side at 0.5% geometric.
ISSUE_GRID = {"levels_per_side": 20, "spacing": "geometric", "spacing_pct": Decimal("0.5")}


def run_backtest(data, config=None, out=None, *, overrides: dict | None = None, progress=None) -> dict:
    """Run one backtest and return its summary (Decimals as Decimals). `config`: a BotConfig, a TOML
    path, or None for config/paper.toml; `overrides`: {section: {key: value}} applied on top (e.g.
    {"grid": ISSUE_GRID}); `out`: a directory for summary.json, report.png and the state (None: a
    temporary state directory, no files)."""
    from pathlib import Path

    from config import schema
    from sim.backtest.report import write_report, write_summary
    from sim.backtest.run import StateDir, backtest, backtest_config

    if not isinstance(config, schema.BotConfig):
        config = schema.load(config)
    if overrides:
        config = config.with_overrides(**overrides)
    with StateDir(None if out is None else Path(out) / "state") as state:
        result = backtest(backtest_config(config, data, state), progress)
    if out is not None:
        write_summary(Path(out) / "summary.json", result.summary)
        write_report(Path(out) / "report.png", result.series)
    return result.summary
