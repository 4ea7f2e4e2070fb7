"""`gridbot backtest --data CSV [--config PATH] [--out DIR] [--sweep section.key=v1,v2,...]`.

One run writes DIR/summary.json and DIR/report.png and keeps the bot's state (its journal: every
order and fill) in DIR/state. Sweeps run every combination of the `--sweep` values (each `--sweep`
adds a dimension), each on a temporary state directory, write DIR/sweep/NN/summary.json and
DIR/sweep.json, and print the runs ranked by score (realized + unrealized - fees).

Exit codes: 0 done; 1 the bot's final position disagrees with the venue's; 2 a config or data error
(one line, never a traceback), as `gridbot run`.
"""
from __future__ import annotations

import copy
import itertools
import sys
import tomllib
from pathlib import Path

from config import schema

__all__ = ["backtest_main", "parse_sweep", "sweep_configs", "add_parser_arguments"]


def add_parser_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="candle CSV (timestamp,open,high,low,close[,volume])")
    parser.add_argument("--config", help="TOML config (default: config/paper.toml)")
    parser.add_argument("--out", default="backtest", help="output directory (default: ./backtest)")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="run every value of a config key, e.g. grid.spacing_pct=0.3,0.5,0.8; "
                             "repeat for a grid of combinations")


def backtest_main(args) -> int:
    from sim.backtest.run import DataError
    try:
        base = load_base(args.config, args.data)
        sweeps = [parse_sweep(spec) for spec in args.sweep]
        runs = sweep_configs(base, sweeps) if sweeps else [({}, base)]
    except schema.ConfigError as exc:
        print(f"gridbot: config error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        with _logging_to(out / "backtest.log"), _progress() as progress:
            if not sweeps:
                return _single(runs[0][1], args.data, out, progress)
            return _sweep(runs, [key for key, _ in sweeps], args.data, out, progress)
    except (DataError, FileExistsError) as exc:
        print(f"gridbot: backtest error: {exc}", file=sys.stderr)
        return 2


def load_base(config_path, data) -> schema.BotConfig:
    config = schema.load(config_path)
    if not Path(data).is_file():
        raise schema.ConfigError("--data", "paper.data", f"no such file: {data}")
    return config


def parse_sweep(spec: str) -> tuple[str, list]:
    """'grid.spacing_pct=0.3,0.5' -> ('grid.spacing_pct', [0.3, 0.5]); values are TOML literals
    (a bare word is a string)."""
    key, sep, values = spec.partition("=")
    key = key.strip()
    section, dot, name = key.partition(".")
    items = [v.strip() for v in values.split(",")] if sep else []
    if not (sep and dot and section and name) or not items or "" in items:
        raise schema.ConfigError("--sweep", spec, "expected section.key=value1,value2,...")
    return key, [_toml_value(v) for v in items]


def _toml_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def sweep_configs(base: schema.BotConfig, sweeps: list[tuple[str, list]]) -> list[tuple[dict, schema.BotConfig]]:
    """Every combination of the swept values, each validated as if it were written in the file."""
    keys = [key for key, _ in sweeps]
    if len(set(keys)) != len(keys):
        raise schema.ConfigError("--sweep", ", ".join(keys), "a key is swept twice")
    for key in keys:
        if key in _OWNED:
            raise schema.ConfigError("--sweep", key, "set by the backtest itself (--data, the state directory, "
                                                     "the paper venue)")
    raw = _raw_toml(base)
    runs = []
    for combo in itertools.product(*(values for _, values in sweeps)):
        data = copy.deepcopy(raw)
        for key, value in zip(keys, combo):
            section, _, name = key.partition(".")
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                raise schema.ConfigError("--sweep", key, f"{section} is not a [section]")
            table[name] = value
        runs.append((dict(zip(keys, combo)), schema.parse(data, Path("--sweep"))))
    return runs


_OWNED = ("paper.data", "bot.state_dir", "bot.exchange")


def _raw_toml(config: schema.BotConfig) -> dict:
    source = Path(config.source)
    return tomllib.loads(source.read_text()) if source.is_file() else {}


def _single(config, data, out: Path, progress) -> int:
    from sim.backtest.report import print_summary, write_report, write_summary
    from sim.backtest.run import StateDir, backtest, backtest_config
    with StateDir(out / "state") as state:
        result = backtest(backtest_config(config, data, state), progress.callback("backtest"))
    summary = result.summary
    write_summary(out / "summary.json", summary)
    write_report(out / "report.png", result.series, _title(config, data))
    progress.stop()
    print_summary(summary, out)
    return _agree(summary)


def _sweep(runs, keys: list[str], data, out: Path, progress) -> int:
    from sim.backtest.report import print_ranking, write_summary
    from sim.backtest.run import StateDir, backtest, backtest_config
    rows = []
    for number, (values, config) in enumerate(runs, start=1):
        label = " ".join(f"{k}={v}" for k, v in values.items())
        with StateDir() as state:
            result = backtest(backtest_config(config, data, state),
                              progress.callback(f"{number}/{len(runs)} {label}"))
        summary = {"sweep": values, **result.summary}
        write_summary(out / "sweep" / f"{number:02d}" / "summary.json", summary)
        rows.append((values, summary))
    progress.stop()
    ranked = sorted(rows, key=lambda row: -row[1]["score"])     # stable: ties keep the given order
    write_summary(out / "sweep.json", {"keys": keys, "score": "realized_pnl + unrealized_pnl - fees",
                                       "ranked": [s for _, s in ranked]})
    print_ranking(ranked, keys)
    print(f"wrote {out / 'sweep.json'} and {len(rows)} summaries under {out / 'sweep'}")
    return max(_agree(s) for _, s in rows)


def _agree(summary: dict) -> int:
    if summary["final_position"] != summary["exchange_position"]:
        print(f"gridbot: the bot's position {summary['final_position']} is not the venue's "
              f"{summary['exchange_position']}", file=sys.stderr)
        return 1
    return 0


def _title(config, data) -> str:
    g = config.grid
    return (f"{Path(data).name}: {config.market.symbol} {g.levels_per_side} levels a side, {g.spacing} "
            f"{g.spacing_pct}%, size {g.order_size}")


class _logging_to:
    """The actors' log lines go to a file during a backtest (the console keeps the progress bar);
    the console sink is put back afterwards."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        from loguru import logger
        self.path.parent.mkdir(parents=True, exist_ok=True)
        logger.remove()
        self.sink = logger.add(self.path, level="INFO", mode="w")
        return self

    def __exit__(self, *exc) -> None:
        from loguru import logger
        logger.remove(self.sink)
        logger.add(sys.stderr)


class _progress:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __enter__(self):
        from rich.console import Console
        console = Console(stderr=True)
        self.bar = None
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("candles"), TimeRemainingColumn(), console=console, transient=True)
            self.bar.start()
        return self

    def callback(self, description: str):
        if self.bar is None:
            return None
        task = self.bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)
        return update

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __exit__(self, *exc) -> None:
        self.stop()
