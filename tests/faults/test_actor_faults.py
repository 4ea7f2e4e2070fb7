"""Fault injection, actor by actor, on multiprocTCPBase while fills happen: each of the seven actors is
asked to exit (ActorExitRequest), SIGKILLed, and made to raise inside a handler; a hung actor (SIGSTOP)
is found by its missing heartbeats and killed. After each, the supervisor rebuilds it from the exchange
and the journal, trading resumes, and at the end DESIGN.md's invariants hold: every venue fill journaled
exactly once, the ledger equal to the exchange, no order left behind, never two orders at one level."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import admin_json, live_processes_with_arg, wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.multiproc]
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ROLES = ("gateway", "guarantor", "orderbook", "position", "grid", "risk", "balance")


def start(tmp_path, extra: str = "") -> tuple[subprocess.Popen, Path]:
    state = tmp_path / "state"
    config = tmp_path / "bot.toml"
    config.write_text(f'[bot]\nid = "faults{os.getpid()}"\n[timing]\nrestart_limit = 10\n{extra}')
    bot = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(config),
                            "--state-dir", str(state), "--summary", str(tmp_path / "s.json"), "--speed", "900"],
                           stdout=open(tmp_path / "out.txt", "w"), stderr=open(tmp_path / "err.txt", "w"), env=ENV)
    return bot, state


gridbot = admin_json


def status(state) -> dict:
    return gridbot("status", "--state-dir", str(state))


def send(state, role: str, kind: str) -> None:
    assert gridbot("inject", role, kind, "--state-dir", str(state))["ok"]


def trading(state, **more) -> dict:
    def check():
        s = status(state)
        ok = s["mode"] == "trading" and (s["open_orders"] or 0) > 0 and all(
            s["actors"][r]["pid"] for r in ROLES) and all(
            (s["actors"][r]["restarts"] >= n) for r, n in more.items())
        return s if ok else None
    return wait_until(lambda: (state / "admin.json").exists() and check(), 60, f"trading {more}")


def more_fills(state, than: int) -> dict:
    return wait_until(lambda: (lambda s: s if (s["fills"] or 0) > than else None)(status(state)), 60,
                      f"fills beyond {than}")


def finish(bot, tmp_path, state) -> dict:
    gridbot("shutdown", "--state-dir", str(state), "--reason", "test over")
    bot.wait(timeout=90)
    assert bot.returncode == 0, (tmp_path / "err.txt").read_text()[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    venue = json.loads((state / "paper_venue.pkl").read_text())["engine"]
    venue_fills = sorted(str(f[0]) for f in venue["fills"])
    db = sqlite3.connect(state / "journal.db")
    journal_fills = [r[0] for r in db.execute("SELECT trade_id FROM fills")]
    db.close()
    assert sorted(journal_fills) == venue_fills, "a fill lost or counted twice"
    assert summary["settled"] is True and summary["position"] == summary["exchange_position"]
    assert summary["exchange_open_orders"] == 0
    resting = Counter((o[4], o[5]) for o in venue["orders"] if o[-1] in ("open", "partially_filled"))
    assert not resting
    wait_until(lambda: not live_processes_with_arg(str(state)), 15, "every bot process gone")
    return summary


@pytest.mark.parametrize("role", ROLES)
def test_each_actor_survives_exit_sigkill_and_a_raising_handler(tmp_path, role):
    bot, state = start(tmp_path)
    try:
        before = trading(state)
        fills = more_fills(state, 0)["fills"]
        send(state, role, "exit")
        trading(state, **{role: 1})
        os.kill(status(state)["actors"][role]["pid"], signal.SIGKILL)
        trading(state, **{role: 2})
        send(state, role, "raise")
        after = trading(state, **{role: 3})
        assert after["actors"][role]["pid"] != before["actors"][role]["pid"]
        more_fills(state, fills)
        summary = finish(bot, tmp_path, state)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert summary["restarts"] == 3


def test_a_hung_actor_is_killed_by_its_missing_heartbeats_and_rebuilt(tmp_path):
    bot, state = start(tmp_path, "heartbeat_timeout_s = 3.0\n")
    try:
        before = trading(state)
        pid = before["actors"]["grid"]["pid"]
        os.kill(pid, signal.SIGSTOP)
        after = trading(state, grid=1)
        assert after["actors"]["grid"]["pid"] != pid
        more_fills(state, after["fills"] or 0)
        finish(bot, tmp_path, state)
    finally:
        if bot.poll() is None:
            bot.kill()
    db = sqlite3.connect(state / "journal.db")
    hung = [d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'hung'")]
    db.close()
    assert hung == [f"grid pid {pid}"]


def test_a_killed_supervisor_is_recreated_by_the_launcher_and_trading_resumes(tmp_path):
    bot, state = start(tmp_path)
    try:
        before = trading(state)
        fills = more_fills(state, 0)["fills"]
        os.kill(before["supervisor_pid"], signal.SIGKILL)
        after = wait_until(lambda: (lambda s: s if s and s["supervisor_pid"] != before["supervisor_pid"] and
                                    s["mode"] == "trading" and (s["open_orders"] or 0) > 0 else None)(
            gridbot("status", "--state-dir", str(state), tolerate=True)), 60, "a new supervisor trading")
        old = {before["actors"][r]["pid"] for r in ROLES}
        assert old.isdisjoint(after["actors"][r]["pid"] for r in ROLES)    # every actor rebuilt
        more_fills(state, fills)
        finish(bot, tmp_path, state)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert "starting a new one" in (tmp_path / "out.txt").read_text()
