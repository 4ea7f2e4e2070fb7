"""Run a real bot (`gridbot run`, its own processes, python-binance unmodified) against a local Binance
simulator process, and read back what both sides know: the exchange's trades, balances and open orders
through its API and control port, the bot's through its journal and summary."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEY, SECRET = "bn-bot-test-key", "bn-bot-test-secret"
SYMBOL = "BTCUSDT"


def _toml(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def bot_config(tmp_path: Path, url: str = "https://api.binance.com", grid: dict | None = None,
               risk: dict | None = None, timing: dict | None = None, **bn) -> Path:
    """A small spot grid on BTCUSDT (5 levels a side, 0.1 % apart, 0.001 BTC); `url` is normally given
    with --base-url instead, as a user pointing a mainnet config at a local server would."""
    sections = {
        "bot": {"id": f"bntest{os.getpid()}", "exchange": "binance", "state_dir": str(tmp_path / "state")},
        "market": {"symbol": SYMBOL},
        "grid": {"levels_per_side": 5, "spacing": "arithmetic", "spacing_pct": 0.1, "order_size": 0.001,
                 **(grid or {})},
        "risk": {"max_position": 0.05, "max_open_orders": 30, **(risk or {})},
        "timing": {"audit_interval_s": 5.0, "shutdown_timeout_s": 10.0, "startup_timeout_s": 20.0,
                   **(timing or {})},
        "binance": {"base_url": url, "stream_check_s": 1.0, "reconnect_max_s": 1.0, **bn},
    }
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items()) + "\n"
                   for name, keys in sections.items())
    path = tmp_path / "bn.toml"
    path.write_text(text)
    return path


class Bot(subprocess.Popen):
    """`gridbot run` with its output in files (a pipe nobody reads would block a chatty bot)."""

    def communicate(self, input=None, timeout=None) -> tuple[str, str]:
        self.wait(timeout)
        return self.out_path.read_text(errors="replace"), self.err_path.read_text(errors="replace")


def start_bot(tmp_path: Path, config: Path, *args: str) -> Bot:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRIDBOT_BINANCE_API_KEY": KEY,
           "GRIDBOT_BINANCE_API_SECRET": SECRET}
    n = len(list(tmp_path.glob("bot-*.out")))
    out_path, err_path = tmp_path / f"bot-{n}.out", tmp_path / f"bot-{n}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = Bot([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(config), *args],
                   cwd=tmp_path, env=env, stdout=out, stderr=err, text=True, start_new_session=True)
    proc.out_path, proc.err_path = out_path, err_path
    return proc


def stop_bot(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)


def account_state(sim) -> dict:
    """The simulator's view of the bot's account: balances {asset: {free, locked}}, open_orders, trades."""
    return sim.control("state")["accounts"].get(KEY, {})


def journal_trade_ids(state: Path) -> list[str]:
    db = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT trade_id FROM fills")]
    finally:
        db.close()


def server_trades(sim) -> list[dict]:
    """Every trade of the account on the symbol, through python-binance (myTrades paged by fromId)."""
    from binance.client import Client
    sim.point_python_binance()
    client = Client(KEY, SECRET, ping=False)
    trades, start = [], 0
    while True:
        page = client.get_my_trades(symbol=SYMBOL, fromId=start, limit=1000)
        trades += page
        if len(page) < 1000:
            return trades
        start = page[-1]["id"] + 1
