"""B-1.3: protective stops live on the exchange, journaled under deterministic ids, and a restart adopts
them instead of placing more; a shutdown that cancels leaves none behind. On the paper venue, whose
book (stops included) persists in the state directory as a real exchange's would."""
from __future__ import annotations

import json
import sqlite3

import pytest

from tests.integration.test_run_cli import gridbot

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]


def config(tmp_path, cancel_on_shutdown: bool):
    path = tmp_path / f"paper-{cancel_on_shutdown}.toml"
    path.write_text(f"""[bot]
id = "protect"
cancel_on_shutdown = {str(cancel_on_shutdown).lower()}

[risk]
stop_loss_price = 30000
take_profit_price = 50000
protective_orders = true
""")
    return path


def venue_stops(state) -> dict[str, tuple[str, str]]:
    book = json.loads((state / "paper_venue.pkl").read_text())
    return {cid: (side, trigger) for _, cid, side, trigger, _, _ in book["stops"]}


def test_b13_restart_adopts_the_resting_protective_orders_and_shutdown_removes_them(tmp_path):
    state = tmp_path / "state"
    first = gridbot("--config", str(config(tmp_path, False)), "--duration", "6", "--summary", "s1.json",
                    "--state-dir", str(state), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    stops = venue_stops(state)
    assert sorted(stops.values()) == [("buy", "50000"), ("sell", "30000")]
    db = sqlite3.connect(state / "journal.db")
    journaled = {cid: ex for cid, ex in db.execute(
        "SELECT client_id, exchange_order_id FROM orders WHERE origin = 'risk'")}
    db.close()
    assert set(stops) <= set(journaled) and all(journaled[c] for c in stops)   # journaled with exchange ids

    second = gridbot("--config", str(config(tmp_path, True)), "--duration", "6", "--summary", "s2.json",
                     "--state-dir", str(state), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    summary = json.loads((tmp_path / "s2.json").read_text())
    risk = summary["details"]["risk"]
    assert risk["protective_adopted"] == 2
    assert risk["protective"] == {}                                           # cancelled at shutdown
    db = sqlite3.connect(state / "journal.db")
    placed = db.execute("SELECT COUNT(*) FROM orders WHERE origin = 'risk'").fetchone()[0]
    db.close()
    assert placed == 2                                                        # never duplicated
    assert venue_stops(state) == {}                                           # never left behind
    assert summary["exchange_open_orders"] == 0
