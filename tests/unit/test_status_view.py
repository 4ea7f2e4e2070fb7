"""The status table (`gridbot run` on a terminal, `gridbot status`) and the console lines of `gridbot run`:
log records relayed from gridbot.log at INFO and above, a fills summary, no secret."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from actors.launcher import plain
from actors.status_view import FillNotes, LogRelay, StatusConsole, render, render_text
from tests.unit.test_metrics import summary

REPO = Path(__file__).resolve().parents[2]
NOW = 1_000_000.5          # the summary's heartbeats are at 1_000_000 - i


def test_the_table_shows_what_a_user_needs():
    console = Console(record=True, width=130, file=io.StringIO())
    console.print(render(summary(), now=NOW))
    text = console.export_text()
    for needle in ("paper-btc", "TRADING", "reconciled with the exchange", "39939.4",
                   "0.002", "(exchange 0.001)", "drift 0.001", "open orders", "19", "fills", "rest 1, ws 3",
                   "realized 0.12", "unrealized -0.0012", "fees 0.035964", "drawdown", "0.036982", "peak 0.119818",
                   "anchor 40000", "spacing 0.15%", "20/20 levels working", "circuit breaker", "closed",
                   "emergency", "none", "restarts"):
        assert needle in text, needle
    rows = {line.split("│")[2].split()[0]: line for line in text.splitlines()
            if line.count("│") >= 3 and line.split("│")[2].split()}
    assert "101" in rows["gateway"] and "0.5s ago" in rows["gateway"] and "yes" in rows["gateway"]
    assert rows["gateway"].split()[-4] == "2"            # the gateway's restarts
    assert "107" in rows["balance"] and "6.5s ago" in rows["balance"]


def test_emergency_breaker_and_a_dead_actor_stand_out():
    s = summary(mode="emergency", emergency="counter-order failed 5 times")
    s["details"]["risk"]["breaker"] = {"open": True, "open_for_s": 12.5, "reason": "rate limited: 429", "trips": 3}
    s["actors"]["grid"]["alive"] = False
    text = render_text(s, width=140, now=NOW)
    assert "EMERGENCY" in text and "EMERGENCY STOP: counter-order failed 5 times" in text
    assert "OPEN: rate limited: 429" in text and "12.5s left" in text and "3 trips" in text
    grid_row = next(line for line in text.splitlines() if " grid " in line and "pid" not in line and "anchor" not in line)
    assert "NO" in grid_row


def test_gridbot_status_renders_the_admin_json_copy_the_same():
    assert render_text(plain(summary()), now=NOW) == render_text(summary(), now=NOW)


def test_an_early_summary_renders():
    text = render_text({"mode": "starting", "actors": {"gateway": {"pid": None, "restarts": 0,
                                                                   "last_heartbeat": None, "alive": False}}}, now=NOW)
    assert "STARTING" in text and "never" in text


def _write(path: Path, level: str, no: int, message: str, role: str = "grid") -> None:
    record = {"level": {"name": level, "no": no}, "message": message, "time": {"timestamp": NOW},
              "extra": {"role": role}, "name": "actors.grid", "exception": None}
    with open(path, "a") as f:
        f.write(json.dumps({"text": message, "record": record}) + "\n")


def test_relay_starts_at_the_end_and_keeps_info_and_above(tmp_path):
    log = tmp_path / "gridbot.log"
    _write(log, "INFO", 20, "from an earlier run")
    relay = LogRelay(log)
    _write(log, "DEBUG", 10, "no address for risk; dropped PriceTick")
    _write(log, "INFO", 20, "mode trading: reconciled", role="supervisor")
    _write(log, "WARNING", 30, "gateway exited; restarting in 0.2s", role="supervisor")
    with open(log, "a") as f:
        f.write('{"text": "half a li')                   # a line still being written
    lines = relay.read()
    assert [level for level, _ in lines] == ["INFO", "WARNING"]
    assert lines[0][1].endswith("INFO    supervisor mode trading: reconciled")
    assert "restarting" in lines[1][1]
    assert relay.read() == []
    log.write_text("")                                  # truncated: start again
    _write(log, "ERROR", 40, "EMERGENCY STOP: x", role="supervisor")
    assert [level for level, _ in relay.read()] == ["ERROR"]


def test_fills_summary_is_throttled_and_flushed_before_the_shutdown():
    now = [0.0]
    notes = FillNotes(every_s=10, clock=lambda: now[0])
    (level, line), = notes.take(summary(fills=4, fills_by_source={"ws": 3, "rest": 1}))     # the first poll
    assert level == "INFO" and "launcher   fills 4 (rest 1, ws 3) · position 0.002 (exchange 0.001)" in line
    now[0] = 10
    assert notes.take(summary(fills=4, fills_by_source={"ws": 3, "rest": 1})) == []      # nothing new
    (_, line), = notes.take(summary(fills=7, fills_by_source={"ws": 5, "rest": 1, "recon": 1}))
    assert "fills 7 (+3: recon 1, ws 2)" in line
    now[0] = 15
    assert notes.take(summary(fills=8, fills_by_source={"ws": 6, "rest": 1, "recon": 1})) == []
    (_, line), = notes.take(summary(fills=9, fills_by_source={"ws": 7, "rest": 1, "recon": 1}), force=True)
    assert "fills 9 (+2: ws 2)" in line
    fresh = FillNotes(every_s=10, clock=lambda: now[0])
    assert fresh.take(summary(fills=0, fills_by_source={})) == []
    assert "fills 2 (+2: ws 2)" in fresh.take(summary(fills=2, fills_by_source={"ws": 2}))[0][1]


def test_console_without_a_terminal_writes_lines_to_stderr_only(tmp_path):
    log = tmp_path / "gridbot.log"
    out, err = io.StringIO(), io.StringIO()
    view = StatusConsole(log, live=False, out=out, err=err)
    _write(log, "INFO", 20, "grid anchored at 40000")
    view.update(summary())
    view.update(summary(fills=6, fills_by_source={"ws": 5, "rest": 1}))   # within the pace: held back
    view.stop_live()                                                      # the loop ended: flushed
    _write(log, "INFO", 20, "mode stopping: shutdown", role="supervisor")
    view.close()
    lines = err.getvalue().splitlines()
    assert out.getvalue() == ""
    assert "grid anchored at 40000" in lines[0] and "fills 4 (rest 1, ws 3)" in lines[1]
    assert "fills 6 (+2: ws 2)" in lines[2] and "mode stopping" in lines[3] and len(lines) == 4


def test_live_console_draws_the_table_and_lines_above_it(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = tmp_path / "gridbot.log"
    out = Terminal()
    view = StatusConsole(log, live=True, out=out, err=io.StringIO())
    view.update(summary())
    _write(log, "WARNING", 30, "gateway exited; restarting in 0.2s", role="supervisor")
    view.update(summary(mode="halted"))
    view.stop_live()
    text = out.getvalue()
    assert "TRADING" in text and "HALTED" in text and "gateway exited; restarting" in text


def test_actor_logs_are_json_with_their_role_and_no_secret(tmp_path):
    """An actor in its own process: nothing on the terminal, JSON lines naming it, a key redacted."""
    key = "0x" + "ab" * 32
    api = "Zz9" * 21 + "Q"
    code = ("import sys; from loguru import logger; from actors.shell import configure_logging\n"
            f"configure_logging({str(tmp_path)!r}, 'gateway', 'INFO')\n"
            "logger.debug('chatter'); logger.info('signed with {} and {}', sys.argv[1], sys.argv[2])\n"
            "logger.warning('stream down')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRIDBOT_LAUNCHER_PID": "1"}
    proc = subprocess.run([sys.executable, "-c", code, key, api], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    raw = (tmp_path / "gridbot.log").read_text()
    assert key[2:] not in raw and api not in raw and "chatter" not in raw
    records = [json.loads(line)["record"] for line in raw.splitlines()]
    assert [r["message"] for r in records] == ["signed with [redacted] and [redacted]", "stream down"]
    assert {r["extra"]["role"] for r in records} == {"gateway"}


def test_actors_in_the_launchers_process_print_human_info_lines(tmp_path):
    """simpleSystemBase (tests, backtests): loguru's DEBUG default gives way to human lines at INFO."""
    code = ("from loguru import logger; from actors.shell import configure_logging, mark_launcher\n"
            f"mark_launcher(); configure_logging({str(tmp_path)!r}, 'grid', 'INFO')\n"
            "logger.debug('chatter'); logger.bind(role='grid').info('grid anchored at 40000')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "chatter" not in proc.stderr
    assert lines[0].split()[1:] == ["INFO", "grid", "grid", "anchored", "at", "40000"]
    assert not lines[0].startswith("{")


def test_decimals_print_exactly():
    text = render_text(summary(price=Decimal("39939.40000"), realized_pnl=Decimal("1E+1")), now=NOW)
    assert "39939.4 " in text and "realized 10 " in text
