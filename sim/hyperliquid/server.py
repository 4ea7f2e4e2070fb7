"""The aiohttp application: POST /info, POST /exchange, GET /ws and POST /control on one port.

One asyncio loop owns the venue, so every request and every tick runs to completion without locks.
A ticker walks the price paths every 50 ms and publishes through the WebSocket hub; faults from
`faults.py` are applied here, at the protocol edge, so the venue itself stays honest.

POST /control (localhost only, for tests) takes `{"op": OP, ...}` and answers the `state` document
(plus `"ok": true`) or HTTP 400 `{"error": ...}`:
    {"op": "fund", "user": "0x..", "usdc": "10000"}     credit USDC (the address becomes a user)
    {"op": "faults", "spec": "http_429=2,drop_ws"}       see faults.py for the SPEC grammar
    {"op": "pause"} / {"op": "resume"}                   freeze / unfreeze every price path
    {"op": "set_price", "coin": "BTC", "px": "46000"}    move a market now (resting orders fill)
    {"op": "drop_ws"} / {"op": "fire_scheduled_cancel"} / {"op": "restart"}   the one-shot faults
    {"op": "state"} -> {"time", "mids", "paused", "faults", "ws_connections",
                        "users": {addr: {"positions": {coin: szi}, "open_orders", "fills",
                                         "scheduled_cancel": ms|null, "scheduled_cancel_triggers_today"}}}
"""
from __future__ import annotations

import asyncio
import logging
import os
from decimal import Decimal, InvalidOperation

import orjson
from aiohttp import web

from sim.book import write_json_atomic
from sim.hyperliquid import protocol as P
from sim.hyperliquid.exchange import BadRequest, handle_exchange
from sim.hyperliquid.faults import AnswerServerError, Faults
from sim.hyperliquid.info import handle_info
from sim.hyperliquid.venue import HlVenue, wall_ms
from sim.hyperliquid.ws import Hub

__all__ = ["HlServer", "serve"]

log = logging.getLogger("gridbot.exchange_sim.hyperliquid")
TICK_S = 0.05
_LOCAL = {"127.0.0.1", "::1", "localhost"}


