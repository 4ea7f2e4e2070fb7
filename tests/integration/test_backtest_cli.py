"""`gridbot backtest` as a user runs it: a few days of January 2022 through the real command line.
Two runs in separate processes (different hash seeds) write the same summary.json apart from the
timing keys; a sweep prints its ranked table; a config error exits 2 with one line; a terminal gets
a progress bar and a pipe gets none."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading

import pytest

from actors.cli import main
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)
TIMING = ("wall_seconds", "candles_per_second")


@pytest.fixture(scope="module")
def days_csv(tmp_path_factory, january_csv):
    path = tmp_path_factory.mktemp("data") / "three-days.csv"
    path.write_text("\n".join(january_csv.read_text().splitlines()[:1 + 3 * 1440]) + "\n")
    return path


@pytest.fixture(scope="module")
def day_csv(tmp_path_factory, january_csv):
    path = tmp_path_factory.mktemp("data") / "one-day.csv"
    path.write_text("\n".join(january_csv.read_text().splitlines()[:1 + 1440]) + "\n")
    return path


def gridbot(*args, hash_seed="0", stderr=subprocess.PIPE):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), "backtest", *args], stdout=subprocess.PIPE,
                          stderr=stderr, text=True, timeout=100, env=env, cwd=REPO)


def test_two_runs_write_the_same_summary_and_both_files(tmp_path, days_csv):
    runs = [gridbot("--data", str(days_csv), "--out", str(tmp_path / name), hash_seed=seed)
            for name, seed in (("a", "1"), ("b", "2"))]
    summaries = []
    for run, name in zip(runs, ("a", "b")):
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""                                  # no bar on a pipe, the logs go to a file
        assert "backtest summary" in run.stdout and "candles_per_second" in run.stdout
        assert (tmp_path / name / "report.png").read_bytes()[:4] == b"\x89PNG"
        assert "grid anchored" in (tmp_path / name / "backtest.log").read_text()
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
    a, b = ({k: v for k, v in s.items() if k not in TIMING} for s in summaries)
    assert a == b
    assert summaries[0]["candles"] == 3 * 1440 and summaries[0]["fills"] > 10
    assert summaries[0]["final_position"] == summaries[0]["exchange_position"]
    # the same --out again: the previous run's state directory is replaced, not rebuilt from
    again = gridbot("--data", str(days_csv), "--out", str(tmp_path / "a"))
    assert again.returncode == 0, again.stderr
    third = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert {k: v for k, v in third.items() if k not in TIMING} == a


def test_sweep_prints_a_ranked_table(tmp_path, day_csv):
    run = gridbot("--data", str(day_csv), "--out", str(tmp_path / "sw"), "--sweep", "grid.spacing_pct=0.1,0.3",
                  "--sweep", "grid.levels_per_side=4,8")
    assert run.returncode == 0, run.stderr
    ranked = json.loads((tmp_path / "sw" / "sweep.json").read_text())["ranked"]
    assert len(ranked) == 4
    scores = [float(s["score"]) for s in ranked]
    assert scores == sorted(scores, reverse=True)
    combos = {(s["sweep"]["grid.spacing_pct"], s["sweep"]["grid.levels_per_side"]) for s in ranked}
    assert combos == {(0.1, 4), (0.1, 8), (0.3, 4), (0.3, 8)}
    assert "sweep ranked by score" in run.stdout
    rows = [line for line in run.stdout.splitlines() if line.strip().startswith("│ ") and "│ #" not in line]
    table = [line.split("│")[1:-1] for line in rows]
    assert [cells[0].strip() for cells in table] == ["1", "2", "3", "4"]
    best = ranked[0]["sweep"]
    assert table[0][1].strip() == str(best["grid.spacing_pct"]) and table[0][2].strip() == str(best["grid.levels_per_side"])
    for number in range(1, 5):
        assert (tmp_path / "sw" / "sweep" / f"{number:02d}" / "summary.json").is_file()


def test_a_bad_config_exits_2_with_one_line(tmp_path, day_csv):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nspacing_pct = -1\n")
    run = gridbot("--data", str(day_csv), "--config", str(bad), "--out", str(tmp_path / "o"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("gridbot: config error:")
    assert "grid.spacing_pct" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, problem", [
    (["--data", "no-such.csv"], "paper.data: no such file"),
    (["--sweep", "grid.spacing_pct=0.3,-2"], "--sweep: grid.spacing_pct: must be greater than 0"),
    (["--sweep", "spacing=1"], "expected section.key=value1,value2"),
])
def test_config_errors_in_process(tmp_path, day_csv, capsys, args, problem):
    argv = ["backtest", "--data", str(day_csv), "--out", str(tmp_path / "o"), *args]
    if args[0] == "--data":
        argv = ["backtest", *args, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err


def test_malformed_data_exits_2_with_one_line(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("timestamp,open,high,low,close\n2022-01-01 00:00:00,1,2,0.5,1\n2022-01-01 00:01:00,1,x,1,1\n")
    run = gridbot("--data", str(data), "--out", str(tmp_path / "o"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "malformed candle row" in run.stderr


def test_a_terminal_gets_a_progress_bar(tmp_path, day_csv):
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        run = gridbot("--data", str(day_csv), "--out", str(tmp_path / "o"), stderr=slave)
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    assert run.returncode == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "backtest" in shown and "candles" in shown and "1440/1440" in shown


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_january_month_with_the_issue_grid(tmp_path, january_csv):
    """Issue 9's acceptance run: the whole file, the default paper config's grid made 20 levels a side
    at 0.5% geometric spacing (two identical runs are checked on fewer days above)."""
    config = tmp_path / "issue.toml"
    config.write_text('[grid]\nlevels_per_side = 20\nspacing = "geometric"\nspacing_pct = 0.5\n')
    run = gridbot("--data", str(january_csv), "--config", str(config), "--out", str(tmp_path / "jan"))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "jan" / "summary.json").read_text())
    assert summary["candles"] == 45_031 and summary["fills"] > 300
    assert summary["final_position"] == summary["exchange_position"]
    assert summary["status_queries"] == 0 and summary["mode"] == "trading"
    assert (tmp_path / "jan" / "report.png").stat().st_size > 50_000
