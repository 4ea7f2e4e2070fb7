"""Binance's WebSockets: the WebSocket API at /ws-api/v3 (ping, time, the signed user-data subscription
and its events) and the market streams (/ws/<stream>, /stream?streams=a/b, SUBSCRIBE).

Each connection has its own queue and writer task, so a slow client never stalls the venue and pushes
leave in the order they were made. User-data events go out as `{"subscriptionId", "event"}`, exactly
as python-binance routes them; the fault switches (silence, duplicated or reordered trade reports, a
subscription silently ended) are applied here, at the edge.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson
from aiohttp import WSMsgType, web

from sim.binance import market as M
from sim.binance.faults import Faults
from sim.binance.params import ApiError, Params, check_key, check_timestamp, sign, ws_payload
from sim.binance.venue import Outbox, wall_ms

__all__ = ["Connection", "Hub"]

log = logging.getLogger("gridbot.exchange_sim.binance.ws")
HELD_MAX_MS = 2000
_WS_WEIGHT = {"ping": 1, "time": 1, "userDataStream.subscribe.signature": 2}


class Connection:
    __slots__ = ("ws", "queue", "wake", "task", "subs", "next_sub", "streams", "combined", "held", "ip")

    def __init__(self, ws: web.WebSocketResponse, ip: str, combined: bool = False):
        self.ws = ws
        self.ip = ip
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.subs: dict[int, str] = {}          # WS API: subscriptionId -> account
        self.next_sub = 0
        self.streams: set[str] = set()          # market streams
        self.combined = combined
        self.held: tuple[int, list[str]] | None = None

    def put(self, text: str) -> None:
        self.queue.append(text)
        self.wake.set()

    async def writer(self) -> None:
        try:
            while not self.ws.closed:
                await self.wake.wait()
                self.wake.clear()
                while self.queue and not self.ws.closed:
                    await self.ws.send_str(self.queue.popleft())
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass


def _dumps(payload) -> str:
    return orjson.dumps(payload).decode()


class Hub:
    def __init__(self, faults: Faults):
        self.faults = faults
        self.api: set[Connection] = set()
        self.market: set[Connection] = set()
        self.venue = None
        self._books: set[str] = set()

    @property
    def connections(self) -> int:
        return len(self.api) + len(self.market)

    @property
    def subscriptions(self) -> int:
        return sum(len(c.subs) for c in self.api)

    async def _serve(self, request: web.Request, conn_set: set, conn: Connection, on_text) -> web.WebSocketResponse:
        await conn.ws.prepare(request)
        conn.task = asyncio.create_task(conn.writer())
        conn_set.add(conn)
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.TEXT:
                    on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn_set.discard(conn)
            conn.wake.set()
            conn.task.cancel()
        return conn.ws

    # -- the WebSocket API ----------------------------------------------------------------------------
    async def api_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1 << 20)
        return await self._serve(request, self.api, Connection(ws, request.remote or "?"), self._on_api)

    def _on_api(self, conn: Connection, text: str) -> None:
        if self.faults.silent(wall_ms()):
            return
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return conn.put(_dumps({"id": None, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}))
        if not isinstance(msg, dict):
            return conn.put(_dumps({"id": None, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}))
        rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        used = 0
        try:
            if not isinstance(params, dict):
                raise ApiError(-1135, "Invalid JSON Request")
            used = self.venue.limits.admit(conn.ip, _WS_WEIGHT.get(method, 1), wall_ms())
            result = self._call(conn, method, params)
        except ApiError as exc:
            used = used or self.venue.limits.used(conn.ip, wall_ms())
            return conn.put(_dumps({"id": rid, "status": exc.status, "error": exc.body(),
                                    "rateLimits": self._rate(used)}))
        conn.put(_dumps({"id": rid, "status": 200, "result": result, "rateLimits": self._rate(used)}))

    def _rate(self, used: int) -> list[dict]:
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.venue.limits.weight_1m, "count": used}]

    def _call(self, conn: Connection, method, params: dict):
        venue = self.venue
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": venue.now()}
        if method == "userDataStream.subscribe.signature":
            account = check_key(params.get("apiKey"), venue.secrets)
            check_timestamp(Params({k: str(v) for k, v in params.items()}), venue.now())
            signature = params.get("signature")
            if not isinstance(signature, str) or not signature:
                raise ApiError.missing("signature")
            if sign(venue.secrets[account], ws_payload(params)) != signature.lower():
                raise ApiError(-1022, "Signature for this request is not valid.")
            sid, conn.next_sub = conn.next_sub, conn.next_sub + 1
            conn.subs[sid] = account
            return {"subscriptionId": sid}
        if method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")    # an id this session does not have: nothing to end
            if sid is None:
                conn.subs.clear()
            else:
                conn.subs.pop(sid, None)
            return {}
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in sorted(conn.subs)]
        raise ApiError(-1020, "This operation is not supported.")

    def publish(self, out: Outbox) -> None:
        """Called by the venue after it saved: user events to subscribers, market data to streams."""
        now = wall_ms()
        silent = self.faults.silent(now)
        if out.events and not silent:
            batches: dict[str, list[dict]] = {}
            for account, event in out.events:
                batches.setdefault(account, []).append(event)
            for conn in list(self.api):
                for sid, account in list(conn.subs.items()):
                    if account in batches:
                        self._send_events(conn, sid, batches[account], now)
        for symbol, trade in out.trades:
            if not silent:
                self._to_streams(f"{symbol.lower()}@trade", trade)
        self._books |= out.books

    def _send_events(self, conn: Connection, sid: int, events: list[dict], now: int) -> None:
        """One operation's events, through the dup/reorder faults (they touch trade reports only)."""
        texts = [_dumps({"subscriptionId": sid, "event": e}) for e in events]
        trades = [i for i, e in enumerate(events) if e.get("e") == "executionReport" and e.get("x") == "TRADE"]
        late: list[str] = []
        if self.faults.reorder_fills and trades:
            if len(trades) == 1 and conn.held is None:
                conn.held = (now, [texts[trades[0]]])
                texts[trades[0]] = ""
            else:
                swapped = [texts[i] for i in reversed(trades)]
                for i, text in zip(trades, swapped):
                    texts[i] = text
                if conn.held is not None:
                    late, conn.held = conn.held[1], None
        copies = 2 if self.faults.dup_fills else 1
        for index, text in enumerate(texts):
            for _ in range(copies if index in trades else 1):
                if text:
                    conn.put(text)
        for text in late:
            for _ in range(copies):
                conn.put(text)

    def unsubscribe_all(self) -> None:
        """The user_stream_unsubscribe fault: subscriptions end, connections and pings go on."""
        for conn in self.api:
            conn.subs.clear()

    # -- market streams -------------------------------------------------------------------------------
    async def stream_handler(self, request: web.Request) -> web.WebSocketResponse:
        combined = request.path.startswith("/stream")
        names = request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1 << 20)
        conn = Connection(ws, request.remote or "?", combined)
        conn.streams = {n for n in names.split("/") if n}
        return await self._serve(request, self.market, conn, self._on_stream)

    def _on_stream(self, conn: Connection, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market stream connection."""
        if self.faults.silent(wall_ms()):
            return
        try:
            msg = orjson.loads(text)
            method, params, rid = msg.get("method"), msg.get("params") or [], msg.get("id")
        except (orjson.JSONDecodeError, AttributeError):
            return conn.put(_dumps({"code": 3, "msg": "Invalid JSON: expected a JSON object"}))
        if method == "SUBSCRIBE":
            conn.streams.update(params)
            conn.put(_dumps({"result": None, "id": rid}))
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            conn.put(_dumps({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            conn.put(_dumps({"result": sorted(conn.streams), "id": rid}))
        else:
            conn.put(_dumps({"code": 2, "msg": f"Invalid request: unknown method {method!r}", "id": rid}))

    def _to_streams(self, name: str, payload: dict, prefix: str | None = None) -> None:
        """To every connection on stream `name` (or on one starting with `prefix`, e.g. depth5@100ms)."""
        raw = None
        for conn in list(self.market):
            matched = name if name in conn.streams else next(
                (s for s in conn.streams if prefix and s.startswith(prefix)), None)
            if matched is None:
                continue
            if conn.combined:
                conn.put(_dumps({"stream": matched, "data": payload}))
            else:
                raw = raw or _dumps(payload)
                conn.put(raw)

    def periodic(self, now: int) -> None:
        """Every tick: book streams for changed books, held trade reports that waited too long."""
        silent = self.faults.silent(now)
        for conn in list(self.api):
            if conn.held is not None and now - conn.held[0] >= HELD_MAX_MS and not silent:
                for text in conn.held[1]:
                    conn.put(text)
                conn.held = None
        books, self._books = self._books, set()
        if silent or not self.market:
            return
        for symbol in books:
            low = symbol.lower()
            self._to_streams(f"{low}@bookTicker", M.book_ticker_event(self.venue, symbol))
            for levels in (5, 10, 20):
                if any(s.startswith(f"{low}@depth{levels}") for c in self.market for s in c.streams):
                    self._to_streams(f"{low}@depth{levels}", M.depth_event(self.venue, symbol, levels),
                                     prefix=f"{low}@depth{levels}")

    # -- closing --------------------------------------------------------------------------------------
    def drop_all(self) -> None:
        for conn in list(self.api) + list(self.market):
            self.api.discard(conn)
            self.market.discard(conn)
            asyncio.ensure_future(conn.ws.close())

    async def close_all(self) -> None:
        for conn in list(self.api) + list(self.market):
            self.api.discard(conn)
            self.market.discard(conn)
            await conn.ws.close()
