"""Run a real bot (`gridbot run`, its own processes, the unmodified SDK) against a local Hyperliquid
simulator process, and read back what both sides know: the exchange's fills and positions through its
API and control port, the bot's through its journal and summary."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.helpers import live_processes_with_arg, wait_until

REPO = Path(__file__).resolve().parents[1]
KEY = "0x" + "5a" * 32


def address() -> str:
    from eth_account import Account
    return Account.from_key(KEY).address.lower()


def _toml(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def write_config(path: Path, sections: dict) -> Path:
    """A TOML config from {section: {key: value}}."""
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items()) + "\n"
                            for name, keys in sections.items()))
    return path


def bot_config(tmp_path: Path, url: str, grid: dict | None = None, risk: dict | None = None,
               timing: dict | None = None, **hl) -> Path:
    """A small grid on BTC (5 levels a side, 0.1 % apart, 0.001 BTC) that fills often on 1-minute data."""
    sections = {
        "bot": {"id": f"hltest{os.getpid()}", "exchange": "hyperliquid", "state_dir": str(tmp_path / "state")},
        "market": {"symbol": "BTC"},
        "grid": {"levels_per_side": 5, "spacing": "arithmetic", "spacing_pct": 0.1, "order_size": 0.001,
                 **(grid or {})},
        "risk": {"max_position": 0.01, "max_open_orders": 30, **(risk or {})},
        "timing": {"audit_interval_s": 5.0, "shutdown_timeout_s": 10.0, "startup_timeout_s": 20.0,
                   **(timing or {})},
        "hyperliquid": {"base_url": url, "dead_man_s": 60.0, "dead_man_refresh_s": 20.0, "stream_stale_s": 2.0,
                        "reconnect_max_s": 1.0, **hl},
    }
    return write_config(tmp_path / "hl.toml", sections)


class Bot(subprocess.Popen):
    """`gridbot run` with its output in files (a pipe nobody reads would block a chatty bot)."""

    def communicate(self, input=None, timeout=None) -> tuple[str, str]:
        self.wait(timeout)
        return self.out_path.read_text(errors="replace"), self.err_path.read_text(errors="replace")


def start_bot(tmp_path: Path, config: Path, *args: str, secrets: dict | None = None) -> Bot:
    """`gridbot run --config CONFIG ARGS` with the venue's secrets in its environment (default: the
    Hyperliquid test key)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(secrets or {"GRIDBOT_HL_PRIVATE_KEY": KEY})}
    n = len(list(tmp_path.glob("bot-*.out")))
    out_path, err_path = tmp_path / f"bot-{n}.out", tmp_path / f"bot-{n}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = Bot([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(config), *args],
                   cwd=tmp_path, env=env, stdout=out, stderr=err, text=True, start_new_session=True)
    proc.out_path, proc.err_path = out_path, err_path
    return proc


def user_state(sim) -> dict:
    return sim.control("state")["users"].get(address(), {})


def journal_trade_ids(state: Path) -> list[str]:
    db = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT trade_id FROM fills")]
    finally:
        db.close()


def server_trade_ids(sim) -> list[str]:
    from hyperliquid.info import Info
    info = Info(sim.url, skip_ws=True)
    seen, start = {}, 0
    while True:
        page = info.user_fills_by_time(address(), start, None)
        fresh = [f for f in page if str(f["tid"]) not in seen]
        if not fresh:
            return list(seen)
        for f in fresh:
            seen[str(f["tid"])] = f
        start = max(f["time"] for f in page)


def kill_bot(proc: subprocess.Popen, config: Path) -> None:
    """SIGKILL the launcher, as `kill -9 <gridbot pid>` does: every process of the bot must follow it."""
    assert len(live_processes_with_arg(str(config))) >= 8      # launcher, admin, supervisor, 7 actors
    proc.kill()
    proc.wait(10)
    wait_until(lambda: not live_processes_with_arg(str(config)), 5, "every bot process gone")


def crash(config: Path) -> None:
    """SIGKILL every process of the bot at once: a power cut, not a shutdown."""
    pids = live_processes_with_arg(str(config))
    assert pids, "the bot is not running"
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not live_processes_with_arg(str(config)), 10, "every bot process gone")


def exchange_open_orders(sim) -> list[dict]:
    from hyperliquid.info import Info
    return Info(sim.url, skip_ws=True).frontend_open_orders(address())


def stop_bot(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return out, err
