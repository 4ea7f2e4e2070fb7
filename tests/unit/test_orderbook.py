"""OrderBook: write-ahead intents (M-5), batching (M-3), the order state machine (S-3), exact fill
arithmetic (C-2), unknown fates resolved by status queries (C-6, B-2.3), and rebuild from journal +
exchange."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from actors.guarantor import FillGuarantor
from actors.orderbook import ORDER_SUBSCRIBERS, OrderBook
from actors.outbox import REPLY, SUPERVISOR, After, Out
from adapters.journal import Journal
from messages.commands import (
    CancelOrders,
    OrderSpec,
    PlaceOrders,
    QueryOrders,
    RequestBackfill,
    RequestCancels,
    SubmitOrders,
)
from messages.events import (
    ExchangeSnapshot,
    CancelFailed,
    FillsReceived,
    FillsRecorded,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    OrdersCancelled,
    OrdersChanged,
    OrdersCleared,
    OrderStatuses,
    OrdersPlaced,
    OrderUnknown,
    PriceTick,
)
from messages.lifecycle import Rebuild, Reconciled, StatusRequest
from messages.reports import FillReport, OrderReport, PositionReport, VenueState
from messages.types import FillSource, MarketRules, OrderState, Origin, RejectReason, Side

pytestmark = pytest.mark.timeout(30)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
RULES = MarketRules("BTC", "BTC", "USDC", lot_size=D("0.001"), tick_size=D("0.1"))
WINDOW_MS, QUERY_S, MARGIN_MS = 20, 1.5, 5_000


def make_book(journal=None, batch_max=3, rules=RULES) -> OrderBook:
    book = OrderBook(journal, WINDOW_MS, batch_max, QUERY_S, MARGIN_MS)
    book.rules = rules
    return book


def spec(cid, side=BUY, price="40000.0", size="1.000", level=-1, origin=Origin.GRID) -> OrderSpec:
    return OrderSpec(cid, "BTC", side, D(price), D(size), origin, level, 3000)


def fill(tid, cid, size, side=BUY, exchange_id=None, time_ms=10_000) -> FillReport:
    return FillReport(str(tid), "BTC", side, D("40000.0"), D(size), D("0"), "USDC", time_ms,
                      client_id=cid, exchange_order_id=exchange_id)


def report(cid, state, filled="0", size="1.000", exchange_id=None, side=BUY) -> OrderReport:
    return OrderReport(cid, exchange_id or f"x-{cid}", "BTC", side, D("40000.0"), D(size), D(filled), state)


def msgs(out, cls) -> list:
    return [o.msg for o in out if isinstance(o, Out) and isinstance(o.msg, cls)]


def afters(out) -> list[After]:
    """Timers other than the watchdog's (tested on their own below)."""
    return [o for o in out if isinstance(o, After) and not (isinstance(o.payload, tuple) and o.payload[0] == "watch")]


def watches(out) -> list[After]:
    return [o for o in out if isinstance(o, After) and isinstance(o.payload, tuple) and o.payload[0] == "watch"]


def states(out) -> dict[str, OrderState]:
    return {u.client_id: u.state for m in msgs(out, OrdersChanged) for u in m.updates}


def live_book(*cids, book=None, **spec_kw) -> OrderBook:
    """Orders submitted, sent and acknowledged by the exchange."""
    book = book or make_book()
    book.on_submit(SubmitOrders(tuple(spec(c, **spec_kw) for c in cids)))
    sent = book.flush() or book.on_timer("flush")
    (place,) = msgs(sent, PlaceOrders) if sent else (None,)
    book.on_placed(OrdersPlaced(place.batch_id, tuple(OrderAcked(c, f"x-{c}") for c in cids)))
    return book


def query_for(book) -> QueryOrders:
    (query,) = msgs(book.on_timer("query"), QueryOrders)
    return query


# -- write-ahead (M-5) and batching (M-3) ---------------------------------------------------------------
class SpyJournal(Journal):
    def __init__(self, path, log):
        super().__init__(path)
        self.log = log

    def save_orders(self, rows, durable=True):
        rows = list(rows)
        self.log.extend(("journal", r["client_id"], r["state"]) for r in rows)
        super().save_orders(rows, durable)


