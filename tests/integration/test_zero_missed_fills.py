"""Zero missed fills, end to end (findings C-5, M-1, M-5): the bot in its own processes, the exchange in
another, and the journal compared with the exchange's own fill list, trade id by trade id."""
from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from tests.hl_bot import (
    address,
    bot_config,
    crash,
    journal_trade_ids,
    server_trade_ids,
    start_bot,
    stop_bot,
    user_state,
    wait_until,
)
from tests.hl_sim import start_hl_sim

pytestmark = [pytest.mark.multiproc]


def run_for(tmp_path, config, seconds: float, summary: str) -> dict:
    proc = start_bot(tmp_path, config, "--duration", str(seconds), "--summary", str(tmp_path / summary))
    out, err = proc.communicate(timeout=seconds + 60)
    assert proc.returncode == 0, err[-3000:]
    return json.loads((tmp_path / summary).read_text())


@pytest.mark.timeout(420)
def test_m5_twenty_sigkills_during_fill_bursts_lose_and_double_nothing(tmp_path):
    """Each round: the bot trades, the price swings through three levels (a burst of fills), and the
    bot is SIGKILLed once a random number of that burst's fills are journaled, mid-way through
    journaling and countering them. The next round restarts it against the same exchange."""
    rng = random.Random(20221)
    state = tmp_path / "state"
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url, risk={"max_position": 0.02})
        base = Decimal(sim.control("state")["mids"]["BTC"])
        for round_ in range(20):
            proc = start_bot(tmp_path, config)
            wait_until(lambda: user_state(sim).get("open_orders", 0) >= 5, 60, "the bot trading")
            journaled = len(journal_trade_ids(state)) if (state / "journal.db").exists() else 0
            before = user_state(sim)["fills"]
            swing = Decimal("0.9965") if round_ % 2 == 0 else Decimal("1.0035")
            sim.control("set_price", coin="BTC", px=str((base * swing).quantize(Decimal(1))))
            made = user_state(sim)["fills"] - before
            assert made > 0, f"round {round_}: the swing filled nothing"
            kill_at = journaled + rng.randint(1, made)
            wait_until(lambda: len(journal_trade_ids(state)) >= kill_at, 30, "part of the burst journaled")
            crash(config)
            proc.wait(10)
        summary = run_for(tmp_path, config, 6, "final.json")
        exchange = user_state(sim)
        journaled = journal_trade_ids(state)
        assert len(journaled) == len(set(journaled))
        assert sorted(journaled) == sorted(server_trade_ids(sim))
        assert len(journaled) >= 40
        assert Decimal(summary["position"]) == Decimal(exchange["positions"].get("BTC", "0"))
        assert summary["settled"] is True


@pytest.mark.timeout(240)
def test_c5_restarts_with_a_journal_full_of_fills_replay_nothing_twice(tmp_path, january_csv):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], data=january_csv, speed=1800) as sim:
        config = bot_config(tmp_path, sim.url)
        first = run_for(tmp_path, config, 12, "first.json")
        assert first["fills"] >= 10
        sim.control("pause")                   # from here on the exchange makes no fill
        replays = [run_for(tmp_path, config, 4, f"replay{i}.json") for i in (1, 2)]
        exchange = Decimal(user_state(sim)["positions"].get("BTC", "0"))
        for replay in replays:
            assert Decimal(replay["position"]) == exchange
            assert replay["fills"] == first["fills"]
            assert replay["realized_pnl"] == first["realized_pnl"]
            assert replay["fees"] == first["fees"]
            assert replay["settled"] is True
        assert Decimal(first["position"]) == exchange


@pytest.mark.timeout(180)
def test_m1_a_forty_level_wick_pushed_reversed_and_duplicated_journals_forty_fills(tmp_path):
    with start_hl_sim(tmp_path, "--faults", "dup_fills=1,reorder_fills=1", fund=[(address(), "10000")],
                      speed=1) as sim:
        sim.control("pause")
        config = bot_config(tmp_path, sim.url, grid={"levels_per_side": 40},
                            risk={"max_position": 0.05, "max_open_orders": 100})
        proc = start_bot(tmp_path, config, "--summary", str(tmp_path / "s.json"))
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) >= 80, 60, "80 orders resting")
            mid = Decimal(sim.control("state")["mids"]["BTC"])
            sim.control("set_price", coin="BTC", px=str((mid * Decimal("0.95")).quantize(Decimal(1))))
            wait_until(lambda: user_state(sim)["fills"] == 40, 10, "the wick filling 40 buys")
            wait_until(lambda: len(journal_trade_ids(tmp_path / "state")) >= 40, 30, "40 fills journaled")
        finally:
            out, err = stop_bot(proc)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads((tmp_path / "s.json").read_text())
        journaled = journal_trade_ids(tmp_path / "state")
        assert sorted(journaled) == sorted(server_trade_ids(sim)) and len(journaled) == 40
        assert Decimal(summary["position"]) == Decimal("0.040") == Decimal(user_state(sim)["positions"]["BTC"])
        assert summary["details"]["guarantor"]["duplicates_skipped"] >= 40
