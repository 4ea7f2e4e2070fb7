"""M-3: a batch larger than the venue takes in one request goes out as several requests, in order,
with one result per order back to the order book; a failed request fails only its own orders."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actors.gateway import Gateway
from adapters.base import Unknown
from messages.commands import OrderSpec, PlaceOrders
from messages.events import OrderAcked, OrdersPlaced, OrderUnknown
from messages.types import Side

pytestmark = pytest.mark.timeout(30)


class Venue:
    max_batch = 40
    paced = False

    def __init__(self, fail_call=None):
        self.calls, self.fail_call = [], fail_call

    def place(self, orders):
        self.calls.append([o.client_id for o in orders])
        if len(self.calls) == self.fail_call:
            raise Unknown("timeout")
        return [OrderAcked(o.client_id, f"x{o.client_id}") for o in orders]

    def drain_events(self):
        return []


def orders(n):
    return tuple(OrderSpec(f"c{i}", "BTC", Side.BUY, Decimal("40000"), Decimal("0.001")) for i in range(n))


def placed(out) -> OrdersPlaced:
    return next(o.msg for o in out if isinstance(o.msg, OrdersPlaced))


def test_m3_a_batch_over_the_venue_limit_is_split_in_order():
    venue = Venue()
    result = placed(Gateway(venue, 1.0).on_place(PlaceOrders(7, orders(85))))
    assert [len(c) for c in venue.calls] == [40, 40, 5]
    assert [r.client_id for r in result.results] == [f"c{i}" for i in range(85)] and result.batch_id == 7


def test_m3_forty_orders_are_one_request():
    venue = Venue()
    Gateway(venue, 1.0).on_place(PlaceOrders(1, orders(40)))
    assert len(venue.calls) == 1


def test_a_failed_request_marks_only_its_own_orders_unknown():
    venue = Venue(fail_call=2)
    result = placed(Gateway(venue, 1.0).on_place(PlaceOrders(1, orders(50))))
    kinds = [type(r) for r in result.results]
    assert kinds == [OrderAcked] * 40 + [OrderUnknown] * 10