def test_m5_intent_is_journaled_before_place_orders_goes_out(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    book = make_book(journal, batch_max=10)
    out = book.on_submit(SubmitOrders((spec("a", level=-2, price="39880.0"),)))
    assert msgs(out, PlaceOrders) == []                       # nothing sent yet...
    (row,) = journal.orders()                                 # ...but already durable
    assert row.pop("created_at") > 0
    assert row == {"client_id": "a", "exchange_order_id": None, "symbol": "BTC", "side": "buy",
                   "price": "39880.0", "size": "1.000", "filled": "0", "state": "intent", "origin": "grid",
                   "level": -2, "position_version": 3000}
    (place,) = msgs(book.on_timer(afters(out)[0].payload), PlaceOrders)
    assert [s.client_id for s in place.orders] == ["a"]
    assert journal.orders()[0]["state"] == "submitted"
    journal.close()


def test_m5_journal_write_precedes_the_send_even_when_flushed_at_once(tmp_path):
    log = []
    journal = SpyJournal(tmp_path / "journal.db", log)
    book = make_book(journal, batch_max=1)
    out = book.on_submit(SubmitOrders((spec("a"),)))
    (place,) = msgs(out, PlaceOrders)
    log.append(("sent", place.orders[0].client_id, None))
    assert log == [("journal", "a", "intent"), ("journal", "a", "submitted"), ("sent", "a", None)]
    journal.close()


def test_m3_batch_flushes_at_batch_max_immediately():
    book = make_book(batch_max=3)
    first = book.on_submit(SubmitOrders((spec("a"), spec("b"))))
    assert msgs(first, PlaceOrders) == [] and afters(first) == [After(WINDOW_MS / 1000, afters(first)[0].payload)]
    out = book.on_submit(SubmitOrders((spec("c"),)))
    (place,) = msgs(out, PlaceOrders)
    assert [s.client_id for s in place.orders] == ["a", "b", "c"]
    assert afters(out) == []
    assert book.on_timer(afters(first)[0].payload) == []      # the window's timer finds nothing left


def test_m3_a_large_submit_goes_out_in_batches_of_batch_max():
    book = make_book(batch_max=3)
    out = book.on_submit(SubmitOrders(tuple(spec(f"o{i}") for i in range(7))))
    places = msgs(out, PlaceOrders)
    assert [len(p.orders) for p in places] == [3, 3, 1]
    assert len({p.batch_id for p in places}) == 3
    assert [s.client_id for p in places for s in p.orders] == [f"o{i}" for i in range(7)]
    assert all(book.orders[f"o{i}"].state is OrderState.SUBMITTED for i in range(7))


def test_m3_a_partial_batch_waits_one_fixed_window():
    book = make_book(batch_max=10)
    out = book.on_submit(SubmitOrders((spec("a"),)))
    assert out == [After(0.02, out[0].payload)]
    assert book.on_submit(SubmitOrders((spec("b"),))) == []  # already scheduled: no second timer
    (place,) = msgs(book.on_timer(out[0].payload), PlaceOrders)
    assert [s.client_id for s in place.orders] == ["a", "b"]


@pytest.mark.parametrize("price, size, reason", [
    ("40000.05", "1.000", "price_tick"), ("40000.0", "1.0005", "size_lot"), ("0", "1.000", "price_range"),
])
def test_b24_an_order_the_exchange_would_refuse_is_refused_with_its_reason_and_never_sent(price, size, reason):
    book = make_book(batch_max=1)
    out = book.on_submit(SubmitOrders((spec("bad", price=price, size=size), spec("good"))))
    assert states(out)["bad"] is OrderState.REJECTED
    assert [s.client_id for p in msgs(out, PlaceOrders) for s in p.orders] == ["good"]
    assert book.rule_refusals == {reason: 1}


def test_resubmitting_the_same_client_id_is_ignored(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    book = make_book(journal, batch_max=10)
    book.on_submit(SubmitOrders((spec("a"),)))
    assert book.on_submit(SubmitOrders((spec("a"),))) == []
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    assert [s.client_id for s in place.orders] == ["a"]
    book.on_placed(OrdersPlaced(place.batch_id, (OrderAcked("a", "x-a"),)))
    # the same deterministic id again, after it is live: never sent twice
    out = book.on_submit(SubmitOrders((spec("a"),)))
    assert msgs(out + book.on_timer("flush"), PlaceOrders) == []
    assert book.orders["a"].state is OrderState.OPEN
    assert len(journal.orders()) == 1
    journal.close()


# -- placement results ----------------------------------------------------------------------------------
def test_acked_order_is_open_and_subscribers_hear_it():
    book = make_book()
    book.on_submit(SubmitOrders((spec("a"), spec("b"))))
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    out = book.on_placed(OrdersPlaced(place.batch_id, (
        OrderAcked("a", "x-a"), OrderRejected("b", RejectReason.POST_ONLY_WOULD_CROSS))))
    assert [o.to for o in out] == [ORDER_SUBSCRIBERS]
    assert set(ORDER_SUBSCRIBERS) == {"grid", "risk", "balance"}
    assert states(out) == {"a": OrderState.OPEN, "b": OrderState.REJECTED}
    assert book.orders["a"].exchange_id == "x-a" and book.by_exchange_id["x-a"] == "a"
    assert [r.spec.client_id for r in book.live()] == ["a"]


def test_order_unknown_is_resolved_by_a_query_after_the_timer():
    book = make_book()
    book.on_submit(SubmitOrders((spec("a"),)))
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    out = book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("a", "timeout"),)))
    assert states(out) == {"a": OrderState.UNKNOWN}
    assert afters(out) == [After(QUERY_S, afters(out)[0].payload)]
    query = query_for(book)
    assert query.client_ids == ("a",)
    assert book.on_timer("query") == []                       # asked once, not in a loop
    # the exchange does have it
    out = book.on_statuses(OrderStatuses(query.request_id, (("a", report("a", OrderState.OPEN)),)))
    assert states(out) == {"a": OrderState.OPEN}
    assert book.orders["a"].exchange_id == "x-a"


