"""Binance spot through python-binance 1.0.37, unmodified: the sync `Client` for REST, and an
`AsyncClient` with its `BinanceSocketManager` for the user-data and bookTicker streams.

What the library leaves to us, and this adapter does:
- **The user-data stream is never resubscribed.** python-binance subscribes over the WebSocket API
  (`userDataStream.subscribe.signature`); when that connection drops it reconnects but does not subscribe
  again, and a subscription the venue ends silently is invisible to it. Each stream *generation* runs in
  its own thread with its own asyncio loop and AsyncClient; it ends on python-binance's error event, on
  an exception, or when `session.subscriptions` (asked every `stream_check_s`) comes back empty. The
  gateway's pump then reports StreamDown (the fill guarantor backfills over myTrades), starts a new
  generation after a doubling delay (at most `reconnect_max_s`), and the new subscription reports
  StreamUp. Closing an AsyncClient waits up to ten seconds for its read loop, so an old generation closes
  in its own thread while the new one starts: `close()` never waits for it.
- **Prices** come from the symbol's bookTicker stream in the same generation (mid of best bid and ask),
  coalesced to at most one PriceTick per gateway drain. When the stream has said nothing for
  `stream_check_s` (a quiet market, or a stream that died) `pump()` polls REST bookTicker once
  (weight 2), so the bot never trades on a price older than that.
- **The clock is never resynced by the library**: we set `timestamp_offset` from /api/v3/time at connect
  and after any -1021, then retry that request once (a -1021 request was refused before anything was done).
- **Budgets**: request weight and new-order counts per window, limits from exchangeInfo's rateLimits,
  counts synced from the `X-MBX-USED-WEIGHT-*` / `X-MBX-ORDER-COUNT-*` headers of every answer.
- **One order per request** (`max_batch = 1`): grid orders are LIMIT_MAKER with the spec's deterministic
  client id as newClientOrderId; other orders LIMIT GTC; protective stops STOP_LOSS (sell only: spot
  holds no short to protect).
- **Spot "position"** is the base asset's total balance (free + locked).

Secrets arrive wrapped in `Secret` and are revealed only into the library's clients.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Sequence

import requests
from binance import AsyncClient, BinanceSocketManager
from binance.base_client import BaseClient
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from loguru import logger

from adapters.base import CancelResult, Exchange, PlaceResult, RateLimited, Rejected, Transient, Unknown
from adapters.binance_wire import (
    BinanceWireError,
    parse_account,
    parse_book_ticker_mid,
    parse_my_trades,
    parse_new_order,
    parse_order,
    parse_orders,
    parse_server_time,
    parse_subscriptions,
    parse_user_event,
    rate_limits,
    reject_reason,
    rules_from_exchange_info,
)
from adapters.secrets import Secret
from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    OrderUnknown,
    PriceTick,
    StreamDown,
    StreamUp,
)
from messages.reports import FillReport, OrderReport, PositionReport, VenueState
from messages.types import FillSource, MarketRules, OrderState, RejectReason, Side, canonical

__all__ = ["BinanceSettings", "BinanceExchange", "VenueBudget", "MAINNET_URL"]

MAINNET_URL = "https://api.binance.com"
# Binance's production endpoints, as python-binance's class attributes spell them (REST root, WebSocket
# API, market streams): fixed here, since a test may have pointed those attributes elsewhere.
_MAINNET_URLS = ("https://api.binance.com/api", "wss://ws-api.binance.com:443/ws-api/v3",
                 "wss://stream.binance.com:9443/")
_URL_LOCK = threading.Lock()
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_DAY_MS = 86_400_000
_TRADES_PAGE = 1000
_MAX_WINDOWS = 30               # days walked forward by time before paging from the first trade id
_MAX_MARKS = 50_000
_W_ORDER, _W_CANCEL, _W_STATUS, _W_TRADES = 1, 1, 4, 20
_W_ACCOUNT, _W_OPEN_ORDERS, _W_BOOK, _W_INFO, _W_TIME = 20, 6, 2, 20, 1
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}
_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


class _LibraryLog(logging.Handler):
    """python-binance logs every dropped socket and reconnect at ERROR through the standard logging
    module (unconfigured, that lands on stderr). Those are events this adapter handles: they go to our
    log at DEBUG instead."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger.debug("python-binance {}: {}", record.levelname.lower(), record.getMessage())
        except Exception:   # noqa: BLE001 - logging must never raise into the library
            pass


