"""`gridbot run` on Binance spot, end to end: the bot (its own processes, python-binance unmodified)
against `gridbot exchange-sim binance` (another process, the real REST and WebSocket protocol).

- it trades January 2022 for a bounded time: fills happen, its base and quote balances equal the
  exchange's, no order is left open after shutdown, and its journal holds exactly the exchange's trades;
- the venue silently ends the user-data subscription while fills happen: the bot notices, resubscribes,
  and every trade ends up journaled exactly once.
"""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.bn_bot import KEY, SECRET, account_state, bot_config, journal_trade_ids, server_trades, start_bot, stop_bot
from tests.bn_sim import start_bn_sim
from tests.helpers import wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]
FUNDS = {"USDT": "10000", "BTC": "0.01"}


def test_bot_trades_january_on_the_local_binance_and_agrees_with_it(tmp_path, january_csv):
    with start_bn_sim(tmp_path, accounts=[(KEY, SECRET, FUNDS)], data=january_csv, speed=900) as sim:
        config = bot_config(tmp_path)
        proc = start_bot(tmp_path, config, "--base-url", sim.url, "--duration", "25",
                         "--summary", str(tmp_path / "s.json"))
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        exchange = account_state(sim)
        assert summary["fills"] > 0 and exchange["trades"] == summary["fills"]
        assert exchange["open_orders"] == 0                     # cancelled on shutdown
        totals = {a: Decimal(v) for a, v in summary["details"]["balance"]["totals"].items()}
        for asset in ("BTC", "USDT"):
            venue = exchange["balances"][asset]
            assert totals[asset] == Decimal(venue["free"]) + Decimal(venue["locked"]), asset
        assert Decimal(summary["exchange_position"]) == Decimal(exchange["balances"]["BTC"]["free"])
        journaled = journal_trade_ids(tmp_path / "state")
        assert len(journaled) == len(set(journaled))
        assert sorted(journaled) == sorted(str(t["id"]) for t in server_trades(sim))


def test_fills_made_while_the_subscription_is_silently_gone_are_journaled_exactly_once(tmp_path):
    with start_bn_sim(tmp_path, accounts=[(KEY, SECRET, FUNDS)], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path)
        proc = start_bot(tmp_path, config, "--base-url", sim.url, "--summary", str(tmp_path / "s.json"))
        state = tmp_path / "state"
        try:
            wait_until(lambda: account_state(sim).get("open_orders", 0) >= 10, 60, "the grid resting")
            mid = Decimal(sim.control("state")["mid"])
            sim.control("user_stream_unsubscribe")
            sim.control("set_price", symbol="BTCUSDT", price=str((mid * Decimal("0.9965")).quantize(Decimal("0.01"))))
            first = wait_until(lambda: account_state(sim)["trades"], 5, "fills on the exchange")
            sim.control("set_price", symbol="BTCUSDT", price=str((mid * Decimal("1.0035")).quantize(Decimal("0.01"))))
            made = wait_until(lambda: (n := account_state(sim)["trades"]) > first and n, 5, "more fills")
            wait_until(lambda: len(journal_trade_ids(state)) >= made, 40, "every fill journaled")
        finally:
            out, err = stop_bot(proc)
        journaled = journal_trade_ids(state)
        assert len(journaled) == len(set(journaled))
        assert sorted(journaled) == sorted(str(t["id"]) for t in server_trades(sim))
        assert proc.returncode == 0, err[-3000:]
        details = json.loads((tmp_path / "s.json").read_text())["details"]
        guarantor, gateway = details["guarantor"], details["gateway"]
        assert guarantor["stream_downs"] >= 1 and gateway["reconnects"] >= 1
        assert guarantor["gaps_detected"] > 0           # the stream never delivered some: the backfill did
        assert guarantor["gaps_detected"] + guarantor["fills_from_ws"] == len(journaled)
        assert account_state(sim)["open_orders"] == 0
