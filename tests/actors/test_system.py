"""The whole actor system on both bases: it reconciles before it trades, trades the paper exchange,
restarts a killed actor, and shuts down with the ledger equal to the exchange."""
from __future__ import annotations

import os
import signal

import pytest

from actors import launcher
from adapters.journal import Journal
from messages.lifecycle import Shutdown, ShutdownComplete
from tests.helpers import paper_config, stop, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["simpleSystemBase", "multiprocTCPBase"])
def bot(request, tmp_path):
    config = paper_config(tmp_path / "state")
    system, supervisor, _, _ = launcher.start_system(config, base=request.param)
    try:
        yield system, supervisor, config
    finally:
        stop(system)


def test_bot_trades_paper_and_shuts_down_with_ledger_equal_to_exchange(bot):
    system, supervisor, config = bot
    wait_for(system, supervisor, lambda s: s["mode"] == "trading" and (s["fills"] or 0) >= 3,
             what="three fills")
    reply = system.ask(supervisor, Shutdown(True, "test"), 60)
    assert isinstance(reply, ShutdownComplete)
    summary = reply.summary
    assert summary["settled"] is True
    assert summary["fills"] >= 3
    assert summary["position"] == summary["exchange_position"]
    assert summary["exchange_open_orders"] == 0
    journal = Journal(config.state_path / "journal.db")
    assert journal.fill_count() == summary["fills"]


def test_no_order_is_placed_before_reconciliation(bot):
    system, supervisor, config = bot
    wait_for(system, supervisor, lambda s: (s["open_orders"] or 0) > 0, what="orders on the book")
    journal = Journal(config.state_path / "journal.db")
    trading_at = min(t for t, kind, detail in journal.events("mode") if detail.startswith("trading"))
    first_order = min(r["created"] for r in _order_times(journal))
    assert first_order >= trading_at


def _order_times(journal):
    return [{"created": row[0]} for row in journal._db.execute("SELECT created_at FROM orders")]


@pytest.mark.multiproc
@pytest.mark.parametrize("victim", ["grid", "orderbook", "gateway"])
def test_killed_actor_is_restarted_and_trading_resumes(tmp_path, victim):
    config = paper_config(tmp_path / "state")
    system, supervisor, _, _ = launcher.start_system(config)
    try:
        before = wait_for(system, supervisor, lambda s: s["mode"] == "trading" and (s["open_orders"] or 0) > 0,
                          what="trading")
        pid = before["actors"][victim]["pid"]
        os.kill(pid, signal.SIGKILL)
        after = wait_for(system, supervisor, lambda s: s["actors"][victim]["restarts"] == 1
                         and s["actors"][victim]["pid"] not in (None, pid) and s["mode"] == "trading",
                         what=f"{victim} restarted")
        fills = after["fills"] or 0
        wait_for(system, supervisor, lambda s: (s["fills"] or 0) > fills, what="fills after the restart")
        reply = system.ask(supervisor, Shutdown(True, "test"), 60)
        assert reply.summary["restarts"] == 1
        assert reply.summary["position"] == reply.summary["exchange_position"]
        assert reply.summary["exchange_open_orders"] == 0
    finally:
        stop(system)