_library_log = logging.getLogger("binance")
if not any(isinstance(h, _LibraryLog) for h in _library_log.handlers):
    _library_log.addHandler(_LibraryLog())
    _library_log.propagate = False


@dataclass(frozen=True, slots=True)
class BinanceSettings:
    base_url: str = MAINNET_URL
    symbol: str = "BTCUSDT"
    ws_api_url: str = ""            # derived from base_url when empty
    stream_url: str = ""            # derived from base_url when empty
    recv_window: int = 5000         # ms
    timeout_s: float = 10.0
    stream_check_s: float = 10.0
    reconnect_max_s: float = 10.0

    def urls(self) -> tuple[str, str, str]:
        """(REST API root, WebSocket API, market stream root) as python-binance's class attributes want them."""
        base = self.base_url.rstrip("/")
        if base == MAINNET_URL:
            api, ws_api, stream = _MAINNET_URLS
        else:
            ws = "ws" + base[len("http"):] if base.startswith("http") else base
            api, ws_api, stream = base + "/api", ws + "/ws-api/v3", ws + "/"
        return api, self.ws_api_url or ws_api, self.stream_url or stream


def _point_library(settings: BinanceSettings) -> None:
    """python-binance reads its endpoints from class attributes when a client is built (call under _URL_LOCK)."""
    api, ws_api, stream = settings.urls()
    BaseClient.API_URL, BaseClient.WS_API_URL, BinanceSocketManager.STREAM_URL = api, ws_api, stream


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("Retry-After")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class VenueBudget:
    """Binance counts request weight (per IP) and new orders (per account) in fixed windows and reports
    the counts in every answer's headers. We count each window ourselves, take the venue's count whenever
    an answer carries it (other clients on the same IP or account spend from the same budget), and refuse
    a request that would overrun a limit with RateLimited until its window rolls over."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.windows: dict[str, list] = {}       # header -> [kind, limit, seconds, used, window start]
        self.refused = 0

    def configure(self, limits: list[tuple[str, str, int, int]]) -> None:
        for kind, interval, num, limit in limits:
            if kind not in ("REQUEST_WEIGHT", "ORDERS") or interval not in _INTERVAL_S or limit <= 0:
                continue
            name = "USED-WEIGHT" if kind == "REQUEST_WEIGHT" else "ORDER-COUNT"
            header = f"X-MBX-{name}-{num}{_LETTER[interval]}"
            old = self.windows.get(header)
            self.windows[header] = [kind, limit, num * _INTERVAL_S[interval], old[3] if old else 0,
                                    old[4] if old else 0.0]

    @staticmethod
    def _roll(window: list, now: float) -> None:
        start = now - now % window[2]
        if start != window[4]:
            window[3], window[4] = 0, start

    def spend(self, weight: int, orders: int = 0, what: str = "request") -> None:
        now = self.clock()
        costs = []
        for header, w in self.windows.items():
            cost = weight if w[0] == "REQUEST_WEIGHT" else orders
            if cost <= 0:
                continue
            self._roll(w, now)
            if w[3] + cost > w[1]:
                self.refused += 1
                raise RateLimited(f"{what}: local budget {header} at {w[3]}/{w[1]}",
                                  retry_after=max(0.05, w[4] + w[2] - now))
            costs.append((w, cost))
        for w, cost in costs:
            w[3] += cost

    def observe(self, headers: Any) -> None:
        if not headers:
            return
        now = self.clock()
        for header, w in self.windows.items():
            value = headers.get(header)
            if value is None:
                continue
            try:
                used = int(value)
            except (TypeError, ValueError):
                continue
            self._roll(w, now)
            w[3] = used

    def view(self) -> dict[str, str]:
        return {header: f"{w[3]}/{w[1]}" for header, w in self.windows.items()}


@dataclass(eq=False)
class _Generation:
    """One run of the user-data (and bookTicker) stream: its thread, loop and state."""
    number: int
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    live: bool = False
    ended: str = ""
    down_seen: bool = False         # pump() has handled its end
    started: float = field(default_factory=time.monotonic)


class BinanceExchange(Exchange):
    name = "binance"
    max_batch = 1           # Binance spot places (and cancels) one order per request

    def __init__(self, settings: BinanceSettings, api_key: Secret, api_secret: Secret,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self._key, self._secret = api_key, api_secret
        self._clock = clock
        self.budget = VenueBudget(clock)
        self._client: Client | None = None
        self._rules: MarketRules | None = None
        self._events: deque = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._client_ids: OrderedDict[str, str] = OrderedDict()     # orderId -> clientOrderId
        self._marks: list[tuple[int, int]] = []                     # (time, trade id) of trades seen
        self._streaming = False
        self._gen: _Generation | None = None
        self._generations = 0
        self._outage = False
        self._reconnect_at = 0.0
        self._reconnect_delay = 0.5
        self._mid: Decimal | None = None
        self._mid_at = 0.0
        self._mid_sent: Decimal | None = None
        self._next_price_poll = 0.0
        self.reconnects = 0
        self.malformed = 0
        self.clock_syncs = 0
        self.price_polls = 0

    # -- plumbing ----------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _server_now_ms(self) -> int:
        offset = self._client.timestamp_offset if self._client is not None else 0
        return self._now_ms() + int(offset)

    def _call(self, what: str, weight: int, fn: Callable, *args, write: bool = False, orders: int = 0,
              **kwargs) -> Any:
        """One REST call: budget first, headers observed, a -1021 resyncs the clock and retries once,
        every failure classified for the circuit breaker and the order book."""
        self.budget.spend(weight, orders, what)
        for attempt in (0, 1):
            try:
                answer = fn(*args, **kwargs)
            except BinanceAPIException as exc:
                self.budget.observe(getattr(exc.response, "headers", None))
                if exc.code == -1021 and attempt == 0:
                    logger.warning("binance {}: {} - resyncing the clock and retrying once", what, exc.message)
                    self._sync_clock()
                    continue
                raise self._classify(exc, what, write) from exc
            except Exception as exc:    # noqa: BLE001 - every library failure is classified below
                raise self._classify(exc, what, write) from exc
            self.budget.observe(getattr(self._client.response, "headers", None))
            return answer
        raise AssertionError("unreachable")

    @staticmethod
    def _classify(exc: Exception, what: str, write: bool):
        if isinstance(exc, BinanceAPIException):
            code, status = exc.code, exc.status_code
            text = f"{what}: HTTP {status} {code} {exc.message}"
            if status in (429, 418) or code in (-1003, -1015):
                default = 10.0 if code == -1015 else 1.0
                failure = RateLimited(text, retry_after=_retry_after(exc.response) or default)
            elif status >= 500 or code in (-1006, -1007):
                failure = Unknown(text) if write else Transient(text)
            elif code == -1021:
                failure = Transient(text)       # refused on its timestamp: nothing was done
            else:
                failure = Rejected(text, reject_reason(code, exc.message or ""))
            failure.code = code
            return failure
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return Transient(f"{what}: connect timeout")
        if isinstance(exc, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(exc):
            return Transient(f"{what}: cannot connect to the exchange")
        if isinstance(exc, (requests.exceptions.RequestException, BinanceRequestException, BinanceWireError,
                            ValueError, KeyError, TypeError)):
            return (Unknown if write else Transient)(f"{what}: {type(exc).__name__}: {exc}")
        return (Unknown if write else Transient)(f"{what}: {type(exc).__name__}: {exc}")

    def _sync_clock(self) -> None:
        """python-binance never does this itself: the offset between our clock and the venue's."""
        self.budget.spend(_W_TIME, 0, "time")
        try:
            before = self._now_ms()
            server = parse_server_time(self._client.get_server_time())
            after = self._now_ms()
        except Exception as exc:    # noqa: BLE001
            raise self._classify(exc, "time", False) from exc
        self._client.timestamp_offset = server - (before + after) // 2
        self.clock_syncs += 1

    def _push(self, event) -> None:
        with self._lock:
            if self._closed:
                return
            self._events.append(event)
            self._wake_locked()

    def _wake(self) -> None:
        with self._lock:
            if not self._closed:
                self._wake_locked()

    def _wake_locked(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    @property
    def wakeup_fd(self) -> int | None:
        return None if self._closed else self._wake_r

    def drain_events(self) -> list:
        """Queued events oldest first; consecutive WS fills merged into one batch, and one PriceTick for
        the newest mid if it moved since the last one handed over."""
        with self._lock:
            if self._closed:
                return []
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except (BlockingIOError, OSError):
                pass
            events, self._events = list(self._events), deque()
            mid = self._mid
        out: list = []
        for event in events:
            if (isinstance(event, FillsReceived) and out and isinstance(out[-1], FillsReceived)
                    and out[-1].source is event.source):
                out[-1] = FillsReceived(event.source, out[-1].fills + event.fills)
            else:
                out.append(event)
        if mid is not None and mid != self._mid_sent:
            self._mid_sent = mid
            out.append(PriceTick(self.settings.symbol, mid, self._now_ms()))
        return out

    def _remember(self, oid: str | None, cid: str | None) -> None:
        if not oid or not cid:
            return
        with self._lock:
            self._client_ids[oid] = cid
            self._client_ids.move_to_end(oid)
            while len(self._client_ids) > 20_000:
                self._client_ids.popitem(last=False)

    def _mark(self, fills: Sequence[FillReport]) -> None:
        """Remember (time, trade id) of trades seen: a later backfill starts after the newest one older
        than what it is asked for (trade ids grow with time), instead of walking by time."""
        with self._lock:
            for f in fills:
                try:
                    entry = (f.time_ms, int(f.trade_id))
                except ValueError:
                    continue
                i = bisect.bisect_left(self._marks, entry)
                if i == len(self._marks) or self._marks[i] != entry:
                    self._marks.insert(i, entry)
            if len(self._marks) > _MAX_MARKS:
                del self._marks[:len(self._marks) - _MAX_MARKS // 2]

    def _problem(self, text: str) -> None:
        self.malformed += 1
        logger.warning("binance: dropped a malformed payload: {}", text[:300])

    # -- connection and metadata -------------------------------------------------------------
    def connect(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        with _URL_LOCK:
            _point_library(s)
            client = Client(self._key.reveal(), self._secret.reveal(), ping=False,
                            requests_params={"timeout": s.timeout_s})
        client.REQUEST_RECVWINDOW = s.recv_window
        self._client = client
        try:
            self._sync_clock()
            info = self._call("exchangeInfo", _W_INFO, client._get, "exchangeInfo", data={"symbol": s.symbol})
            try:
                rules, limits = rules_from_exchange_info(info, s.symbol), rate_limits(info)
            except BinanceWireError as exc:
                raise Transient(f"exchangeInfo: {exc}") from exc
        except Exception:
            self._client = None
            raise
        self._rules = rules
        self.budget.configure(limits)
        self.budget.observe(getattr(client.response, "headers", None))   # the exchangeInfo answer's counts
        logger.info("binance {} at {}: {} tick {} lot {} min notional {}, limits {}",
                    "mainnet" if s.base_url.rstrip("/") == MAINNET_URL else "local/testnet", s.base_url,
                    s.symbol, rules.tick_size, rules.lot_size, rules.min_notional, self.budget.view())

    def rules(self) -> MarketRules:
        if self._rules is None:
            self.connect()
        return self._rules

    # -- reads -------------------------------------------------------------------------------
    def _mid_now(self) -> Decimal | None:
        answer = self._call("bookTicker", _W_BOOK, self._client.get_orderbook_ticker, symbol=self.settings.symbol)
        try:
            return parse_book_ticker_mid(answer)
        except BinanceWireError as exc:
            raise Transient(f"bookTicker: {exc}") from exc

    def snapshot(self, fills_since_ms: int | None = None) -> VenueState:
        """Balances (the base asset's total is the spot position), open orders, mid, fills. The account
        is read first and its updateTime is the snapshot's time: every trade in it is at or before that
        time, every trade after it later (the ledger counts fills after the snapshot time)."""
        self.connect()
        s, client = self.settings, self._client
        account = self._call("account", _W_ACCOUNT, client.get_account, omitZeroBalances="true")
        orders = self._call("openOrders", _W_OPEN_ORDERS, client.get_open_orders, symbol=s.symbol)
        try:
            balances = parse_account(account)
            open_orders = tuple(o for o in parse_orders(orders) if o.symbol == s.symbol)
            updated = account.get("updateTime")
            time_ms = updated if isinstance(updated, int) and updated > 0 else self._server_now_ms()
        except (BinanceWireError, AttributeError) as exc:
            raise Transient(f"snapshot: malformed answer: {exc}") from exc
        for order in open_orders:
            self._remember(order.exchange_order_id, order.client_id)
        mid = self._mid_now()
        base = self._rules.base_asset
        held = sum((b.total for b in balances if b.asset == base), Decimal(0))
        fills = () if fills_since_ms is None else tuple(self.fills_since(fills_since_ms))
        return VenueState(rules=self._rules, position=PositionReport(s.symbol, held), balances=tuple(balances),
                          open_orders=open_orders, fills=fills, mid=mid, time_ms=time_ms)

    def _trades(self, **params) -> list[FillReport]:
        page = self._call("myTrades", _W_TRADES, self._client.get_my_trades, symbol=self.settings.symbol,
                          limit=_TRADES_PAGE, **params)
        with self._lock:
            known = dict(self._client_ids)
        try:
            fills, problems = parse_my_trades(page, known)
        except BinanceWireError as exc:
            raise Transient(f"myTrades: {exc}") from exc
        for problem in problems:
            self._problem(problem)
        return fills

    def _first_id(self, since_ms: int) -> int | None:
        """The trade id to page from so that no trade at or after `since_ms` is missed."""
        with self._lock:
            i = bisect.bisect_left(self._marks, (since_ms, -1))
            if i > 0:
                return self._marks[i - 1][1] + 1       # trade ids grow with time
        now = self._server_now_ms()
        if now - since_ms > _MAX_WINDOWS * _DAY_MS:
            return 0                                    # older than we walk by time: all of the history
        start = since_ms
        while start <= now:
            # myTrades by time spans at most 24 h and answers the oldest trades of the window first
            fills = self._trades(startTime=start, endTime=start + _DAY_MS - 1)
            if fills:
                return min(int(f.trade_id) for f in fills)
            start += _DAY_MS
        return None

    def fills_since(self, since_ms: int) -> list[FillReport]:
        """Every trade at or after `since_ms`: myTrades paged by fromId (inclusive, 1000 a page) from the
        first trade id that can be that recent, deduplicated by trade id, ordered by (time, id)."""
        self.connect()
        start = self._first_id(since_ms)
        if start is None:
            return []
        seen: dict[str, FillReport] = {}
        while True:
            page = self._trades(fromId=start)
            for f in page:
                seen.setdefault(f.trade_id, f)
            if len(page) < _TRADES_PAGE:
                break
            start = max(int(f.trade_id) for f in page) + 1
        fills = [f for f in seen.values() if f.symbol == self.settings.symbol]
        self._mark(fills)
        out = [f for f in fills if f.time_ms >= since_ms]
        out.sort(key=lambda f: (f.time_ms, int(f.trade_id)))
        return out

    def order_status(self, client_ids: Sequence[str]) -> list[OrderReport | None]:
        self.connect()
        reports: list[OrderReport | None] = []
        for cid in client_ids:
            try:
                answer = self._call("order status", _W_STATUS, self._client.get_order, symbol=self.settings.symbol,
                                    origClientOrderId=cid)
            except Rejected as exc:
                if getattr(exc, "code", None) == -2013:
                    reports.append(None)        # the venue never heard of it
                    continue
                raise
            try:
                report = parse_order(answer)
            except BinanceWireError as exc:
                raise Transient(f"order status {cid}: {exc}") from exc
            self._remember(report.exchange_order_id, report.client_id)
            reports.append(report)
        return reports

    # -- writes ------------------------------------------------------------------------------
    def place(self, orders: Sequence[OrderSpec]) -> list[PlaceResult]:
        """One request per order. A single order's whole-call failure is raised (the gateway classifies
        it); in a longer batch it becomes that order's result, and a rate limit ends the batch."""
        if not orders:
            return []
        self.connect()
        results: list[PlaceResult] = []
        for i, spec in enumerate(orders):
            try:
                results.append(self._place_one(spec))
            except Unknown as exc:
                if len(orders) == 1:
                    raise
                results.append(OrderUnknown(spec.client_id, str(exc)))
            except (RateLimited, Rejected, Transient) as exc:
                if len(orders) == 1:
                    raise
                reason = getattr(exc, "reason", RejectReason.OTHER)
                results.append(OrderRejected(spec.client_id, reason, f"{exc.kind}: {exc}"))
                if isinstance(exc, RateLimited):
                    results += [OrderRejected(o.client_id, RejectReason.OTHER, f"rate_limited: {exc}")
                                for o in orders[i + 1:]]
                    break
        return results

    def _order_params(self, spec: OrderSpec) -> dict | OrderRejected:
        s = self.settings
        if spec.symbol != s.symbol:
            return OrderRejected(spec.client_id, RejectReason.OTHER, f"{spec.symbol} is not traded here")
        if not _CLIENT_ID.match(spec.client_id or ""):
            return OrderRejected(spec.client_id, RejectReason.OTHER,
                                 "client order id must be 1-36 of [A-Za-z0-9-_] on binance")
        params = {"symbol": s.symbol, "side": "BUY" if spec.side is Side.BUY else "SELL",
                  "quantity": canonical(spec.size), "newClientOrderId": spec.client_id,
                  "newOrderRespType": "RESULT"}
        if spec.trigger_price is not None:
            # Protective stop: a STOP_LOSS (market once triggered) selling what we hold. Binance refuses
            # one whose stop would trigger at once (-2010), so it can never execute immediately. A buy
            # stop protects a short, and spot holds none.
            if spec.side is not Side.SELL:
                return OrderRejected(spec.client_id, RejectReason.REDUCE_ONLY,
                                     "binance spot: a protective buy stop has no short position to protect")
            params.update(type="STOP_LOSS", stopPrice=canonical(spec.trigger_price))
        elif spec.post_only:
            params.update(type="LIMIT_MAKER", price=canonical(spec.price))
        else:
            params.update(type="LIMIT", timeInForce="GTC", price=canonical(spec.price))
        return params

    def _place_one(self, spec: OrderSpec) -> PlaceResult:
        params = self._order_params(spec)
        if isinstance(params, OrderRejected):
            return params
        try:
            answer = self._call("order", _W_ORDER, self._client.create_order, write=True, orders=1, **params)
        except Rejected as exc:
            return OrderRejected(spec.client_id, exc.reason, str(exc))
        try:
            result = parse_new_order(answer)
        except BinanceWireError as exc:
            raise Unknown(f"order {spec.client_id}: {exc}") from exc
        self._remember(result.exchange_order_id, spec.client_id)
        state = result.state
        if state in (OrderState.REJECTED, OrderState.CANCELLED) and result.report.filled == 0:
            return OrderRejected(spec.client_id, RejectReason.OTHER,
                                 f"the venue ended the order at once ({state.value})")
        return OrderAcked(spec.client_id, result.exchange_order_id, state)

    def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[CancelResult]:
        """By origClientOrderId where we have one (it survives a lost ack), else by orderId. -2011 (unknown,
        already cancelled or filled) is ambiguous: the order book asks the order's status."""
        if not orders:
            return []
        self.connect()
        results: list[CancelResult] = []
        for cid, oid in orders:
            params: dict = {"symbol": self.settings.symbol}
            if cid:
                params["origClientOrderId"] = cid
            elif oid and oid.isdigit():
                params["orderId"] = int(oid)
            else:
                results.append(CancelFailed(cid, "no order id given", ambiguous=False))
                continue
            try:
                answer = self._call("cancel", _W_CANCEL, self._client.cancel_order, write=True, **params)
            except Rejected as exc:
                results.append(CancelFailed(cid, str(exc), ambiguous=getattr(exc, "code", None) == -2011))
                continue
            except (Unknown, Transient, RateLimited) as exc:
                if len(orders) == 1:
                    raise
                results.append(CancelFailed(cid, f"{exc.kind}: {exc}", ambiguous=True))
                continue
            try:
                report = parse_order(answer)
                self._remember(report.exchange_order_id, report.client_id)
            except BinanceWireError as exc:
                logger.warning("binance cancel {}: answer not understood ({}); the venue accepted it", cid, exc)
            results.append(OrderCancelled(cid))
        return results

    # -- the streams -------------------------------------------------------------------------
    def start_stream(self) -> None:
        self.connect()
        if not self._streaming:
            self._streaming = True
            self._start_generation()

    def _start_generation(self) -> None:
        self._generations += 1
        gen = _Generation(self._generations)
        gen.thread = threading.Thread(target=self._run_generation, args=(gen,), daemon=True,
                                      name=f"binance-stream-{gen.number}")
        self._gen = gen
        gen.thread.start()

    def _run_generation(self, gen: _Generation) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        gen.loop = loop
        try:
            loop.run_until_complete(self._serve(gen))
        except BaseException as exc:    # noqa: BLE001 - a dying thread reports why, never raises
            gen.ended = gen.ended or f"{type(exc).__name__}: {exc}"
        finally:
            gen.ended = gen.ended or "stream stopped"
            self._wake()
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=2))
            except Exception:   # noqa: BLE001
                pass
            loop.close()

    async def _serve(self, gen: _Generation) -> None:
        """Subscribe, then hand over events until python-binance reports an error, the subscription
        vanishes from session.subscriptions, or we are told to stop. Closing happens after `ended` is
        set, so the gateway starts the next generation without waiting for this one to close."""
        s = self.settings
        gen.stop = asyncio.Event()
        with _URL_LOCK:
            _point_library(s)
            client = AsyncClient(self._key.reveal(), self._secret.reveal())
        client.REQUEST_RECVWINDOW = s.recv_window
        user = book = None
        try:
            await asyncio.wait_for(client.ping(), s.timeout_s)
            before = self._now_ms()
            server = parse_server_time(await asyncio.wait_for(client.get_server_time(), s.timeout_s))
            client.timestamp_offset = server - (before + self._now_ms()) // 2
            manager = BinanceSocketManager(client)
            manager.STREAM_URL = s.urls()[2]
            user = manager.user_socket()
            await asyncio.wait_for(user.__aenter__(), s.timeout_s)
            if gen.stop.is_set():
                return
            gen.live = True
            self._push(StreamUp(self._now_ms()))
            book = asyncio.create_task(self._book_loop(gen, manager))
            next_check = time.monotonic() + s.stream_check_s
            while not gen.stop.is_set():
                try:
                    message = await asyncio.wait_for(user.recv(), 0.25)
                except asyncio.TimeoutError:
                    message = None
                if message is not None:
                    error = self._on_user_message(message)
                    if error:
                        gen.ended = f"user stream: {error}"
                        return
                if time.monotonic() >= next_check:
                    answer = await asyncio.wait_for(
                        client._ws_api_request("session.subscriptions", False, {}), s.timeout_s)
                    if not parse_subscriptions(answer):
                        gen.ended = "the user-data subscription ended (session.subscriptions is empty)"
                        return
                    next_check = time.monotonic() + s.stream_check_s
        except asyncio.TimeoutError:
            gen.ended = gen.ended or "user stream: no answer in time"
        except Exception as exc:    # noqa: BLE001
            gen.ended = gen.ended or f"user stream: {type(exc).__name__}: {exc}"
        finally:
            gen.ended = gen.ended or "stream stopped"
            self._wake()
            if book is not None:
                book.cancel()
            await self._close_quietly(client, user)

    @staticmethod
    async def _close_quietly(client, user) -> None:
        """Unsubscribe and close; python-binance may take up to ReconnectingWebsocket.TIMEOUT for it."""
        async def close():
            if user is not None:
                try:
                    await user.__aexit__(None, None, None)
                except Exception:   # noqa: BLE001
                    pass
            await client.close_connection()
        try:
            await asyncio.wait_for(close(), 15)
        except BaseException:   # noqa: BLE001 - a half-dead socket may refuse to close cleanly
            pass

    async def _book_loop(self, gen: _Generation, manager: BinanceSocketManager) -> None:
        """The symbol's bookTicker stream; on any error it is opened again after a doubling delay."""
        delay = 0.5
        while not gen.stop.is_set():
            try:
                async with manager.symbol_book_ticker_socket(self.settings.symbol) as socket:
                    while not gen.stop.is_set():
                        try:
                            message = await asyncio.wait_for(socket.recv(), 1.0)
                        except asyncio.TimeoutError:
                            continue
                        if isinstance(message, dict) and message.get("e") == "error":
                            raise ConnectionError(f"{message.get('type')}: {message.get('m')}")
                        try:
                            mid = parse_book_ticker_mid(message)
                        except BinanceWireError as exc:
                            self._problem(f"bookTicker: {exc}: {message!r}")
                            continue
                        delay = 0.5
                        if mid is not None:
                            self._set_mid(mid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:    # noqa: BLE001
                logger.debug("binance bookTicker stream: {} (reopening in {:.1f} s)", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _set_mid(self, mid: Decimal) -> None:
        with self._lock:
            changed = mid != self._mid
            self._mid, self._mid_at = mid, time.monotonic()
            if changed and not self._closed:
                self._wake_locked()

    def _on_user_message(self, message: Any) -> str | None:
        """Runs on the stream thread: parse, queue, wake the gateway. Returns python-binance's error text
        when the connection under the subscription dropped. Never raises."""
        try:
            event = parse_user_event(message)
        except BinanceWireError as exc:
            self._problem(f"{exc}: {message!r}")
            return None
        if event.kind == "error":
            return event.payload
        if event.order is not None and event.order.symbol == self.settings.symbol:
            self._remember(event.order.exchange_order_id, event.order.client_id)
        if event.kind == "fill" and event.payload.symbol == self.settings.symbol:
            self._mark([event.payload])
            self._push(FillsReceived(FillSource.WS, (event.payload,)))
        return None

    def pump(self, now_ms: int) -> None:
        """Liveness: a generation that ended (or whose thread died) is reported down once per outage and
        replaced after a doubling delay. A price older than `stream_check_s` is polled over REST."""
        if not self._streaming or self._closed:
            return
        gen = self._gen
        if gen is not None and not gen.ended and gen.thread is not None and not gen.thread.is_alive():
            gen.ended = "stream thread died"
        if gen is not None and not gen.ended:
            if gen.live and self._outage:
                self._outage, self._reconnect_delay = False, 0.5
        elif gen is None or not gen.down_seen:
            # Every generation that was subscribed reports its end; failed attempts after it do not.
            now = time.monotonic()
            was_live = gen is not None and gen.live
            if gen is not None:
                gen.down_seen = True
            if was_live or not self._outage:
                reason = gen.ended if gen is not None else "no stream"
                logger.warning("binance user stream down ({}), resubscribing", reason)
                self._push(StreamDown(reason, self._now_ms()))
            if was_live:
                self._reconnect_at, self._reconnect_delay = now, 0.5      # it worked until now: at once
            elif not self._outage:
                self._reconnect_at = now + self._reconnect_delay
            self._outage = True
        if self._gen is None or self._gen.ended:
            now = time.monotonic()
            if now >= self._reconnect_at:
                self.reconnects += 1
                self._reconnect_at = now + self._reconnect_delay
                self._reconnect_delay = min(self._reconnect_delay * 2, self.settings.reconnect_max_s)
                self._start_generation()
        self._poll_price()

    def _poll_price(self) -> None:
        now = time.monotonic()
        if now - self._mid_at < self.settings.stream_check_s or now < self._next_price_poll:
            return
        self._next_price_poll = now + self.settings.stream_check_s
        try:
            mid = self._mid_now()
        except (RateLimited, Rejected, Transient, Unknown) as exc:
            logger.warning("binance bookTicker poll failed: {}", exc)
            return
        self.price_polls += 1
        if mid is not None:
            with self._lock:
                self._mid, self._mid_at = mid, now
                self._mid_sent = None           # a poll always hands a tick over, moved or not

    @property
    def stream_live(self) -> bool:
        gen = self._gen
        return gen is not None and gen.live and not gen.ended

    def _stop_generation(self, gen: _Generation | None) -> None:
        if gen is None or gen.loop is None or gen.stop is None:
            return
        try:
            gen.loop.call_soon_threadsafe(gen.stop.set)
        except RuntimeError:
            pass                # its loop is already closed

    def close(self) -> None:
        """Stop the stream (its thread closes the library's sockets in its own time) and the REST session."""
        self._streaming = False
        gen, self._gen = self._gen, None
        self._stop_generation(gen)
        if self._client is not None:
            try:
                self._client.close_connection()
            except Exception:   # noqa: BLE001
                pass
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