def test_order_unknown_to_the_exchange_never_reached_it():
    book = make_book()
    book.on_submit(SubmitOrders((spec("a"),)))
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("a"),)))
    out = book.on_statuses(OrderStatuses(query_for(book).request_id, (("a", None),)))
    assert states(out) == {"a": OrderState.REJECTED}


def test_unknown_placement_result_after_the_fill_keeps_the_order_filled():
    book = make_book()
    book.on_submit(SubmitOrders((spec("a"),)))
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    book.on_fills(FillsRecorded(1, (fill(1, "a", "1.000"),)))          # WS fill beat the REST answer
    assert book.orders["a"].state is OrderState.FILLED
    book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("a", "timeout"),)))
    assert book.orders["a"].state is OrderState.FILLED


# -- fills (C-2) -----------------------------------------------------------------------------------------
def test_c2_partial_fills_summing_to_the_size_complete_the_order():
    book = live_book("a")
    out = book.on_fills(FillsRecorded(1, (fill(1, "a", "0.4"),)))
    assert states(out) == {"a": OrderState.PARTIALLY_FILLED}
    # found by exchange order id when the fill has no client id
    out = book.on_fills(FillsRecorded(2, (fill(2, None, "0.6", exchange_id="x-a"),)))
    assert states(out) == {"a": OrderState.FILLED}
    assert book.orders["a"].filled == D("1.000")
    assert book.counters["filled"] == 1 and book.live() == []


def test_c2_final_fill_under_one_percent_of_the_size_is_not_lost():
    book = live_book("a")
    book.on_fills(FillsRecorded(1, (fill(1, "a", "0.5"), fill(2, "a", "0.495"))))
    # 99.5 % filled is not done: 0.005 is five lots
    assert book.orders["a"].state is OrderState.PARTIALLY_FILLED
    assert book.live() != []
    out = book.on_fills(FillsRecorded(2, (fill(3, "a", "0.005"),)))
    assert states(out) == {"a": OrderState.FILLED}
    assert book.orders["a"].filled == D("1.000")


