"""Start the local Binance spot exchange in its own process for a test, and drive its /control port.

    with start_bn_sim(tmp_path, accounts=[("KEY", "SECRET", {"USDT": "10000"})]) as sim:
        sim.point_python_binance()          # BaseClient.API_URL etc. at sim.url
        client = Client("KEY", "SECRET", ping=False)
        sim.control("pause"); sim.control("set_price", symbol="BTCUSDT", price="46000")

The process is started as `gridbot exchange-sim binance ... --port 0 --ready-file ...` (through
`python -m sim.binance`) from the repo root; `start_bn_sim` returns once the ready file names the URL
(or raises with the server's stderr).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import wait_until

__all__ = ["BnSim", "start_bn_sim", "REPO"]

REPO = Path(__file__).resolve().parents[1]
_ids = itertools.count(1)


class BnSim:
    """A running simulator process: `.url`, `.pid`, `.proc`, `.control(op, **kw)`, `.stop()`, `.kill()`."""

    def __init__(self, proc: subprocess.Popen, url: str, stderr_path: Path, state: Path | None):
        self.proc = proc
        self.url = url
        self.pid = proc.pid
        self.stderr_path = stderr_path
        self.state = state

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    def point_python_binance(self) -> None:
        """Aim python-binance's class attributes at this server (set before constructing clients)."""
        from binance.base_client import BaseClient
        from binance.ws.streams import BinanceSocketManager

        BaseClient.API_URL = self.url + "/api"
        BaseClient.WS_API_URL = self.ws_url + "/ws-api/v3"
        BinanceSocketManager.STREAM_URL = self.ws_url + "/"

    def control(self, op: str, timeout: float = 10, **kw) -> dict:
        """POST /control {"op": op, **kw}; raises RuntimeError with the server's answer on an error."""
        data = json.dumps({"op": op, **kw}).encode()
        request = urllib.request.Request(self.url + "/control", data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"control {op} failed: {exc.code} {exc.read().decode()}") from None

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait: the server saves its state and exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self, timeout: float = 15) -> int:
        """SIGKILL and wait: what a crash looks like."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def __enter__(self) -> "BnSim":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.kill()


def start_bn_sim(tmp_path, *extra_args: str, accounts=(), data=None, speed: float = 60.0,
                 state=None, deadline_s: float = 20.0) -> BnSim:
    """Launch the simulator; `accounts` is [(api_key, secret, {asset: amount}), ...], `extra_args` go
    to the command line as they are (e.g. "--symbol", "ETHUSDT", "--faults", "http_429=1")."""
    n = next(_ids)
    tmp = Path(tmp_path)
    ready = tmp / f"bn-sim-{n}.ready.json"
    stderr_path = tmp / f"bn-sim-{n}.stderr"
    ready.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "sim.binance", "--port", "0", "--ready-file", str(ready),
           "--speed", str(speed)]
    for key, secret, balances in accounts:
        funds = ",".join(f"{asset}={amount}" for asset, amount in balances.items())
        cmd += ["--account", f"{key}:{secret}:{funds}"]
    if data is not None:
        cmd += ["--data", str(data)]
    if state is not None:
        cmd += ["--state", str(state)]
    cmd += list(extra_args)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)

    def announced() -> dict | None:
        info = json.loads(ready.read_text()) if ready.exists() else {}
        return info if info.get("pid") == proc.pid else None

    try:
        info = wait_until(lambda: announced() or proc.poll() is not None, deadline_s, "the simulator's ready file",
                          poll_s=0.02)
    except AssertionError:
        info = None
    if isinstance(info, dict):
        return BnSim(proc, info["url"], stderr_path, Path(state) if state else None)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    raise RuntimeError(f"binance simulator did not start (exit {proc.returncode}): "
                       f"{stderr_path.read_text(errors='replace')[-2000:]}")
