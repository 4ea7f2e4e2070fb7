"""S-3: one owner, one state machine. The transition table is the machine; whatever the exchange
answers, in whatever order, the order book never makes a move outside it, and a terminal order stays
terminal."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.order_record import TRANSITIONS, allowed
from messages.commands import RequestCancels, SubmitOrders
from messages.events import (
    CancelFailed,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    OrdersCancelled,
    OrderStatuses,
    OrdersPlaced,
    OrderUnknown,
)
from messages.reports import OrderReport
from messages.types import OrderState, RejectReason
from tests.unit.test_orderbook import afters, make_book, spec

pytestmark = pytest.mark.timeout(60)
S = OrderState
D = Decimal


@pytest.mark.parametrize("old, new, ok", [
    (S.INTENT, S.SUBMITTED, True), (S.INTENT, S.OPEN, False), (S.SUBMITTED, S.UNKNOWN, True),
    (S.UNKNOWN, S.FILLED, True), (S.OPEN, S.CANCEL_PENDING, True), (S.CANCEL_PENDING, S.OPEN, True),
    (S.CANCEL_PENDING, S.FILLED, True), (S.PARTIALLY_FILLED, S.REJECTED, False),
    (S.FILLED, S.OPEN, False), (S.CANCELLED, S.FILLED, False), (S.REJECTED, S.SUBMITTED, False),
    (S.OPEN, S.OPEN, True),
])
def test_s3_transition_table(old, new, ok):
    assert allowed(old, new) is ok


def test_s3_terminal_states_are_final_and_every_state_has_a_row():
    assert set(TRANSITIONS) == set(OrderState)
    assert all(not TRANSITIONS[s] for s in OrderState if s.terminal)


EVENTS = st.sampled_from(["ack", "reject", "unknown", "cancel", "cancelled", "cancel_failed", "status_open",
                          "status_filled", "status_cancelled", "status_none"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), EVENTS), max_size=25))
def test_s3_no_answer_sequence_makes_an_illegal_move(events):
    book = make_book()
    cids = ["a", "b", "c"]
    out = book.on_submit(SubmitOrders(tuple(spec(c) for c in cids)))      # a full batch: sent at once
    assert not afters(out) and all(book.orders[c].state is S.SUBMITTED for c in cids)
    terminal_seen: dict[str, OrderState] = {}
    for i, (n, event) in enumerate(events):
        cid = cids[n]
        if event == "ack":
            book.on_placed(OrdersPlaced(900 + i, (OrderAcked(cid, f"x{cid}"),)))
        elif event == "reject":
            book.on_placed(OrdersPlaced(900 + i, (OrderRejected(cid, RejectReason.OTHER, "no"),)))
        elif event == "unknown":
            book.on_placed(OrdersPlaced(900 + i, (OrderUnknown(cid, "timeout"),)))
        elif event == "cancel":
            book.on_cancel_request(RequestCancels((cid,)))
        elif event == "cancelled":
            book.on_cancelled(OrdersCancelled(900 + i, (OrderCancelled(cid),)))
        elif event == "cancel_failed":
            book.on_cancelled(OrdersCancelled(900 + i, (CancelFailed(cid, "timeout", True),)))
        else:
            state = {"status_open": S.OPEN, "status_filled": S.FILLED, "status_cancelled": S.CANCELLED}.get(event)
            report = None if state is None else OrderReport(cid, f"x{cid}", "BTC", spec(cid).side, spec(cid).price,
                                                            spec(cid).size, spec(cid).size if state is S.FILLED
                                                            else D(0), state)
            book.on_statuses(OrderStatuses(900 + i, ((cid, report),)))
        for c in cids:
            state = book.orders[c].state
            if c in terminal_seen:
                assert state is terminal_seen[c], f"{c} left terminal {terminal_seen[c]} for {state}"
            elif state.terminal:
                terminal_seen[c] = state
    assert [r.illegal for r in book.orders.values()] == [0, 0, 0]