def test_c2_late_fill_on_a_completed_order_is_still_applied():
    book = live_book("a")
    book.on_fills(FillsRecorded(1, (fill(1, "a", "1.000"),)))
    out = book.on_fills(FillsRecorded(2, (fill(2, "a", "0.001"),)))
    (msg,) = msgs(out, OrdersChanged)
    assert (msg.updates[0].filled, msg.updates[0].state) == (D("1.001"), OrderState.FILLED)
    assert book.counters["late_fills"] == 1
    assert book.counters["filled"] == 1


def test_c2_late_partial_fill_on_a_cancelled_order_is_applied_but_it_stays_cancelled():
    book = live_book("a")
    book.on_cancel_request(RequestCancels(("a",)))
    book.on_cancelled(OrdersCancelled(9, (OrderCancelled("a"),)))
    out = book.on_fills(FillsRecorded(1, (fill(1, "a", "0.5"),)))   # traded just before the cancel
    assert book.orders["a"].filled == D("0.5")
    assert states(out) == {"a": OrderState.CANCELLED}


def test_fill_for_an_order_that_is_not_ours_changes_nothing():
    book = live_book("a")
    assert book.on_fills(FillsRecorded(1, (fill(1, "manual", "0.1"), fill(2, None, "0.1")))) == []
    assert book.counters["foreign_fills"] == 2
    assert book.orders["a"].filled == D("0")


# -- cancels (C-6) ---------------------------------------------------------------------------------------
def test_cancel_goes_pending_then_cancelled():
    book = live_book("a")
    out = book.on_cancel_request(RequestCancels(("a",)))
    assert states(out) == {"a": OrderState.CANCEL_PENDING}
    (cancel,) = msgs(out, CancelOrders)
    assert cancel.orders == (("a", "x-a"),)
    out = book.on_cancelled(OrdersCancelled(cancel.batch_id, (OrderCancelled("a"),)))
    assert states(out) == {"a": OrderState.CANCELLED}


def test_c6_cancel_failed_leads_to_a_status_query_never_to_a_guessed_state():
    book = live_book("a")
    (cancel,) = msgs(book.on_cancel_request(RequestCancels(("a",))), CancelOrders)
    out = book.on_cancelled(OrdersCancelled(cancel.batch_id, (CancelFailed("a", "timeout", ambiguous=True),)))
    assert msgs(out, OrdersChanged) == []                     # neither cancelled nor open: not known yet
    assert book.orders["a"].state is OrderState.CANCEL_PENDING
    assert afters(out) == [After(QUERY_S, afters(out)[0].payload)]
    assert query_for(book).client_ids == ("a",)


@pytest.mark.parametrize("found, outcome", [
    (None, OrderState.CANCELLED),
    (report("a", OrderState.CANCELLED), OrderState.CANCELLED),
    (report("a", OrderState.OPEN), OrderState.CANCEL_PENDING),          # still there: cancel it again
])
def test_c6_status_query_resolves_a_failed_cancel(found, outcome):
    book = live_book("a")
    book.on_cancel_request(RequestCancels(("a",)))
    book.on_cancelled(OrdersCancelled(2, (CancelFailed("a", "timeout"),)))
    out = book.on_statuses(OrderStatuses(query_for(book).request_id, (("a", found),)))
    assert book.orders["a"].state is outcome
    if outcome is OrderState.CANCEL_PENDING:
        (again,) = msgs(out, CancelOrders)
        assert again.orders == (("a", "x-a"),)


def test_c6_b23_failed_cancel_that_had_filled_is_backfilled_and_completed():
    book = live_book("a")
    book.on_cancel_request(RequestCancels(("a",)))
    book.on_cancelled(OrdersCancelled(2, (CancelFailed("a", "order already filled"),)))
    out = book.on_statuses(OrderStatuses(query_for(book).request_id,
                                         (("a", report("a", OrderState.FILLED, filled="1.000")),)))
    (backfill,) = msgs(out, RequestBackfill)
    assert backfill.source is FillSource.STATUS
    assert [o.to for o in out if isinstance(o.msg, RequestBackfill)] == ["gateway"]
    assert book.orders["a"].state is OrderState.CANCEL_PENDING      # not guessed: the fill will say
    out = book.on_fills(FillsRecorded(1, (fill(1, "a", "1.000"),)))
    assert states(out) == {"a": OrderState.FILLED}


