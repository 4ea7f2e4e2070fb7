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

from tests.hl_sim import REPO, HlSim, launch_sim

__all__ = ["BnSim", "start_bn_sim", "REPO"]


class BnSim(HlSim):
    """The Binance simulator's process: HlSim's handling plus its WebSocket URL for python-binance."""

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


def start_bn_sim(tmp_path, *extra_args: str, accounts=(), data=None, speed: float = 60.0,
                 state=None, deadline_s: float = 20.0) -> BnSim:
    """Launch the simulator; `accounts` is [(api_key, secret, {asset: amount}), ...], `extra_args` go
    to the command line as they are (e.g. "--symbol", "ETHUSDT", "--faults", "http_429=1")."""
    accounts_args = [arg for key, secret, balances in accounts for arg in (
        "--account", f"{key}:{secret}:" + ",".join(f"{asset}={amount}" for asset, amount in balances.items()))]
    return launch_sim(BnSim, "sim.binance", "bn", tmp_path, accounts_args, extra_args, speed, data, state,
                      deadline_s)
