"""Start the local Hyperliquid exchange in its own process for a test, and drive its /control port.

    with start_hl_sim(tmp_path, fund=[(address, "10000")]) as sim:
        info = Info(sim.url, skip_ws=True)
        sim.control("pause"); sim.control("set_price", coin="BTC", px="46000")

The process is started as `python -m sim.hyperliquid ... --port 0 --ready-file ...` from the repo root;
`start_hl_sim` returns once the ready file names the URL (or raises with the server's stderr).
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

__all__ = ["HlSim", "launch_sim", "start_hl_sim", "REPO"]

REPO = Path(__file__).resolve().parents[1]
_ids = itertools.count(1)


class HlSim:
    """A running simulator process (either venue): `.url`, `.pid`, `.proc`, `.control(op, **kw)`,
    `.stop()`, `.kill()`."""

    def __init__(self, proc: subprocess.Popen, url: str, stderr_path: Path, state: Path | None):
        self.proc = proc
        self.url = url
        self.pid = proc.pid
        self.stderr_path = stderr_path
        self.state = state

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

    def __enter__(self) -> "HlSim":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        except subprocess.TimeoutExpired:
            self.kill()


def launch_sim(cls, module: str, label: str, tmp_path, venue_args: list[str], extra_args, speed: float,
               data, state, deadline_s: float):
    """Start `python -m MODULE --port 0 --ready-file ...` from the repo root and return `cls(...)` once
    the ready file names the URL; raise with the server's stderr if it does not come up."""
    n = next(_ids)
    tmp = Path(tmp_path)
    ready = tmp / f"{label}-sim-{n}.ready.json"
    stderr_path = tmp / f"{label}-sim-{n}.stderr"
    ready.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", module, "--port", "0", "--ready-file", str(ready), "--speed", str(speed),
           *venue_args]
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
        return cls(proc, info["url"], stderr_path, Path(state) if state else None)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    raise RuntimeError(f"{module} did not start (exit {proc.returncode}): "
                       f"{stderr_path.read_text(errors='replace')[-2000:]}")


def start_hl_sim(tmp_path, *extra_args: str, fund=(), data=None, speed: float = 60.0,
                 state=None, deadline_s: float = 20.0) -> HlSim:
    """Launch the simulator; `fund` is [(address, usdc), ...], `extra_args` go to the command line
    as they are (e.g. "--page-limit", "50", "--faults", "http_429=1")."""
    funding = [arg for address, usdc in fund for arg in ("--fund", f"{address}:{usdc}")]
    return launch_sim(HlSim, "sim.hyperliquid", "hl", tmp_path, funding, extra_args, speed, data, state, deadline_s)
