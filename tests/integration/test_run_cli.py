"""`gridbot run` end to end on multiprocTCPBase, as a user runs it: fills happen, the ledger equals the
paper exchange, every fill got its counter-order one level away, and no process is left behind."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import live_processes_with_arg

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]
REPO = Path(__file__).resolve().parents[2]


def gridbot(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), "run", *args], capture_output=True,
                          text=True, timeout=150, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_default_run_trades_and_leaves_nothing_behind(tmp_path):
    state = tmp_path / "state"
    proc = gridbot("--duration", "20", "--summary", "s.json", "--state-dir", str(state), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["fills"] > 0
    assert summary["position"] == summary["exchange_position"]
    assert summary["exchange_open_orders"] == 0
    assert summary["restarts"] == 0
    for key in ("fills", "position", "exchange_position", "open_orders", "realized_pnl", "fees", "restarts"):
        assert key in summary
    assert live_processes_with_arg(str(state)) == []


def test_january_first_hours_every_fill_gets_its_counter_order(tmp_path, first_hours_csv):
    state = tmp_path / "state"
    proc = gridbot("--data", str(first_hours_csv), "--speed", "1800", "--duration", "15",
                   "--summary", "s.json", "--state-dir", str(state), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["fills"] >= 5
    assert Decimal(summary["position"]) == Decimal(summary["exchange_position"])

    db = sqlite3.connect(state / "journal.db")
    orders = {cid: (side, level, Decimal(size), created) for cid, side, level, size, created in
              db.execute("SELECT client_id, side, level, size, created_at FROM orders WHERE origin = 'grid'")}
    filled = [(cid, recorded) for cid, recorded in
              db.execute("SELECT client_id, MAX(recorded_at) FROM fills GROUP BY client_id")]
    last_order = max(created for *_, created in orders.values())
    checked = 0
    for cid, recorded in filled:
        side, level, _, _ = orders[cid]
        if recorded >= last_order:
            continue            # filled after the last order went out (the shutdown began)
        counter_side, counter_level = ("sell", level + 1) if side == "buy" else ("buy", level - 1)
        assert any(s == counter_side and lv == counter_level and created >= recorded
                   for s, lv, _, created in orders.values()), f"no counter-order for {side} fill at level {level}"
        checked += 1
    assert checked >= 3
    assert live_processes_with_arg(str(state)) == []
