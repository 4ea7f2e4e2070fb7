"""Run a real bot (`gridbot run`, its own processes, python-binance unmodified) against a local Binance
simulator process, and read back what both sides know: the exchange's trades, balances and open orders
through its API and control port, the bot's through its journal and summary."""
from __future__ import annotations

import os
from pathlib import Path

from tests import hl_bot
from tests.hl_bot import Bot, journal_trade_ids, stop_bot, write_config

__all__ = ["KEY", "SECRET", "bot_config", "start_bot", "stop_bot", "account_state", "journal_trade_ids",
           "server_trades"]

KEY, SECRET = "bn-bot-test-key", "bn-bot-test-secret"
SYMBOL = "BTCUSDT"


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
    return write_config(tmp_path / "bn.toml", sections)


def start_bot(tmp_path: Path, config: Path, *args: str) -> Bot:
    return hl_bot.start_bot(tmp_path, config, *args, secrets={"GRIDBOT_BINANCE_API_KEY": KEY,
                                                             "GRIDBOT_BINANCE_API_SECRET": SECRET})


def account_state(sim) -> dict:
    """The simulator's view of the bot's account: balances {asset: {free, locked}}, open_orders, trades."""
    return sim.control("state")["accounts"].get(KEY, {})


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
