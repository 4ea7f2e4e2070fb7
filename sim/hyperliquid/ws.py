"""GET /ws: Hyperliquid's WebSocket protocol — subscribe/unsubscribe/ping, and the pushes the bot uses
(allMids, l2Book, userFills, orderUpdates, userEvents).

Each connection has its own queue and writer task, so a slow client never stalls the venue and pushes
leave in the order they were made. A push for a user is encoded once and shared by every subscriber.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson
from aiohttp import WSMsgType, web

from sim.hyperliquid import protocol as P
from sim.hyperliquid.faults import Faults
from sim.hyperliquid.info import RECENT_FILLS
from sim.hyperliquid.venue import HlVenue, Outbox, wall_ms

__all__ = ["Hub", "Connection", "subscription_key"]

log = logging.getLogger("gridbot.exchange_sim.hyperliquid.ws")
IDLE_CLOSE_MS = 60_000
MIDS_MIN_MS, MIDS_MAX_MS = 100, 1000
BOOK_MIN_MS, BOOK_MAX_MS = 200, 2000
HELD_MAX_MS = 2000


def subscription_key(sub) -> tuple | None:
    """The hub's key for a subscription, or None when the venue does not serve it."""
    if not isinstance(sub, dict):
        return None
    kind = sub.get("type")
    if kind == "allMids":
        return ("allMids",)
    if kind == "l2Book" and isinstance(sub.get("coin"), str):
        return ("l2Book", sub["coin"])
    if kind in ("userFills", "orderUpdates", "userEvents") and isinstance(sub.get("user"), str):
        return (kind, sub["user"].lower())
    return None


def _encode(channel: str, data) -> str:
    return orjson.dumps({"channel": channel, "data": data}).decode()


class Connection:
    __slots__ = ("ws", "subs", "queue", "wake", "last_recv", "held", "sent", "task")

    def __init__(self, ws: web.WebSocketResponse, now: int):
        self.ws = ws
        self.subs: set[tuple] = set()
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.last_recv = now
        self.held: tuple[int, str] | None = None
        self.sent: dict[tuple, tuple[int, int]] = {}   # key -> (time, version) of the last periodic push
        self.task: asyncio.Task | None = None

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


