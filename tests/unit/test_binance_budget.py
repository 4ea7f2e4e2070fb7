"""The Binance adapter's pure parts: how each library failure is classified (what the circuit breaker and
the order book then do), and the request-weight / order-count budget kept in step with the venue's
headers."""
from __future__ import annotations

import json

import pytest
import requests

pytest.importorskip("binance")
from binance.exceptions import BinanceAPIException  # noqa: E402

from adapters.base import RateLimited, Rejected, Transient, Unknown  # noqa: E402
from adapters.binance import BinanceExchange, VenueBudget  # noqa: E402
from messages.types import RejectReason  # noqa: E402

pytestmark = pytest.mark.timeout(30)


def api_error(status: int, code: int, msg: str, headers: dict | None = None) -> BinanceAPIException:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response._content = json.dumps({"code": code, "msg": msg}).encode()
    return BinanceAPIException(response, status, response.text)


@pytest.mark.parametrize("error, write, kind, detail", [
    (api_error(429, -1003, "Too much request weight used", {"Retry-After": "7"}), False, RateLimited, 7.0),
    (api_error(418, -1003, "Way too much request weight used; IP banned", {"Retry-After": "120"}), True,
     RateLimited, 120.0),
    (api_error(429, -1015, "Too many new orders"), True, RateLimited, 10.0),
    (api_error(503, -1007, "Timeout waiting for response from backend server."), True, Unknown, None),
    (api_error(503, -1007, "Timeout waiting for response from backend server."), False, Transient, None),
    (api_error(400, -2010, "Order would immediately match and take."), True, Rejected,
     RejectReason.POST_ONLY_WOULD_CROSS),
    (api_error(400, -1013, "Filter failure: LOT_SIZE"), True, Rejected, RejectReason.SIZE_LOT),
    (api_error(401, -2015, "Invalid API-key, IP, or permissions for action."), False, Rejected, RejectReason.OTHER),
    (api_error(400, -1021, "Timestamp for this request is outside of the recvWindow."), True, Transient, None),
    (requests.exceptions.ReadTimeout("read timed out"), True, Unknown, None),
    (requests.exceptions.ReadTimeout("read timed out"), False, Transient, None),
    (requests.exceptions.ConnectTimeout("connect timed out"), True, Transient, None),
])
def test_failures_are_classified(error, write, kind, detail):
    failure = BinanceExchange._classify(error, "call", write)
    assert type(failure) is kind
    if kind is RateLimited:
        assert failure.retry_after == detail
    if kind is Rejected:
        assert failure.reason is detail


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_budget_follows_the_venues_counts_and_refuses_until_the_window_rolls():
    clock = Clock(960_000.0)                         # on a minute boundary
    budget = VenueBudget(clock)
    budget.configure([("REQUEST_WEIGHT", "MINUTE", 1, 100), ("ORDERS", "SECOND", 10, 3),
                      ("RAW_REQUESTS", "MINUTE", 5, 10)])
    assert set(budget.view()) == {"X-MBX-USED-WEIGHT-1M", "X-MBX-ORDER-COUNT-10S"}
    budget.spend(10, 1)
    budget.observe({"X-MBX-USED-WEIGHT-1M": "95", "X-MBX-ORDER-COUNT-10S": "1"})   # another client spent too
    with pytest.raises(RateLimited) as info:
        budget.spend(10)
    assert info.value.retry_after == 60.0
    budget.spend(5)                                   # exactly up to the limit
    clock.now += 60                                   # the next minute: the count starts again
    budget.spend(50, 1)
    budget.spend(1, 1)
    budget.spend(1, 1)
    with pytest.raises(RateLimited) as info:
        budget.spend(1, 1)                            # a fourth order within the 10-second window
    assert 0 < info.value.retry_after <= 10
    assert budget.refused == 2
