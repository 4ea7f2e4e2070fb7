"""Remote admin from another process: `gridbot status|halt|resume|flatten|shutdown --state-dir DIR`
against a running paper bot. Each command does what it says on the exchange, is journaled, and no
command ever starts an actor system of its own or stops the bot by accident."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import gridbot_cli, live_processes_with_arg, wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.multiproc]
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


gridbot = gridbot_cli


def status(state) -> dict:
    proc = gridbot("status", "--state-dir", str(state), "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def venue(state) -> dict:
    return json.loads((state / "paper_venue.pkl").read_text())["engine"]


def venue_position(state) -> Decimal:
    return Decimal(venue(state)["ledger"]["positions"].get("paper", {}).get("BTC", ["0"])[0])


def venue_open_orders(state) -> int:
    return sum(1 for o in venue(state)["orders"] if o[10] in ("open", "partially_filled"))


def test_admin_commands_from_another_process(tmp_path):
    state = tmp_path / "state"
    bot = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), "run", "--state-dir", str(state),
                            "--summary", str(tmp_path / "s.json"), "--speed", "600"],
                           stdout=open(tmp_path / "out.txt", "w"), stderr=open(tmp_path / "err.txt", "w"), env=ENV)
    try:
        first = wait_until(lambda: (state / "admin.json").exists() and
                           (lambda s: s if s["mode"] == "trading" and (s["open_orders"] or 0) > 0 else None)(
                               status(state)), 60, "the bot trading")
        for key in ("mode", "actors", "position", "exchange_position", "open_orders", "fills", "realized_pnl"):
            assert key in first
        assert set(first["actors"]) == {"gateway", "guarantor", "orderbook", "position", "grid", "risk", "balance"}
        assert all({"pid", "restarts", "last_heartbeat"} <= set(a) for a in first["actors"].values())
        assert oct((state / "hmac.key").stat().st_mode & 0o777) == "0o600"
        thief = tmp_path / "thief"                       # knows the port, not the key
        thief.mkdir()
        (thief / "admin.json").write_text((state / "admin.json").read_text())
        refused = gridbot("halt", "--state-dir", str(thief))
        assert refused.returncode == 1 and "cannot authenticate" in refused.stderr
        assert status(state)["mode"] == "trading"

        halt = gridbot("halt", "--state-dir", str(state), "--reason", "test halt")
        assert halt.returncode == 0 and "halted" in halt.stdout, halt.stderr
        halted = wait_until(lambda: (lambda s: s if s["exchange_open_orders"] == 0 and s["open_orders"] == 0
                                     else None)(status(state)), 30, "every order cancelled")
        assert halted["mode"] == "halted"
        fills = halted["fills"]

        resume = gridbot("resume", "--state-dir", str(state), "--reason", "test resume")
        assert resume.returncode == 0, resume.stderr
        wait_until(lambda: (lambda s: s["mode"] == "trading" and (s["open_orders"] or 0) > 0)(status(state)),
                   30, "trading again")
        wait_until(lambda: (status(state)["fills"] or 0) > (fills or 0) and
                   Decimal(status(state)["exchange_position"] or 0) != 0, 60, "a position to flatten")

        flatten = gridbot("flatten", "--state-dir", str(state), "--reason", "test flatten")
        assert flatten.returncode == 0, flatten.stderr
        # The exchange's own book (the paper venue's file), not the bot's view of it, which waits for an audit
        wait_until(lambda: venue_position(state) == 0 and venue_open_orders(state) == 0, 30, "flat on the exchange")
        flat = status(state)
        assert flat["mode"] == "halted" and Decimal(flat["position"]) == 0 and flat["open_orders"] == 0

        again = gridbot("resume", "--state-dir", str(state))
        assert again.returncode == 0
        shutdown = gridbot("shutdown", "--state-dir", str(state), "--reason", "test shutdown")
        assert shutdown.returncode == 0, shutdown.stderr
        bot.wait(timeout=60)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert bot.returncode == 0, (tmp_path / "err.txt").read_text()[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exchange_open_orders"] == 0 and summary["settled"] is True
    db = sqlite3.connect(state / "journal.db")
    journaled = [d for _, d in db.execute("SELECT id, detail FROM events WHERE kind = 'admin' ORDER BY id")]
    db.close()
    assert [d.split(" ")[0] for d in journaled] == ["halt", "resume", "flatten", "resume", "shutdown"]
    assert "test halt" in journaled[0]
    wait_until(lambda: not live_processes_with_arg(str(state)), 15, "every bot process gone")


def test_admin_command_without_a_running_bot_fails_cleanly_and_starts_nothing(tmp_path):
    state = tmp_path / "state"
    missing = gridbot("status", "--state-dir", str(state))
    assert missing.returncode == 1 and "no bot has run in" in missing.stderr and "Traceback" not in missing.stderr
    state.mkdir()
    (state / "admin.json").write_text(json.dumps({"bot_id": "gone", "admin_port": 1, "pid": 1}))
    stale = gridbot("halt", "--state-dir", str(state))
    assert stale.returncode == 1 and "bot gone is not running" in stale.stderr
    assert not live_processes_with_arg("Admin Port") and not (state / "thespian-admin.log").exists()
