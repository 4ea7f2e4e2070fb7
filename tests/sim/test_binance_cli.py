"""`gridbot exchange-sim binance` as a program: bad inputs are one line on stderr and exit 2; SIGTERM
saves the venue and exits 0, and a restart from `--state` (or the `restart` fault) keeps every order,
balance and id."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sim.cli import exchange_sim_main
from tests.bn_sim import start_bn_sim

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("argv, needle", [
    (["binance", "--bogus"], "unrecognized arguments"),
    (["binance", "--faults", "nope"], "unknown fault"),
    (["binance", "--faults", "clock_skew_ms=soon"], "clock_skew_ms"),
    (["binance", "--account", "only-a-key"], "--account"),
    (["binance", "--account", "k:s:USDT=-5"], "AMOUNT > 0"),
    (["binance", "--symbol", "DOGEBTC"], "invalid choice"),
    (["binance", "--speed", "0"], "must be > 0"),
    (["binance", "--data", "/no/such.csv"], "No such file"),
])
def test_bad_flags_and_inputs_are_one_line_and_exit_2(argv, needle, capsys):
    assert exchange_sim_main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_corrupt_state_file_is_one_line_and_exit_2(tmp_path, capsys):
    state = tmp_path / "bn.json"
    state.write_text('{"format": "gridbot-bn-sim/1"')
    assert exchange_sim_main(["binance", "--state", str(state)]) == 2
    assert "cannot read venue state" in capsys.readouterr().err


def test_the_gridbot_console_script_reaches_the_binance_venue():
    gridbot = shutil.which("gridbot") or str(Path(__file__).resolve().parents[3] / "venv" / "bin" / "gridbot")
    if not Path(gridbot).exists():
        pytest.skip("the gridbot console script is not installed")
    done = subprocess.run([gridbot, "exchange-sim", "binance", "--bogus"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "exchange-sim binance: error" in done.stderr


def test_sigterm_saves_and_a_restart_resumes_orders_balances_and_ids(tmp_path):
    from binance.base_client import BaseClient
    from binance.client import Client
    from binance.ws.streams import BinanceSocketManager

    state = tmp_path / "venue" / "bn.json"
    account = ("K1", "S1", {"USDT": "1000", "BTC": "0.5"})
    saved = (BaseClient.API_URL, BaseClient.WS_API_URL, BinanceSocketManager.STREAM_URL)
    try:
        with start_bn_sim(tmp_path, accounts=[account], state=state) as sim:
            sim.point_python_binance()
            sim.control("pause")
            c = Client("K1", "S1", ping=False)
            order = c.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                   quantity="0.001", price="30000", newClientOrderId="keep-me")
            c.order_market_sell(symbol="BTCUSDT", quantity="0.01")
            trades = c.get_my_trades(symbol="BTCUSDT")
            account_before = c.get_account()["balances"]
            assert sim.stop() == 0
        assert state.exists()
        # the same account flag again must not fund the known key twice
        with start_bn_sim(tmp_path, accounts=[account], state=state) as sim:
            sim.point_python_binance()
            c = Client("K1", "S1", ping=False)
            [resumed] = c.get_open_orders(symbol="BTCUSDT")
            assert (resumed["orderId"], resumed["clientOrderId"], resumed["status"]) == (
                order["orderId"], "keep-me", "NEW")
            assert c.get_my_trades(symbol="BTCUSDT") == trades
            assert c.get_account()["balances"] == account_before
            after = sim.control("restart")                       # in-process restart: same again
            assert after["accounts"]["K1"]["open_orders"] == 1 and after["ws_connections"] == 0
            newer = c.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                   quantity="0.001", price="30001")
            assert newer["orderId"] > order["orderId"]
            assert c.get_my_trades(symbol="BTCUSDT") == trades
    finally:
        BaseClient.API_URL, BaseClient.WS_API_URL, BinanceSocketManager.STREAM_URL = saved