class Hub:
    def __init__(self, faults: Faults):
        self.faults = faults
        self.connections: set[Connection] = set()
        self.versions: dict[tuple, int] = {("allMids",): 0}
        self.last_mid: dict = {}
        self.venue: HlVenue | None = None

    # -- the socket ---------------------------------------------------------------------------------
    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws, wall_ms())
        conn.task = asyncio.create_task(conn.writer())
        self.connections.add(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.last_recv = wall_ms()
                    self._on_message(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            conn.wake.set()
            conn.task.cancel()
        return ws

    def _on_message(self, conn: Connection, text: str) -> None:
        """A client message; anything malformed gets an error push, never an exception."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.debug("malformed WebSocket message: %r", text[:200])
            return self._send(conn, _encode("error", f"Invalid message: {text[:200]}"))
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            return self._send(conn, '{"channel":"pong"}')
        if method not in ("subscribe", "unsubscribe"):
            return self._send(conn, _encode("error", f"Invalid method in: {text[:200]}"))
        sub = msg.get("subscription")
        key = subscription_key(sub)
        if key is None or (key[0] == "l2Book" and self.venue and key[1] not in self.venue.rules):
            return self._send(conn, _encode("error", f"Invalid subscription {orjson.dumps(sub).decode()}"))
        self._send(conn, _encode("subscriptionResponse", {"method": method, "subscription": sub}))
        if method == "unsubscribe":
            conn.subs.discard(key)
            return None
        conn.subs.add(key)
        if key[0] == "userFills" and self.venue is not None:
            fills = self.venue.engine.fills(key[1])[-RECENT_FILLS:]
            self._send(conn, _encode("userFills", {"user": key[1], "isSnapshot": True,
                                                   "fills": [P.fill_wire(f) for f in reversed(fills)]}))
        elif key[0] in ("allMids", "l2Book"):
            conn.sent.pop(key, None)   # the next periodic pass sends a snapshot at once
        return None

    def _send(self, conn: Connection, text: str) -> None:
        if not self.faults.silent(wall_ms()):
            conn.put(text)

    def _send_fills(self, conn: Connection, text: str, now: int) -> None:
        """A push carrying fills, through the dup/reorder faults."""
        if self.faults.silent(now):
            return
        copies = 2 if self.faults.dup_fills else 1
        if self.faults.reorder_fills:
            if conn.held is None:
                conn.held = (now, text)
                return
            held, conn.held = conn.held[1], None
            for _ in range(copies):
                conn.put(text)
            for _ in range(copies):
                conn.put(held)
            return
        for _ in range(copies):
            conn.put(text)

    # -- publishing ---------------------------------------------------------------------------------
    def publish(self, out: Outbox) -> None:
        """Called by the venue after it saved: one encoded message per user and channel."""
        now = wall_ms()
        reorder = self.faults.reorder_fills
        for user, fills in out.fills.items():
            wires = [P.fill_wire(f) for f in (reversed(fills) if reorder else fills)]
            for order in fills:
                key = ("l2Book", order.symbol)
                self.versions[key] = self.versions.get(key, 0) + 1
            user_fills = _encode("userFills", {"user": user, "fills": wires})
            events = _encode("user", {"fills": wires})
            for conn in list(self.connections):
                if ("userFills", user) in conn.subs:
                    self._send_fills(conn, user_fills, now)
                if ("userEvents", user) in conn.subs:
                    self._send_fills(conn, events, now)
        for user, updates in out.updates.items():
            for update in updates:
                key = ("l2Book", update["order"]["coin"])
                self.versions[key] = self.versions.get(key, 0) + 1
            text = _encode("orderUpdates", updates)
            for conn in list(self.connections):
                if ("orderUpdates", user) in conn.subs:
                    self._send(conn, text)
        for user, cancels in out.cancels.items():
            text = _encode("user", {"nonUserCancel": cancels})
            for conn in list(self.connections):
                if ("userEvents", user) in conn.subs:
                    self._send(conn, text)

    def periodic(self, venue: HlVenue, now: int) -> None:
        """Every tick: mids and books when due, held pushes that waited too long, idle sockets."""
        self.venue = venue
        for coin in venue.coins:
            mid = venue.engine.mid(coin)
            if mid != self.last_mid.get(coin):
                self.last_mid[coin] = mid
                self.versions[("l2Book", coin)] = self.versions.get(("l2Book", coin), 0) + 1
                self.versions[("allMids",)] += 1
        if not self.connections:
            return
        silent = self.faults.silent(now)
        mids_text = None
        books: dict[str, str] = {}
        for conn in list(self.connections):
            if now - conn.last_recv > IDLE_CLOSE_MS:
                self._close(conn)
                continue
            if conn.held is not None and now - conn.held[0] >= HELD_MAX_MS and not silent:
                conn.put(conn.held[1])
                conn.held = None
            if silent:
                continue
            for key in conn.subs:
                if key[0] not in ("allMids", "l2Book"):
                    continue
                lo, hi = (MIDS_MIN_MS, MIDS_MAX_MS) if key[0] == "allMids" else (BOOK_MIN_MS, BOOK_MAX_MS)
                version = self.versions.get(key, 0)
                last = conn.sent.get(key)
                if last is not None and not ((version != last[1] and now - last[0] >= lo) or now - last[0] >= hi):
                    continue
                if key[0] == "allMids":
                    mids_text = mids_text or _encode("allMids", {"mids": venue.mids()})
                    conn.put(mids_text)
                else:
                    if key[1] not in books:
                        books[key[1]] = _encode("l2Book", _book(venue, key[1], now))
                    conn.put(books[key[1]])
                conn.sent[key] = (now, version)

    # -- closing ------------------------------------------------------------------------------------
    def _close(self, conn: Connection) -> None:
        self.connections.discard(conn)
        asyncio.ensure_future(conn.ws.close())

    def drop_all(self) -> None:
        for conn in list(self.connections):
            self._close(conn)

    async def close_all(self) -> None:
        for conn in list(self.connections):
            self.connections.discard(conn)
            await conn.ws.close()


def _book(venue: HlVenue, coin: str, now: int) -> dict:
    orders = [o for user in venue.users for o in venue.engine.open_orders(user, coin)]
    return {"coin": coin, "time": now, "levels": P.l2_levels(venue.rules[coin], venue.engine.mid(coin), orders)}