def test_c6_status_batch_with_a_reopened_cancel_still_resolves_the_other_orders():
    book = live_book("a")
    book.on_submit(SubmitOrders((spec("b", level=-2),)))
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("b"),)))
    book.on_cancel_request(RequestCancels(("a",)))
    book.on_cancelled(OrdersCancelled(3, (CancelFailed("a", "timeout"),)))
    query = query_for(book)
    assert query.client_ids == ("a", "b")
    out = book.on_statuses(OrderStatuses(query.request_id, (
        ("a", report("a", OrderState.OPEN)), ("b", report("b", OrderState.FILLED, filled="1.000")))))
    assert msgs(out, CancelOrders)
    assert msgs(out, RequestBackfill), "the filled order's fills were never fetched"


# -- B-2.3: filled orders found by a status query ---------------------------------------------------------
def test_b23_status_reporting_filled_requests_a_backfill_from_the_order_creation():
    before = time.time()
    book = make_book()
    book.on_submit(SubmitOrders((spec("a"),)))
    after = time.time()
    (place,) = msgs(book.on_timer("flush"), PlaceOrders)
    book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("a"),)))
    out = book.on_statuses(OrderStatuses(query_for(book).request_id,
                                         (("a", report("a", OrderState.FILLED, filled="1.000")),)))
    (backfill,) = msgs(out, RequestBackfill)
    assert int(before * 1000) - MARGIN_MS <= backfill.since_ms <= int(after * 1000) - MARGIN_MS
    assert backfill.source is FillSource.STATUS
    assert book.orders["a"].state is OrderState.UNKNOWN              # resolved by the fill, not here
    out = book.on_fills(FillsRecorded(1, (fill(1, "a", "1.000"),)))
    assert states(out) == {"a": OrderState.FILLED}


def test_b23_cancelled_after_partial_fill_is_cancelled_and_backfilled():
    book = live_book("a")
    book.on_cancel_request(RequestCancels(("a",)))
    book.on_cancelled(OrdersCancelled(2, (CancelFailed("a"),)))
    out = book.on_statuses(OrderStatuses(query_for(book).request_id,
                                         (("a", report("a", OrderState.CANCELLED, filled="0.3")),)))
    assert msgs(out, RequestBackfill)
    assert book.orders["a"].state is OrderState.CANCELLED
    assert states(out) == {"a": OrderState.CANCELLED}       # the grid hears its level is free


# -- cancel all --------------------------------------------------------------------------------------------
def test_cancel_all_cancels_unsent_intents_locally_and_reports_cleared():
    book = live_book("a", "b")
    book.on_submit(SubmitOrders((spec("c"),)))                         # still waiting for its batch
    out = book.on_cancel_request(RequestCancels(all_orders=True, reason="shutdown"))
    assert states(out) == {"a": OrderState.CANCEL_PENDING, "b": OrderState.CANCEL_PENDING,
                           "c": OrderState.CANCELLED}
    (cancel,) = msgs(out, CancelOrders)
    assert sorted(cancel.orders) == [("a", "x-a"), ("b", "x-b")]
    assert msgs(book.on_timer("flush"), PlaceOrders) == []              # the intent never goes out
    out = book.on_cancelled(OrdersCancelled(cancel.batch_id, (OrderCancelled("a"),)))
    assert msgs(out, OrdersCleared) == []
    out = book.on_cancelled(OrdersCancelled(cancel.batch_id, (OrderCancelled("b"),)))
    assert [(o.to, o.msg) for o in out if isinstance(o.msg, OrdersCleared)] == [(SUPERVISOR, OrdersCleared(0))]


def test_cancel_all_with_nothing_live_reports_cleared_at_once():
    out = make_book().on_cancel_request(RequestCancels(all_orders=True))
    assert out == [Out(SUPERVISOR, OrdersCleared(0))]


