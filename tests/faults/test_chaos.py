"""`gridbot chaos` end to end: the bot against the local Hyperliquid and the local Binance with one fault
of every kind, then a halt; the report finds nothing lost, doubled, left behind or out of step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.chaos import BOT_FAULTS, KINDS, BinanceChaos, HyperliquidChaos

VENUES = {"hyperliquid": HyperliquidChaos, "binance": BinanceChaos}

pytestmark = [pytest.mark.timeout(600), pytest.mark.multiproc, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("exchange", sorted(VENUES))
def test_chaos_one_fault_of_every_kind_keeps_every_invariant(tmp_path, exchange):
    kinds = [k for k in KINDS if k in BOT_FAULTS or k in VENUES[exchange].venue_faults]
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), "chaos", "--exchange", exchange,
                           "--faults", str(len(kinds)),
                           "--seed", "11", "--out", str(out)], capture_output=True, text=True, timeout=560,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.exists(), proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["faults_by_kind"] == {kind: 1 for kind in kinds} and report["exchange"] == exchange
    assert report["fills_exchange"] > 0
    assert report["lost_fills"] == report["duplicate_fills"] == report["unknown_fills"] == 0
    assert report["position_matches"] and report["open_orders_after_halt"] == 0
    assert report["doubled_levels_seen"] == report["duplicate_level_orders"] == report["orphan_orders"] == 0
    assert report["violations"] == 0 and report["ok"] and proc.returncode == 0


def test_chaos_rejects_what_it_cannot_run(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), "chaos", "--data", "nope.csv"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "no such file: nope.csv" in proc.stderr and "Traceback" not in proc.stderr
