"""A backtest's outputs: `summary.json` (Decimals as strings, keys in a fixed order, so two runs of the
same config on the same data give the same file apart from the timing keys), `report.png` (price with
the fills marked, position, equity; matplotlib's Agg canvas, no display needed) and the console
tables (rich: colours on a terminal, plain text otherwise)."""
from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from sim.backtest.run import Series

__all__ = ["write_summary", "read_summary", "write_report", "print_summary", "print_ranking"]

_MONEY = ("realized_pnl", "unrealized_pnl", "fees", "max_drawdown", "score", "grid_profit_per_fill")


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_summary(path: str | os.PathLike, summary: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_plain(summary), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_summary(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def write_report(path: str | os.PathLike, series: Series, title: str = "") -> Path:
    """Three panels over time: the close with buys (^) and sells (v) at their fill prices, the
    position, and the equity curve (realized - fees + unrealized)."""
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure     # a bare Figure renders through Agg: no pyplot state

    import numpy as np
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = np.frombuffer(series.time_ms, dtype=np.int64).astype("datetime64[ms]")
    fill_times = np.frombuffer(series.fill_time_ms, dtype=np.int64).astype("datetime64[ms]")
    sides = np.frombuffer(series.fill_side, dtype=np.int8)
    prices = np.frombuffer(series.fill_price, dtype=np.float64)
    fig = Figure(figsize=(13, 9), dpi=100, layout="constrained")
    price_ax, pos_ax, eq_ax = fig.subplots(3, 1, sharex=True, height_ratios=(3, 1.2, 1.5))
    price_ax.plot(times, series.close, color="#555555", linewidth=0.6, label="close")
    for side, marker, colour, label in ((1, "^", "#1a9850", "buy"), (-1, "v", "#d73027", "sell")):
        chosen = sides == side
        price_ax.scatter(fill_times[chosen], prices[chosen], marker=marker, s=18, color=colour,
                         label=f"{label} ({int(chosen.sum())})", zorder=3, linewidths=0)
    price_ax.set_ylabel("price")
    price_ax.legend(loc="upper right", fontsize=8)
    price_ax.set_title(title or "backtest", fontsize=10)
    pos_ax.step(times, series.position, where="post", color="#4575b4", linewidth=0.8)
    pos_ax.axhline(0, color="#999999", linewidth=0.5)
    pos_ax.set_ylabel("position")
    equity = np.frombuffer(series.equity, dtype=np.float64)
    eq_ax.plot(times, equity, color="#762a83", linewidth=0.8)
    eq_ax.fill_between(times, equity, np.maximum.accumulate(np.maximum(equity, 0)) if len(equity) else equity,
                       color="#d73027", alpha=0.15, linewidth=0, label="drawdown")
    eq_ax.axhline(0, color="#999999", linewidth=0.5)
    eq_ax.set_ylabel("equity (quote)")
    eq_ax.legend(loc="upper left", fontsize=8)
    eq_ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    for ax in (price_ax, pos_ax, eq_ax):
        ax.grid(True, linewidth=0.3, alpha=0.5)
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _console(stderr: bool = False):
    """A terminal's own width; a pipe or file gets lines wide enough for the sweep table."""
    from rich.console import Console
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=200)
    return console


def print_summary(summary: dict, out_dir: Path | None = None, console=None) -> None:
    from rich.table import Table
    console = console or _console()
    table = Table(title="backtest summary", show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value", justify="right")
    for key in ("candles", "fills", "realized_pnl", "unrealized_pnl", "fees", "score", "max_drawdown",
                "final_position", "exchange_position", "grid_profit_per_fill", "wall_seconds",
                "candles_per_second", "mode", "emergency"):
        value = summary.get(key)
        if value in (None, ""):
            continue
        table.add_row(key, _fmt(key, value))
    console.print(table)
    if out_dir is not None:
        console.print(f"wrote {out_dir / 'summary.json'} and {out_dir / 'report.png'}")


def _fmt(key: str, value) -> str:
    if key in _MONEY:
        return f"{Decimal(value):,.2f}" if key != "grid_profit_per_fill" else f"{Decimal(value):,.4f}"
    return str(value)


def print_ranking(rows: list[tuple[dict, dict]], keys: list[str], console=None) -> None:
    """rows: (the swept values, the summary) in rank order."""
    from rich.table import Table
    console = console or _console()
    table = Table(title="sweep ranked by score = realized + unrealized - fees", title_justify="left")
    table.add_column("#", justify="right")
    for key in keys:
        table.add_column(key, justify="right", style="cyan")
    for name in ("score", "realized", "unrealized", "fees", "max dd", "fills", "position", "candles/s"):
        table.add_column(name, justify="right")
    for rank, (values, s) in enumerate(rows, start=1):
        table.add_row(str(rank), *(str(values[k]) for k in keys),
                      _fmt("score", s["score"]), _fmt("realized_pnl", s["realized_pnl"]),
                      _fmt("unrealized_pnl", s["unrealized_pnl"]), _fmt("fees", s["fees"]),
                      _fmt("max_drawdown", s["max_drawdown"]), str(s["fills"]), str(s["final_position"]),
                      f"{s['candles_per_second']:,.0f}")
    console.print(table)
