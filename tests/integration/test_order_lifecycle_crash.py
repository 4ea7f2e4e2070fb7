"""Write-ahead intents survive a crash at the two dangerous points (M-5, order lifecycle): between
journaling an intent and sending it, and between sending it and hearing the ack. Either way the
restarted bot ends with exactly one order per grid level on the exchange."""
from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.hl_bot import (
    address,
    bot_config,
    crash,
    exchange_open_orders,
    start_bot,
    stop_bot,
    user_state,
    wait_until,
)
from tests.hl_sim import start_hl_sim

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]
LEVELS = 5


def journal_states(state: Path) -> Counter:
    if not (state / "journal.db").exists():
        return Counter()
    db = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
    try:
        return Counter(row[0] for row in db.execute("SELECT state FROM orders"))
    except sqlite3.OperationalError:
        return Counter()
    finally:
        db.close()


def assert_one_order_per_level(sim) -> None:
    orders = exchange_open_orders(sim)
    by_price = Counter(o["limitPx"] for o in orders)
    assert len(orders) == 2 * LEVELS, f"{len(orders)} orders: {sorted(by_price)}"
    assert max(by_price.values()) == 1, f"two orders at one level: {by_price.most_common(3)}"
    assert len({o["cloid"] for o in orders}) == len(orders)


def restart_and_settle(tmp_path, sim, config) -> None:
    proc = start_bot(tmp_path, config)
    try:
        wait_until(lambda: user_state(sim).get("open_orders", 0) >= 2 * LEVELS, 60, "the grid back on the book")
        wait_until(lambda: "submitted" not in journal_states(tmp_path / "state")
                   and "intent" not in journal_states(tmp_path / "state"), 30, "every intent resolved")
        assert_one_order_per_level(sim)
    finally:
        out, err = stop_bot(proc)
    assert proc.returncode == 0, err[-3000:]


def test_m5_crash_after_journaling_intents_before_sending_them(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        # A long batch window holds the journaled intents back from the wire.
        slow = bot_config(tmp_path, sim.url, timing={"batch_window_ms": 30_000})
        proc = start_bot(tmp_path, slow)
        try:
            wait_until(lambda: journal_states(tmp_path / "state")["intent"] >= 2 * LEVELS, 60, "intents journaled")
            assert user_state(sim).get("open_orders", 0) == 0          # none of them was sent
        finally:
            crash(slow)
        proc.wait(10)
        restart_and_settle(tmp_path, sim, bot_config(tmp_path, sim.url))


def test_m5_crash_after_sending_orders_before_the_ack(tmp_path):
    with start_hl_sim(tmp_path, fund=[(address(), "10000")], speed=1) as sim:
        sim.control("pause")
        sim.control("faults", spec="exchange_delay_ms=4000")   # orders executed at once, answered 4 s later
        config = bot_config(tmp_path, sim.url, timing={"exchange_timeout_s": 20.0})
        proc = start_bot(tmp_path, config)
        try:
            wait_until(lambda: user_state(sim).get("open_orders", 0) >= 2 * LEVELS, 60, "orders on the exchange")
            assert journal_states(tmp_path / "state")["open"] == 0      # no ack has come back yet
        finally:
            crash(config)           # the point of the test; and if it failed, nothing is left running
        proc.wait(10)
        sim.control("faults", spec="clear")
        restart_and_settle(tmp_path, sim, config)
