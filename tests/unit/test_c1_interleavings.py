"""C-1 / M-4 as a property: whatever order the fills, position changes and grid intents reach the grid
and risk, nothing risk approves was computed from a position older than the fills it has seen."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.outbox import Out
from actors.risk import RiskBook
from messages.commands import ApprovedIntents, OrderIntents
from messages.events import FillsRecorded, PositionChanged, PriceTick
from messages.lifecycle import ModeChanged, Rebuild
from messages.reports import FillReport
from messages.types import Mode
from tests.unit.test_grid import by_level, trading_grid, venue

pytestmark = pytest.mark.timeout(60)
D = Decimal


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_c1_no_approved_intent_predates_a_fill_risk_has_seen(data):
    grid, first = trading_grid()
    risk = RiskBook(D("1"), 100)
    risk.on_rebuild(Rebuild(venue(), 1))
    risk.on_mode(ModeChanged(Mode.TRADING))
    grid.on_tick(PriceTick("BTC", D("40000"), 2_000))
    in_flight = [o.msg for o in first if isinstance(o, Out) and isinstance(o.msg, OrderIntents)]
    to_grid, to_risk = [], []
    position, version = D(0), 1
    for _ in range(data.draw(st.integers(1, 6))):        # the exchange fills a random grid order
        live = [s for msg in in_flight for s in msg.orders]
        if not live:
            break
        spec = data.draw(st.sampled_from(live))
        version += 1
        position += spec.size if spec.side.value == "buy" else -spec.size
        fill = FillsRecorded(version, (FillReport(f"t{version}", "BTC", spec.side, spec.price, spec.size, D(0),
                                                  "USDC", version, client_id=spec.client_id),))
        moved = PositionChanged(version * 1000, position, None, D(0), D(0), D(0))
        # the guarantor tells grid and risk first, the ledger's position follows: each mailbox keeps
        # its own order, but the two actors see them at different times
        to_grid += [fill, moved]
        to_risk += [fill, moved]
        while to_grid or to_risk or in_flight:
            choice = data.draw(st.sampled_from([q for q in ("grid", "risk", "intent") if
                                                {"grid": to_grid, "risk": to_risk, "intent": in_flight}[q]]))
            if choice == "grid":
                msg = to_grid.pop(0)
                out = grid.on_fills(msg) if isinstance(msg, FillsRecorded) else grid.on_position(msg)
                in_flight += [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, OrderIntents)]
            elif choice == "risk":
                msg = to_risk.pop(0)
                out = risk.on_fills(msg) if isinstance(msg, FillsRecorded) else risk.on_position(msg)
                check(risk, out)
            else:
                check(risk, risk.on_intents(in_flight.pop(0)))
            if data.draw(st.booleans()):
                break                                       # the next fill may come before the queues drain
        check(risk, risk.on_timer("hold-expiry"))          # held intents whose position never came
    assert by_level(first)


def check(risk: RiskBook, out) -> None:
    for o in out:
        if isinstance(o, Out) and isinstance(o.msg, ApprovedIntents):
            assert o.msg.position_version >= risk.fills_version * 1000, (
                f"approved intents from position version {o.msg.position_version}, "
                f"but fill {risk.fills_version} was already journaled")