# -- rebuild -----------------------------------------------------------------------------------------------
def venue(open_orders=(), fills=()) -> VenueState:
    return VenueState(RULES, PositionReport("BTC"), (), tuple(open_orders), tuple(fills), D("40000"), 50_000)


def test_rebuild_adopts_ours_ignores_foreign_and_queries_missing(tmp_path):
    journal = Journal(tmp_path / "journal.db")
    before = live_book("a", "b", "c", "d", book=make_book(journal, batch_max=10))
    before.on_fills(FillsRecorded(1, (fill(1, "c", "1.000"),)))         # c is done
    before.on_cancel_request(RequestCancels(("d",)))
    before.on_cancelled(OrdersCancelled(7, (OrderCancelled("d"),)))    # d is done
    journal.close()

    journal = Journal(tmp_path / "journal.db")
    book = make_book(journal, batch_max=10, rules=None)
    exchange = (report("a", OrderState.PARTIALLY_FILLED, filled="0.3"),
                report("manual-1", OrderState.OPEN, exchange_id="x-manual"),
                OrderReport(None, "x-anon", "BTC", SELL, D("41000"), D("1"), D("0"), OrderState.OPEN))
    out = book.on_rebuild(Rebuild(venue(exchange), 1))
    assert book.rules == RULES
    assert set(book.orders) == {"a", "b"}                    # foreign and finished orders are not ours to track
    a, b = book.orders["a"], book.orders["b"]
    assert (a.state, a.filled, a.exchange_id, a.spec.level, a.spec.origin) == (
        OrderState.PARTIALLY_FILLED, D("0.3"), "x-a", -1, Origin.GRID)
    assert b.state is OrderState.UNKNOWN                     # journaled as live, not on the exchange
    assert states(out) == {"a": OrderState.PARTIALLY_FILLED, "b": OrderState.UNKNOWN}
    assert [o.msg for o in out if o.__class__ is Out and o.to == REPLY] == [
        Reconciled("orderbook", True, "1 open, 1 to resolve")]
    assert len(afters(out)) == 1
    assert query_for(book).client_ids == ("b",)
    assert {r["client_id"]: r["state"] for r in journal.orders()}["b"] == "unknown"
    # a user's own orders are never touched
    (cancel,) = msgs(book.on_cancel_request(RequestCancels(all_orders=True)), CancelOrders)
    assert sorted(c for c, _ in cancel.orders) == ["a", "b"]
    journal.close()


def test_b23_order_filled_while_the_book_was_down_ends_filled_after_rebuild(tmp_path, monkeypatch):
    path = tmp_path / "journal.db"
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as past:                      # the order was placed an hour ago...
        past.setattr(time, "time", lambda: an_hour_ago)
        journal = Journal(path)
        live_book("a", book=make_book(journal, batch_max=10))
        journal.close()
    guarantor = FillGuarantor(Journal(path), MARGIN_MS, 30.0)
    the_fill = fill(1, "a", "1.000", exchange_id="x-a", time_ms=int(an_hour_ago * 1000) + 60_000)
    guarantor.on_fills(FillsReceived(FillSource.WS, (the_fill,)))   # ...filled, journaled; the book died first

    book = make_book(Journal(path), batch_max=10)
    book.on_rebuild(Rebuild(venue(), guarantor.journal.version()))
    if "a" in {r.spec.client_id for r in book.live()}:          # not resolved from the journal: ask
        out = book.on_statuses(OrderStatuses(query_for(book).request_id,
                                             (("a", report("a", OrderState.FILLED, filled="1.000")),)))
        for backfill in msgs(out, RequestBackfill):
            assert backfill.since_ms <= the_fill.time_ms
            recorded = guarantor.on_fills(FillsReceived(backfill.source, (the_fill,)))
            for msg in msgs(recorded, FillsRecorded):
                book.on_fills(msg)
    assert "a" not in {r.spec.client_id for r in book.live()}, f"stuck: {book.orders['a'].state}"
    assert book.orders.get("a") is None or book.orders["a"].state is OrderState.FILLED


