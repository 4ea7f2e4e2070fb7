"""`gridbot run` on Hyperliquid, end to end: the bot (its own processes, the unmodified SDK) against
`gridbot exchange-sim hyperliquid` (another process, the real HTTP/WebSocket protocol).

- it trades for a bounded time and its position equals the exchange's clearinghouseState;
- killed with SIGKILL while orders rest, the exchange's dead man's switch cancels them all in time;
- the WebSocket goes silent and drops while fills happen: every fill the exchange made ends up in the
  journal exactly once.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from tests.hl_bot import (
    address,
    bot_config,
    journal_trade_ids,
    kill_bot,
    server_trade_ids,
    start_bot,
    stop_bot,
    user_state,
    wait_until,
)
from tests.hl_sim import start_hl_sim

pytestmark = [pytest.mark.timeout(150), pytest.mark.multiproc]


def test_bot_trades_january_on_the_local_hyperliquid_and_agrees_with_it(tmp_path, january_csv):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], data=january_csv, speed=900) as sim:
        config = bot_config(tmp_path, sim.url)
        proc = start_bot(tmp_path, config, "--duration", "25", "--summary", str(tmp_path / "s.json"))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        exchange = user_state(sim)
        assert summary["fills"] > 0
        assert Decimal(summary["position"]) == Decimal(exchange["positions"].get("BTC", "0"))
        assert summary["settled"] is True
        assert exchange["open_orders"] == 0            # cancelled on shutdown
        assert exchange["scheduled_cancel"] is None    # and the dead man's switch cleared
        assert sorted(journal_trade_ids(tmp_path / "state")) == sorted(server_trade_ids(sim))


def test_sigkilled_bot_has_its_orders_cancelled_by_the_dead_mans_switch(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url, dead_man_s=6.0, dead_man_refresh_s=3.0)
        proc = start_bot(tmp_path, config)
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) >= 10, 60, "the grid resting")
            armed = wait_until(lambda: user_state(sim).get("scheduled_cancel"), 10, "the switch armed")
        finally:
            kill_bot(proc, config)
        killed_at = time.time() * 1000
        assert user_state(sim)["open_orders"] >= 10
        assert armed - killed_at <= 6_000
        wait_until(lambda: user_state(sim)["open_orders"] == 0, 6.0 + 3.0, "the switch to cancel every order")
        assert user_state(sim)["scheduled_cancel_triggers_today"] == 1


def test_c3_fills_made_while_the_stream_is_down_are_journaled_exactly_once(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url)
        proc = start_bot(tmp_path, config, "--summary", str(tmp_path / "s.json"))
        state = tmp_path / "state"
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) >= 10, 60, "the grid resting")
            mid = Decimal(sim.control("state")["mids"]["BTC"])
            sim.control("faults", spec="ws_silence=4")
            sim.control("set_price", coin="BTC", px=str((mid * Decimal("0.9965")).quantize(Decimal(1))))
            first = wait_until(lambda: user_state(sim)["fills"], 5, "fills on the exchange")
            sim.control("drop_ws")
            sim.control("set_price", coin="BTC", px=str((mid * Decimal("1.0035")).quantize(Decimal(1))))
            made = wait_until(lambda: (n := user_state(sim)["fills"]) > first and n, 5, "more fills")
            wait_until(lambda: len(journal_trade_ids(state)) >= made, 40, "every fill journaled")
        finally:
            out, err = stop_bot(proc)
        journaled = journal_trade_ids(state)
        assert len(journaled) == len(set(journaled))
        assert sorted(journaled) == sorted(server_trade_ids(sim))
        assert proc.returncode == 0, err[-3000:]
        details = json.loads((tmp_path / "s.json").read_text())["details"]
        guarantor, gateway = details["guarantor"], details["gateway"]
        assert guarantor["stream_downs"] >= 1 and gateway["reconnects"] >= 1
        assert guarantor["gaps_detected"] + guarantor["fills_from_ws"] == len(journaled)
        assert guarantor["gaps_detected"] > 0       # the stream never delivered some: backfill did
        assert guarantor["audit_reasons"].get("reconnect", 0) >= 1


def test_b23_orders_the_venue_cancelled_behind_the_bots_back_are_found_and_replaced(tmp_path):
    """The dead man's switch fires while the bot lives (as if it had hung): the exchange cancels every
    order and tells the bot nothing it listens to. The next audit finds them missing, their status
    says cancelled, and the grid puts the ladder back."""
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url)
        proc = start_bot(tmp_path, config, "--summary", str(tmp_path / "s.json"))
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) == 10, 60, "the grid resting")
            wait_until(lambda: user_state(sim).get("scheduled_cancel"), 10, "the switch armed")
            sim.control("fire_scheduled_cancel")
            assert user_state(sim)["open_orders"] == 0
            wait_until(lambda: user_state(sim).get("open_orders", 0) == 10, 40, "the grid back on the book")
        finally:
            out, err = stop_bot(proc)
        assert proc.returncode == 0, err[-3000:]
        orderbook = json.loads((tmp_path / "s.json").read_text())["details"]["orderbook"]
        assert orderbook["lost_suspected"] >= 10 and orderbook["cancelled"] >= 10
