"""The grid under venue faults, end to end on the local Hyperliquid (real processes, the unmodified SDK):

- C-6: the grid re-anchors and cancels its old orders; the venue fills one of them and the cancel
  times out (HTTP 500). The fill is found, journaled once, and the grid's next order accounts for it.
- B-1.2: the counter-order after a fill is refused by the venue again and again: the bot backs off,
  then stops in EMERGENCY with no order left on the exchange and the reason in its status.
"""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.hl_bot import (
    address,
    bot_config,
    exchange_open_orders,
    journal_trade_ids,
    server_trade_ids,
    start_bot,
    stop_bot,
    user_state,
    wait_until,
)
from tests.hl_sim import start_hl_sim

pytestmark = [pytest.mark.timeout(150), pytest.mark.multiproc]
D = Decimal


def mid(sim) -> Decimal:
    return D(sim.control("state")["mids"]["BTC"])


def test_c6_cancel_that_times_out_after_the_fill_ends_with_the_fill_applied_and_the_counter_order(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url, grid={"trail_after_s": 2.0})
        proc = start_bot(tmp_path, config, "--summary", str(tmp_path / "s.json"))
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) == 10, 60, "the grid resting")
            start = mid(sim)
            sim.control("faults", spec="cancel_fills=1")
            sim.control("set_price", coin="BTC", px=str((start * D("1.008")).quantize(D(1))))
            # every sell filled; 2 s later the grid re-anchors and cancels the old ladder; the venue fills
            # the first order it is asked to cancel and answers 500
            wait_until(lambda: sim.control("state")["faults"]["cancel_fills"] == 0, 30, "the raced cancel")
            raced = len(server_trade_ids(sim))
            assert raced == 6                                   # 5 sells + the order filled under the cancel
            anchor = mid(sim)
            # just under the new anchor: level 0's sell is placeable, nothing else fills
            sim.control("set_price", coin="BTC", px=str((anchor * D("0.9996")).quantize(D(1))))
            wait_until(lambda: any(o["side"] == "A" and D(o["limitPx"]) == anchor for o in exchange_open_orders(sim)),
                       30, "a sell one level above the empty level at the new anchor")
            wait_until(lambda: sorted(journal_trade_ids(tmp_path / "state")) == sorted(server_trade_ids(sim)),
                       20, "every fill journaled")
            orders = exchange_open_orders(sim)
            prices = [D(o["limitPx"]) for o in orders]
            assert len(prices) == len(set(prices)), "two orders at one level"
        finally:
            out, err = stop_bot(proc)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        exchange = user_state(sim)
        assert summary["fills"] == raced
        assert sorted(journal_trade_ids(tmp_path / "state")) == sorted(server_trade_ids(sim))
        assert D(summary["position"]) == D(exchange["positions"].get("BTC", "0")) == D("-0.004")
        assert summary["details"]["grid"]["epoch"] == 2


def test_b12_counter_order_refused_again_and_again_ends_in_emergency_stop(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url, grid={"counter_retry_limit": 3, "counter_retry_initial_s": 0.2,
                                                     "counter_retry_max_s": 1.0})
        proc = start_bot(tmp_path, config, "--summary", str(tmp_path / "s.json"))
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) == 10, 60, "the grid resting")
            start = mid(sim)
            sim.control("faults", spec="reject_orders=1000")
            sim.control("set_price", coin="BTC", px=str((start * D("0.9988")).quantize(D(1))))   # fills level -1
            wait_until(lambda: user_state(sim).get("open_orders", 1) == 0, 40, "every order cancelled")
            remaining_rejects = sim.control("state")["faults"]["reject_orders"]
        finally:
            out, err = stop_bot(proc)
        assert proc.returncode == 0, err[-3000:]
        assert 1000 - remaining_rejects >= 3                    # it did retry before giving up
        summary = json.loads((tmp_path / "s.json").read_text())
        assert "counter-order at level 0 failed 3 times" in summary["emergency"]
        assert "Insufficient margin" in summary["emergency"]
        assert user_state(sim)["open_orders"] == 0
        assert D(summary["position"]) == D(user_state(sim)["positions"].get("BTC", "0")) == D("0.001")
