"""Hyperliquid perps through the official SDK, unmodified (`Info`, `Exchange`, its WebsocketManager).

What the SDK leaves to us, and this adapter does:
- **The stream never reconnects by itself.** We watch the manager thread and the age of the last
  message (allMids arrives every second or faster), rebuild a fresh manager when it dies or goes stale,
  resubscribe, and report StreamDown/StreamUp so the fill guarantor backfills over REST (C-3).
- **Nonces are milliseconds**, so writes are serialized and never two in the same millisecond.
- **`/exchange` refusals come back as HTTP 200** with `status: err`; we check every answer.
- **Budgets**: REST weight (1200/min per IP) and the address-based action budget are counted here, so
  the bot slows down before the venue refuses it.
- **Dead man's switch**: `keepalive` keeps a `scheduleCancel` `dead_man_s` ahead while trading; if the
  bot dies, the exchange cancels every order when it expires. `disarm` clears it (halt, shutdown).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import requests
from eth_account import Account
from hyperliquid.exchange import Exchange as SdkExchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.types import Cloid
from loguru import logger

from adapters.base import CancelResult, Exchange, PlaceResult, RateLimited, Rejected, Transient, Unknown
from adapters.budget import ActionBudget, WeightBudget
from adapters.hyperliquid_wire import (
    WireError,
    asset_id,
    parse_balances,
    parse_cancel_statuses,
    parse_fills,
    parse_mid,
    parse_open_order,
    parse_order_status,
    parse_place_statuses,
    parse_position,
    parse_ws_message,
    reject_reason,
    rules_from_meta,
)
from adapters.secrets import Secret
from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    PriceTick,
    StreamDown,
    StreamUp,
)
from messages.reports import FillReport, OrderReport, VenueState
from messages.types import FillSource, MarketRules, OrderState

__all__ = ["HyperliquidSettings", "HyperliquidExchange", "MAINNET_URL"]

MAINNET_URL = "https://api.hyperliquid.xyz"
_DAY_MS = 86_400_000
_MAX_TRIGGERS_PER_DAY = 10
_MIN_DEAD_MAN_S = 5.0
_INFO_WEIGHT_LIGHT = 2          # l2Book, allMids, clearinghouseState, orderStatus
_INFO_WEIGHT = 20
_FILLS_PAGE = 2000              # userFillsByTime answers at most this many fills


@dataclass(frozen=True, slots=True)
class HyperliquidSettings:
    base_url: str
    symbol: str
    account_address: str = ""
    timeout_s: float = 10.0
    dead_man_s: float = 60.0
    dead_man_refresh_s: float = 20.0
    stream_stale_s: float = 10.0
    reconnect_max_s: float = 10.0
    weight_per_min: int = 1200
    leverage: int = 0


def _stop_manager(manager) -> None:
    try:
        manager.stop()
    except Exception as exc:    # noqa: BLE001 - a half-dead socket may refuse to close cleanly
        logger.debug("closing the old stream: {}", exc)


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers else None
    except (TypeError, ValueError, AttributeError):
        return None


class HyperliquidExchange(Exchange):
    max_batch = 40          # an order action weighs 1 + n // 40: batches of 40 stay at weight 2
    name = "hyperliquid"

    def __init__(self, settings: HyperliquidSettings, private_key: Secret,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self._wallet = Account.from_key(private_key.reveal())
        self.address = (settings.account_address or self._wallet.address).lower()
        self._clock = clock
        self.budget = WeightBudget(settings.weight_per_min)
        self.actions = ActionBudget()
        self._events: deque = deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._info = self._exchange = None
        self._meta = self._spot_meta = None
        self._rules: MarketRules | None = None
        self._asset = -1
        self._last_nonce_ms = 0
        self._ws_info = None
        self._generation = 0
        self._streaming = False
        self._stream_live = False
        self._last_message = self._opened_at = 0.0
        self._reconnect_at = 0.0
        self._reconnect_delay = 0.5
        self.reconnects = 0
        self.malformed = 0
        self._dead_man_until = 0
        self._dead_man_armed = False
        self._triggers: dict[int, int] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _call(self, what: str, weight: int, fn: Callable, *args, write: bool = False, **kwargs) -> Any:
        """One SDK call, its failure classified: the circuit breaker and the order book act on the kind."""
        self.budget.spend(weight, what)
        if write:
            while self._now_ms() <= self._last_nonce_ms:       # the SDK's nonce is the ms clock
                time.sleep(0.0005)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:    # noqa: BLE001 - every SDK failure is classified below
            raise self._classify(exc, what, write) from exc
        finally:
            if write:
                self._last_nonce_ms = self._now_ms()

    @staticmethod
    def _classify(exc: Exception, what: str, write: bool):
        if isinstance(exc, ClientError):
            headers = exc.header if exc.header is not None else exc.error_data
            if exc.status_code == 429:
                return RateLimited(f"{what}: HTTP 429 {exc.error_message}", retry_after=_retry_after(headers) or 1.0)
            return Rejected(f"{what}: HTTP {exc.status_code} {exc.error_message}")
        if isinstance(exc, ServerError):
            text = f"{what}: HTTP {exc.status_code} {str(exc.message)[:200]}"
            return Unknown(text) if write else Transient(text)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return Transient(f"{what}: connect timeout")
        if isinstance(exc, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(exc):
            return Transient(f"{what}: cannot connect to {exc.request.url if exc.request else 'the exchange'}")
        if isinstance(exc, requests.exceptions.RequestException):
            return (Unknown if write else Transient)(f"{what}: {type(exc).__name__}: {exc}")
        if isinstance(exc, (WireError, ValueError, KeyError, TypeError)):
            return (Unknown if write else Transient)(f"{what}: unexpected answer: {exc}")
        return (Unknown if write else Transient)(f"{what}: {type(exc).__name__}: {exc}")

    def _push(self, event) -> None:
        with self._lock:
            self._events.append(event)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    @property
    def wakeup_fd(self) -> int | None:
        return self._wake_r

    def drain_events(self) -> list:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            events, self._events = list(self._events), deque()
        return events

    # -- connection and metadata -------------------------------------------------------------
    def connect(self) -> None:
        if self._exchange is not None:
            return
        s = self.settings
        self.budget.spend(2 * _INFO_WEIGHT, "metadata")
        try:
            info = Info(s.base_url, skip_ws=True, timeout=s.timeout_s)
            meta, spot_meta = info.meta(), info.spot_meta()
            self._rules = rules_from_meta(meta, s.symbol)
            self._asset = asset_id(meta, s.symbol)
        except Exception as exc:    # noqa: BLE001
            raise self._classify(exc, "connect", False) from exc
        self._info, self._meta, self._spot_meta = info, meta, spot_meta
        self._exchange = SdkExchange(self._wallet, s.base_url, meta=meta, spot_meta=spot_meta,
                                     account_address=s.account_address or None, timeout=s.timeout_s)
        logger.info("hyperliquid {} at {}: {} is asset {}, account {}", "mainnet" if s.base_url == MAINNET_URL
                    else "local/testnet", s.base_url, s.symbol, self._asset, self.address)
        if s.leverage:
            answer = self._call("updateLeverage", 1, self._exchange.update_leverage, s.leverage, s.symbol, write=True)
            if not isinstance(answer, dict) or answer.get("status") != "ok":
                raise Rejected(f"updateLeverage refused: {answer!r}")

    def rules(self) -> MarketRules:
        if self._rules is None:
            self.connect()
        return self._rules

    # -- reads -------------------------------------------------------------------------------
    def snapshot(self, fills_since_ms: int | None = None) -> VenueState:
        self.connect()
        s, info = self.settings, self._info
        state = self._call("clearinghouseState", _INFO_WEIGHT_LIGHT, info.user_state, self.address)
        orders = self._call("frontendOpenOrders", _INFO_WEIGHT, info.frontend_open_orders, self.address)
        mids = self._call("allMids", _INFO_WEIGHT_LIGHT, info.all_mids)
        try:
            position, balances = parse_position(state, s.symbol), parse_balances(state)
            open_orders = tuple(parse_open_order(o) for o in orders
                                if isinstance(o, dict) and o.get("coin") == s.symbol and not o.get("isTrigger"))
            mid = parse_mid(mids, s.symbol)
        except (WireError, AttributeError) as exc:
            raise Transient(f"snapshot: malformed answer: {exc}") from exc
        fills = () if fills_since_ms is None else tuple(self.fills_since(fills_since_ms))
        return VenueState(rules=self._rules, position=position, balances=tuple(balances),
                          open_orders=open_orders, fills=fills, mid=mid,
                          time_ms=int(state.get("time") or self._now_ms()))

    def fills_since(self, since_ms: int) -> list[FillReport]:
        """userFillsByTime pages (at most 2000 fills each, oldest first) from `since_ms`; the next page
        starts at the last fill's time, so fills sharing that millisecond are fetched again and deduped
        here. Stops when a page brings nothing new."""
        self.connect()
        start, seen, out = since_ms, set(), []
        while True:
            page = self._call("userFillsByTime", _INFO_WEIGHT + 20, self._info.user_fills_by_time,
                              self.address, start, None)
            try:
                fills, problems = parse_fills(page)
            except WireError as exc:
                raise Transient(f"userFillsByTime: {exc}") from exc
            self._log_problems(problems)
            fresh = [f for f in fills if f.trade_id not in seen]
            if not fresh:
                if len(fills) >= _FILLS_PAGE:
                    logger.warning("userFillsByTime: more than a page of fills at {} ms; the venue cannot "
                                   "page within a millisecond, fills beyond the page are not fetched", start)
                break
            for f in fresh:
                seen.add(f.trade_id)
                if f.symbol == self.settings.symbol:
                    out.append(f)
            newest = max(f.time_ms for f in fills)
            if newest > start:
                start = newest
            elif len(fresh) == len(fills):
                continue        # a full millisecond page: ask again, the seen set ends the loop
            else:
                break
        out.sort(key=lambda f: f.order_key)
        return out

    def order_status(self, client_ids: Sequence[str]) -> list[OrderReport | None]:
        self.connect()
        reports: list[OrderReport | None] = []
        for cid in client_ids:
            answer = self._call("orderStatus", _INFO_WEIGHT_LIGHT, self._info.query_order_by_cloid,
                                self.address, Cloid(cid))
            try:
                reports.append(parse_order_status(answer))
            except WireError as exc:
                raise Transient(f"orderStatus {cid}: {exc}") from exc
        return reports

    # -- writes ------------------------------------------------------------------------------
    def place(self, orders: Sequence[OrderSpec]) -> list[PlaceResult]:
        if not orders:
            return []
        self.connect()
        results: list[PlaceResult | None] = [None] * len(orders)
        requests_, index = [], []
        for i, spec in enumerate(orders):
            if spec.symbol != self.settings.symbol:
                results[i] = OrderRejected(spec.client_id, reject_reason(""), f"{spec.symbol} is not traded here")
                continue
            if spec.trigger_price is not None:
                # Protective stops would need the venue's trigger orders, which the local simulator does
                # not model yet: refuse rather than send a plain limit that would execute at once.
                results[i] = OrderRejected(spec.client_id, reject_reason(""),
                                           "protective trigger orders are not supported on hyperliquid yet")
                continue
            requests_.append({"coin": spec.symbol, "is_buy": spec.side.value == "buy", "sz": float(spec.size),
                              "limit_px": float(spec.price),
                              "order_type": {"limit": {"tif": "Alo" if spec.post_only else "Gtc"}},
                              "reduce_only": spec.reduce_only, "cloid": Cloid(spec.client_id)})
            index.append(i)
        if requests_:
            self.actions.spend(len(requests_))
            answer = self._call("order", 1 + len(requests_) // 40, self._exchange.bulk_orders, requests_, write=True)
            if isinstance(answer, dict) and answer.get("status") == "err":
                text = str(answer.get("response"))
                raise Rejected(f"order refused: {text}", reject_reason(text))
            try:
                statuses = parse_place_statuses(answer, len(requests_))
            except WireError as exc:
                raise Unknown(f"order: {exc}") from exc
            for i, (kind, detail) in zip(index, statuses):
                cid = orders[i].client_id
                if kind == "error":
                    results[i] = OrderRejected(cid, reject_reason(detail), detail)
                else:
                    state = OrderState.OPEN if kind == "resting" else OrderState.FILLED
                    results[i] = OrderAcked(cid, detail, state)
        return results

    def cancel(self, orders: Sequence[tuple[str, str | None]]) -> list[CancelResult]:
        """By client id where we have one (it survives a lost ack), else by exchange id."""
        if not orders:
            return []
        self.connect()
        results: list[CancelResult | None] = [None] * len(orders)
        by_cloid, by_oid = [], []
        for i, (cid, oid) in enumerate(orders):
            if cid:
                by_cloid.append(i)
            elif oid and oid.isdigit():
                by_oid.append(i)
            else:
                results[i] = CancelFailed(cid, "no order id given", ambiguous=False)
        batches = ((by_cloid, self._exchange.bulk_cancel_by_cloid,
                    lambda i: {"coin": self.settings.symbol, "cloid": Cloid(orders[i][0])}),
                   (by_oid, self._exchange.bulk_cancel,
                    lambda i: {"coin": self.settings.symbol, "oid": int(orders[i][1])}))
        for idx, call, request in batches:
            if not idx:
                continue
            answer = self._call("cancel", 1 + len(idx) // 40, call, [request(i) for i in idx], write=True)
            if isinstance(answer, dict) and answer.get("status") == "err":
                raise Rejected(f"cancel refused: {answer.get('response')}")
            try:
                errors = parse_cancel_statuses(answer, len(idx))
            except WireError as exc:
                raise Unknown(f"cancel: {exc}") from exc
            for i, error in zip(idx, errors):
                cid = orders[i][0]
                # "never placed, already canceled, or filled": which one is for a status query to say.
                results[i] = OrderCancelled(cid) if error is None else CancelFailed(cid, error, ambiguous=True)
        return results

    # -- dead man's switch -------------------------------------------------------------------
    def keepalive(self, now_ms: int) -> None:
        """Keep scheduleCancel `dead_man_s` ahead, refreshing `dead_man_refresh_s` before it expires.
        A switch that fired while we were alive counts toward the venue's 10 triggers a day; at the
        limit we stop arming (the venue would refuse) and say so."""
        s = self.settings
        if s.dead_man_s <= 0 or self._exchange is None:
            return
        if self._dead_man_armed and now_ms >= self._dead_man_until:
            day = now_ms // _DAY_MS
            self._triggers[day] = self._triggers.get(day, 0) + 1
            self._dead_man_armed = False
            logger.warning("the dead man's switch fired at {} (the bot was too slow to refresh it)",
                           self._dead_man_until)
        if self._dead_man_armed and self._dead_man_until - now_ms > s.dead_man_refresh_s * 1000:
            return
        if self._triggers.get(now_ms // _DAY_MS, 0) >= _MAX_TRIGGERS_PER_DAY:
            return
        until = now_ms + int(max(s.dead_man_s, _MIN_DEAD_MAN_S) * 1000)
        answer = self._call("scheduleCancel", 1, self._exchange.schedule_cancel, until, write=True)
        if isinstance(answer, dict) and answer.get("status") == "ok":
            self._dead_man_until, self._dead_man_armed = until, True
        else:
            logger.warning("scheduleCancel refused: {}", answer)

    def disarm(self) -> None:
        """Clear the dead man's switch (halt and shutdown, once they have cancelled)."""
        if self._exchange is None or self.settings.dead_man_s <= 0:
            return
        self._dead_man_armed = False
        answer = self._call("scheduleCancel", 1, self._exchange.schedule_cancel, None, write=True)
        if not (isinstance(answer, dict) and answer.get("status") == "ok"):
            logger.warning("clearing scheduleCancel refused: {}", answer)

    @property
    def dead_man_until(self) -> int | None:
        return self._dead_man_until if self._dead_man_armed else None

    # -- the stream --------------------------------------------------------------------------
    def start_stream(self) -> None:
        self.connect()
        if not self._streaming:
            self._streaming = True
            self._open_stream()

    def _open_stream(self) -> None:
        s = self.settings
        self._generation += 1
        generation = self._generation
        self._stream_live = False
        self._last_message = self._opened_at = time.monotonic()
        try:
            info = Info(s.base_url, skip_ws=False, meta=self._meta, spot_meta=self._spot_meta, timeout=s.timeout_s)
        except Exception as exc:    # noqa: BLE001 - a failed connect is retried by pump()
            logger.warning("hyperliquid stream: cannot start: {}", exc)
            self._ws_info = None
            return
        self._ws_info = info
        callback = lambda message: self._on_message(generation, message)  # noqa: E731
        info.subscribe({"type": "userFills", "user": self.address}, callback)
        info.subscribe({"type": "allMids"}, callback)

    def _on_message(self, generation: int, message: Any) -> None:
        """Runs on the SDK's WebSocket thread: parse, queue, wake the gateway. Never raises."""
        if generation != self._generation:
            return
        self._last_message = time.monotonic()
        try:
            kind, payload, problems = parse_ws_message(message, self.settings.symbol)
        except (WireError, AttributeError) as exc:
            self._log_problems([f"{exc}: {message!r}"[:300]])
            return
        self._log_problems(problems)
        if not self._stream_live and kind == "fills":
            self._stream_live = True            # the userFills snapshot: we are subscribed again
            self._reconnect_delay = 0.5
            self._push(StreamUp(self._now_ms()))
        if kind == "fills" and payload:
            self.actions.traded(sum(float(f.price * f.size) for f in payload))
            self._push(FillsReceived(FillSource.WS, tuple(payload)))
        elif kind == "mid" and payload is not None:
            self._push(PriceTick(self.settings.symbol, payload, self._now_ms()))

    def _log_problems(self, problems: list[str]) -> None:
        for problem in problems:
            self.malformed += 1
            logger.warning("hyperliquid: dropped a malformed payload: {}", problem)

    def pump(self, now_ms: int) -> None:
        """Liveness: a dead manager thread or a stream silent for `stream_stale_s` is rebuilt, with a
        doubling delay between attempts while the venue stays unreachable."""
        if not self._streaming:
            return
        info = self._ws_info
        manager = info.ws_manager if info is not None else None
        alive = manager is not None and manager.is_alive()
        now = time.monotonic()
        # Mids flowing without the userFills snapshot means the fills subscription never took (its
        # answer was lost on a stalled connection): as bad as silence.
        stale = (now - self._last_message > self.settings.stream_stale_s or
                 (not self._stream_live and now - self._opened_at > self.settings.stream_stale_s))
        if alive and not stale:
            return
        if now < self._reconnect_at:
            return
        reason = "stream silent" if alive else "stream closed"
        if self._stream_live or info is not None:
            logger.warning("hyperliquid stream down ({}), reconnecting", reason)
            self._push(StreamDown(reason, self._now_ms()))
        self._close_stream()
        self.reconnects += 1
        self._reconnect_at = now + self._reconnect_delay
        self._reconnect_delay = min(self._reconnect_delay * 2, self.settings.reconnect_max_s)
        self._open_stream()

    def _close_stream(self) -> None:
        info, self._ws_info = self._ws_info, None
        self._generation += 1
        self._stream_live = False
        if info is not None and info.ws_manager is not None:
            # Closing waits for the peer's close frame: a silent server would stall the gateway.
            threading.Thread(target=_stop_manager, args=(info.ws_manager,), daemon=True).start()

    @property
    def stream_live(self) -> bool:
        return self._stream_live

    def close(self) -> None:
        self._streaming = False
        self._close_stream()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