class HlServer:
    def __init__(self, venue: HlVenue, faults: str = ""):
        self.settings = venue.settings
        self.faults = Faults()
        venue.faults = self.faults
        self.hub = Hub(self.faults)
        self.venue = venue
        venue.listener = self.hub.publish
        self.hub.venue = venue
        self._stopping = asyncio.Event()
        self.url = ""
        self.apply_faults(faults)
        venue.engine.partial_fills = self.faults.partial_fills   # the command line decides, not the file

    # -- the app -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/info", self.info)
        app.router.add_post("/exchange", self.exchange)
        app.router.add_post("/control", self.control)
        app.router.add_get("/ws", self.hub.handler)
        return app

    async def _answer(self, status: int, payload=None, text: str | None = None) -> web.Response:
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if text is not None:
            return web.Response(status=status, text=text)
        return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")

    async def info(self, request: web.Request) -> web.Response:
        if self.faults.take_429():
            return await self._answer(429, text="429 Too Many Requests")
        raw = await request.read()
        try:
            body = orjson.loads(raw)
            return await self._answer(200, handle_info(self.venue, body))
        except (orjson.JSONDecodeError, BadRequest) as exc:
            return await self._answer(422, text=str(exc) if isinstance(exc, BadRequest) else
                                      "Failed to deserialize the JSON body into the target type")
        except Exception:
            log.exception("info request failed: %r", raw[:500])
            return await self._answer(500, text="Internal Server Error")

    async def exchange(self, request: web.Request) -> web.Response:
        if self.faults.take_429():
            return await self._answer(429, text="429 Too Many Requests")
        raw = await request.read()
        try:
            result = handle_exchange(self.venue, raw)
        except BadRequest as exc:
            return await self._answer(422, text=str(exc))
        except AnswerServerError as exc:
            log.info("fault: %s", exc)
            self.venue.commit()
            return await self._answer(500, text="Internal Server Error")
        except Exception:
            log.exception("exchange request failed: %r", raw[:500])
            self.venue.commit()
            return await self._answer(500, text="Internal Server Error")
        self.venue.commit()
        if self.faults.exchange_delay_ms:       # the action is done; its answer comes late
            await asyncio.sleep(self.faults.exchange_delay_ms / 1000)
        if self.faults.take_5xx():
            return await self._answer(500, text="Internal Server Error")
        return await self._answer(200, result)

    # -- control (tests) --------------------------------------------------------------------------
    async def control(self, request: web.Request) -> web.Response:
        if request.remote not in _LOCAL:
            return web.json_response({"error": "control is for localhost only"}, status=403)
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("op"), str):
                raise ValueError("expected a JSON object with an 'op'")
            result = await self.run_op(body["op"], body)
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    async def run_op(self, op: str, body: dict) -> dict:
        venue, now = self.venue, wall_ms()
        if op == "state":
            return self.state()
        if op == "fund":
            venue.fund(str(body["user"]), Decimal(str(body["usdc"])))
        elif op == "faults":
            self.apply_faults(str(body["spec"]))
        elif op in ("pause", "resume"):
            venue.tick(now)
            venue.paused = op == "pause"
            venue.dirty = True
        elif op == "set_price":
            coin, px = body["coin"], Decimal(str(body["px"]))
            if coin not in venue.rules or not px.is_finite() or px <= 0:
                raise ValueError(f"set_price needs a listed coin and a positive px, got {coin!r} {px}")
            venue.set_price(coin, px)
        elif op in ("drop_ws", "fire_scheduled_cancel", "restart"):
            self.apply_faults(op)
        else:
            raise ValueError(f"unknown op {op!r}")
        self.venue.commit()
        return {"ok": True, **self.state()}

    def apply_faults(self, spec: str) -> None:
        names = self.faults.apply(spec, wall_ms())
        for name in names:
            if name in ("partial_fills", "clear"):
                self.venue.engine.partial_fills = self.faults.partial_fills
            elif name == "drop_ws":
                self.hub.drop_all()
            elif name == "fire_scheduled_cancel":
                self.venue.fire_scheduled(wall_ms(), force=True)
                self.venue.commit()
            elif name == "restart":
                self.restart()

    def restart(self) -> None:
        """What a crash-free restart looks like to clients: state persisted, sockets dropped, the
        venue read back as a new process would read it."""
        self.venue.commit()
        state = None if self.settings.state else self.venue.to_state()
        self.venue.save()
        self.hub.drop_all()
        self.venue = HlVenue(self.settings, listener=self.hub.publish, state=state)
        self.hub.venue = self.venue
        self.venue.faults = self.faults
        self.venue.engine.partial_fills = self.faults.partial_fills
        log.info("venue restarted from %s", self.settings.state or "memory")

    def state(self) -> dict:
        venue, now = self.venue, wall_ms()
        users = {}
        for user in sorted(venue.users):
            sizes = {c: venue.engine.position(user, c).size for c in venue.coins}
            users[user] = {
                "positions": {c: P.num(size) for c, size in sizes.items() if size},
                "open_orders": len(venue.engine.open_orders(user)),
                "fills": len(venue.engine.fills(user)),
                "scheduled_cancel": venue.scheduled.get(user),
                "scheduled_cancel_triggers_today": venue.triggers_today(user, now)}
        return {"time": now, "mids": venue.mids(), "paused": venue.paused,
                "faults": self.faults.describe(now), "users": users,
                "ws_connections": len(self.hub.connections)}

    # -- running -----------------------------------------------------------------------------------
    async def ticker(self) -> None:
        while not self._stopping.is_set():
            try:
                now = wall_ms()
                self.venue.tick(now)
                self.hub.periodic(self.venue, now)
            except Exception:
                log.exception("tick failed")
            try:
                await asyncio.wait_for(self._stopping.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, host: str, port: int, ready_file: str | None = None, announce=print) -> None:
        runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        ticker = asyncio.create_task(self.ticker())
        announce(f"gridbot exchange-sim hyperliquid listening on {self.url}")
        if ready_file:
            write_json_atomic(ready_file, {"url": self.url, "pid": os.getpid()})
        try:
            await self._stopping.wait()
        finally:
            await ticker
            self.venue.commit()
            self.venue.save()
            await self.hub.close_all()
            await runner.cleanup()


def serve(venue: HlVenue, host: str, port: int, faults: str = "", ready_file: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; the state is saved on the way out."""
    import signal

    async def main() -> None:
        server = HlServer(venue, faults)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        await server.run(host, port, ready_file, announce=lambda line: print(line, flush=True))

    asyncio.run(main())
    return 0
