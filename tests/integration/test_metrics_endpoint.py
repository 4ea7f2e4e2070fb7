"""During a paper `gridbot run`, 127.0.0.1:bot.metrics_port/metrics serves fills by source, position,
open orders, the grid level gap, the ledger drift and restarts (issue 9's acceptance); the console gets
human log lines, and nothing is left listening afterwards."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.launcher import free_port
from tests.helpers import live_processes_with_arg, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]
REPO = Path(__file__).resolve().parents[2]
REQUIRED = ("fills_total", "position", "exchange_position", "orders_open", "grid_level_gap_pct",
            "shadow_ledger_drift", "restarts_total", "pnl_realized", "pnl_unrealized", "drawdown", "mode",
            "request_weight_used", "circuit_breaker_open")


def scrape(port: int) -> dict | None:
    """{family name: [(labels, value), ...]} or None while nothing answers."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    families = {}
    for family in text_string_to_metric_families(text):
        names = {family.name} | {s.name for s in family.samples}
        for name in names:
            families.setdefault(name, [])
        for sample in family.samples:
            families[sample.name].append((sample.labels, sample.value))
    return families


def test_paper_run_serves_the_required_metrics(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    config = tmp_path / "metrics.toml"
    config.write_text(f'[bot]\nid = "metrics{os.getpid()}"\nstate_dir = "{state}"\nmetrics_port = {port}\n'
                      '[paper]\nspeed = 1200.0\n')
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    bot = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(config),
                            "--duration", "120"], stdout=open(out, "w"), stderr=open(err, "w"),
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        def filled():
            m = scrape(port)
            return m if m and sum(v for _, v in m.get("fills_total", [])) > 0 else None

        metrics = wait_until(filled, 90, "fills_total > 0 on the metrics endpoint", poll_s=0.5)
        for name in REQUIRED:
            assert name in metrics, name
        sources = {labels["source"] for labels, _ in metrics["fills_total"]}
        assert sources and sources <= {"ws", "rest", "recon", "backfill", "status"}
        assert metrics["orders_open"][0][1] > 0
        assert metrics["position"] and metrics["shadow_ledger_drift"] and metrics["restarts_total"][0][1] == 0
        gap = metrics["grid_level_gap_pct"][0][1]
        assert 0 < gap < 5                          # about one spacing (0.15%) while the price is inside
        assert dict((labels["mode"], v) for labels, v in metrics["mode"])["trading"] == 1
        assert all(v == 1 for _, v in metrics["actor_up"]) and len(metrics["actor_up"]) == 7
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(timeout=60)
    assert bot.returncode == 0, err.read_text()[-2000:]
    assert scrape(port) is None                     # the endpoint went with the bot
    assert f"metrics on 127.0.0.1:{port}/metrics" in out.read_text()
    console = err.read_text()
    assert "INFO    supervisor mode trading" in console and "fills " in console
    assert not any(line.startswith("{") for line in console.splitlines())     # human lines, not JSON
    assert live_processes_with_arg(str(config)) == []


def test_a_busy_metrics_port_stops_the_run_before_it_trades(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "busy.toml"
        config.write_text(f'[bot]\nid = "busy{os.getpid()}"\nstate_dir = "{tmp_path / "state"}"\n'
                          f'metrics_port = {port}\n')
        proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(config),
                               "--duration", "5"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "bot.metrics_port" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "state" / "journal.db").exists()
