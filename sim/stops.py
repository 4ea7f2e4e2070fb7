"""Stop orders a venue keeps off the book until the price reaches them (the paper venue's native
protective orders). Venue-neutral and pure: the caller moves the price and fires what crossed."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from messages.types import Side


@dataclass(slots=True)
class StopOrder:
    """A reduce-only stop-market order: a sell fires when the price falls to `trigger`, a buy when it
    rises to it; then it executes at once against the market, for at most the position."""
    oid: int
    client_id: str
    side: Side
    trigger: Decimal
    size: Decimal
    created_ms: int

    def crossed(self, price: Decimal) -> bool:
        return price <= self.trigger if self.side is Side.SELL else price >= self.trigger

    def to_list(self) -> list:
        return [self.oid, self.client_id, self.side.value, str(self.trigger), str(self.size), self.created_ms]

    @classmethod
    def from_list(cls, data: list) -> "StopOrder":
        return cls(int(data[0]), data[1], Side(data[2]), Decimal(data[3]), Decimal(data[4]), int(data[5]))


class StopBook:
    def __init__(self) -> None:
        self.orders: dict[str, StopOrder] = {}       # client id -> stop

    def add(self, stop: StopOrder) -> bool:
        if stop.client_id in self.orders:
            return False
        self.orders[stop.client_id] = stop
        return True

    def cancel(self, client_id: str | None = None, oid: int | None = None) -> StopOrder | None:
        for cid, stop in self.orders.items():
            if cid == client_id or (oid is not None and stop.oid == oid):
                return self.orders.pop(cid)
        return None

    def fire(self, price: Decimal) -> list[StopOrder]:
        """Remove and return every stop the price has reached."""
        hit = [s for s in self.orders.values() if s.crossed(price)]
        for stop in hit:
            del self.orders[stop.client_id]
        return hit

    def to_list(self) -> list:
        return [s.to_list() for s in self.orders.values()]

    @classmethod
    def from_list(cls, data: list) -> "StopBook":
        book = cls()
        for item in data:
            book.add(StopOrder.from_list(item))
        return book