# -- lost orders (B-2.3) -----------------------------------------------------------------------------
def snapshot_with(*reports) -> ExchangeSnapshot:
    return ExchangeSnapshot(1, VenueState(RULES, PositionReport("BTC"), (), tuple(reports), (), D("40000"), 0))


def test_b23_an_order_missing_from_the_exchange_is_asked_about_then_resolved(monkeypatch):
    book = live_book("a", "b")
    for rec in book.orders.values():
        rec.created -= 60                                   # sent a minute ago
    out = book.on_snapshot(snapshot_with(report("a", OrderState.OPEN)))
    assert afters(out) and book.counters["lost_suspected"] == 1
    assert query_for(book).client_ids == ("b",)
    out = book.on_statuses(OrderStatuses(1, (("b", report("b", OrderState.CANCELLED)),)))
    assert states(out) == {"b": OrderState.CANCELLED}        # cancelled by the venue: the grid re-places it


def test_b23_a_young_order_missing_from_a_snapshot_is_not_suspected():
    book = live_book("a")
    assert book.on_snapshot(snapshot_with()) == []


def test_b24_max_orders_counts_the_orders_already_live_not_the_one_being_checked():
    from dataclasses import replace
    book = make_book(batch_max=10, rules=replace(RULES, max_orders=2))
    out = book.on_submit(SubmitOrders((spec("a"), spec("b"), spec("c"))))
    assert states(out) == {"c": OrderState.REJECTED}
    assert book.rule_refusals == {"max_orders": 1}


# -- the watchdog: no write or query left unanswered, bounded retries -----------------------------------
def test_a_batch_the_gateway_never_answers_turns_unknown_and_is_queried():
    book = make_book()
    out = book.on_submit(SubmitOrders(tuple(spec(c) for c in ("a", "b"))))
    placed = book.on_timer(afters(out)[0].payload)
    (watch,) = watches(placed)
    out = book.on_timer(watch.payload)                         # no OrdersPlaced came back in time
    assert {u.client_id: u.state for m in msgs(out, OrdersChanged) for u in m.updates} == {
        "a": OrderState.UNKNOWN, "b": OrderState.UNKNOWN}
    (query,) = msgs(book.on_timer(afters(out)[0].payload), QueryOrders)
    assert query.client_ids == ("a", "b")


def test_an_answered_batch_needs_no_watchdog():
    book = make_book()
    out = book.on_submit(SubmitOrders((spec("a"),)))
    placed = book.on_timer(afters(out)[0].payload)
    (place,) = msgs(placed, PlaceOrders)
    book.on_placed(OrdersPlaced(place.batch_id, (OrderAcked("a", "x1"),)))
    assert book.on_timer(watches(placed)[0].payload) == []


def test_status_queries_are_bounded_then_left_to_the_audit():
    book = make_book()
    out = book.on_submit(SubmitOrders((spec("a"),)))
    placed = book.on_timer(afters(out)[0].payload)
    (place,) = msgs(placed, PlaceOrders)
    out = book.on_placed(OrdersPlaced(place.batch_id, (OrderUnknown("a", "timeout"),)))
    queries = 0
    for _ in range(10):                                        # the gateway never answers a query
        timer = afters(out)
        if not timer:
            break
        out = book.on_timer(timer[0].payload)
        sent = msgs(out, QueryOrders)
        if not sent:
            break
        queries += 1
        out = book.on_timer(watches(out)[0].payload)
    assert queries == 5
    assert book.on_status(StatusRequest(1))[0].msg.data["unresolved"] == 1


def test_m3_the_window_shortens_when_the_price_moves_fast():
    book = make_book()
    book.on_tick(PriceTick("BTC", D("40000"), 1))
    book.on_tick(PriceTick("BTC", D("40010"), 2))                     # 0.025 %: a calm market
    calm = afters(book.on_submit(SubmitOrders((spec("a"),))))
    assert calm == [After(WINDOW_MS / 1000, calm[0].payload)]
    book.on_timer(calm[0].payload)
    book.on_tick(PriceTick("BTC", D("40200"), 3))                     # 0.47 % in one tick
    fast = afters(book.on_submit(SubmitOrders((spec("b"),))))
    assert fast[0].seconds == 0.005 < WINDOW_MS / 1000
