"""Test helpers: start a bot in-process on either base, poll its status against a deadline."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from actors import launcher
from actors.lifeline import processes_with_arg
from config.schema import BotConfig
from messages.lifecycle import StatusReport, StatusRequest

_ids = itertools.count(1)


def paper_config(state_dir: Path, **sections) -> BotConfig:
    bot = {"state_dir": str(state_dir), "id": f"test{os.getpid()}x{next(_ids)}", **sections.pop("bot", {})}
    paper = {"speed": 1200.0, **sections.pop("paper", {})}
    return BotConfig().with_overrides(bot=bot, paper=paper, **sections)


def status(system, supervisor, timeout: float = 10) -> dict:
    reply = system.ask(supervisor, StatusRequest(next(_ids)), timeout)
    assert isinstance(reply, StatusReport), f"no status reply: {reply!r}"
    return reply.data


def wait_until(predicate, deadline_s: float, what: str = "condition", poll_s: float = 0.05):
    """The one polling loop of the tests: re-evaluate `predicate` until it holds (its value is
    returned) or the deadline passes. The pause between evaluations paces the polling of state that
    offers nothing to block on (another process's HTTP state, a file); it is never the condition."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(min(poll_s, left))


def wait_for(system, supervisor, predicate, deadline_s: float = 60, what: str = "condition") -> dict:
    """Poll status until predicate(status) holds (asking also drives simpleSystemBase's timers)."""
    end = time.monotonic() + deadline_s
    last = {}
    while time.monotonic() < end:
        last = status(system, supervisor)
        if predicate(last):
            return last
    raise AssertionError(f"timed out waiting for {what}; last status: { {k: last.get(k) for k in ('mode', 'fills', 'position', 'exchange_position', 'restarts', 'open_orders')} }")


def live_processes_with_arg(text: str) -> list[int]:
    """Pids of running (non-zombie) processes with `text` in their command line (see
    actors.lifeline.processes_with_arg)."""
    return processes_with_arg(text)


REPO = Path(__file__).resolve().parents[1]


def gridbot_cli(*args: str, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """`gridbot ARGS` in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


def admin_json(*args: str, tolerate: bool = False) -> dict | None:
    """An admin command's --json answer, one command per process (Thespian keeps one system per
    process). `tolerate`: None instead of a failure while the bot cannot answer (between supervisors)."""
    proc = gridbot_cli(*args, "--json")
    if tolerate and proc.returncode == 1:
        return None
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def stop(system) -> None:
    system.shutdown()
    launcher.reap_children(10)
