"""The aiohttp application: REST under /api/v3, the WebSocket API at /ws-api/v3, market streams at
/ws/<streams> and /stream?streams=, and POST /control for tests, on one port.

One asyncio loop owns the venue, so every request and every tick runs to completion without locks.
A ticker walks the price paths every 50 ms; faults from `faults.py` are applied here and in `ws.py`,
at the protocol edge, so the venue itself stays honest.

POST /control (localhost only) takes `{"op": OP, ...}` and answers the `state` document (plus
`"ok": true`) or HTTP 400 `{"error": ...}`:
    {"op": "fund", "account": KEY, "asset": "USDT", "amount": "100"}   deposit (negative: withdraw);
                                            "secret": S as well creates the account
    {"op": "faults", "spec": "http_429=1,clock_skew_ms=20000"}         see faults.py for the grammar
    {"op": "pause"} / {"op": "resume"}                                 freeze / unfreeze the price paths
    {"op": "set_price", "symbol": "BTCUSDT", "price": "46000"}         move a market now (orders fill)
    {"op": "drop_ws"} / {"op": "user_stream_unsubscribe"} / {"op": "restart"}   the one-shot faults
    {"op": "limits", "weight_1m": N, "orders_10s": N, "orders_1d": N,
     "max_num_orders": N, "symbol": S}                                 change rate limits / MAX_NUM_ORDERS
    {"op": "state"} -> {"time", "mid", "mids", "paused", "faults", "limits", "ws_connections",
                        "subscriptions", "accounts": {KEY: {"balances": {ASSET: {"free", "locked"}},
                                                             "open_orders", "trades"}}}
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from decimal import Decimal, InvalidOperation

import orjson
from aiohttp import web

from sim.binance import protocol as P
from sim.binance.faults import Faults
from sim.binance.limits import Limits
from sim.binance.params import TEXT, ApiError, check_signed, parse_params
from sim.binance.rest import ENDPOINTS, Endpoint
from sim.binance.venue import BnVenue, wall_ms
from sim.binance.ws import Hub
from sim.book import write_json_atomic

__all__ = ["BnServer", "serve"]

log = logging.getLogger("gridbot.exchange_sim.binance")
TICK_S = 0.05
_LOCAL = {"127.0.0.1", "::1", "localhost"}


class BnServer:
    def __init__(self, venue: BnVenue, faults: str = ""):
        self.settings = venue.settings
        self.faults = Faults()
        self.limits = Limits()
        self.hub = Hub(self.faults)
        self._attach(venue)
        self._stopping = asyncio.Event()
        self.url = ""
        self.apply_faults(faults)

    def _attach(self, venue: BnVenue) -> None:
        self.venue = venue
        venue.listener = self.hub.publish
        venue.limits = self.limits
        self.hub.venue = venue
        venue.engine.partial_fills = self.faults.partial_fills
        venue.skew_ms = self.faults.clock_skew_ms

    # -- the app -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        for (method, path), ep in ENDPOINTS.items():
            app.router.add_route(method, f"/api/v3/{path}", self._route(ep))
        app.router.add_post("/control", self.control)
        app.router.add_get("/ws-api/v3", self.hub.api_handler)
        app.router.add_get("/ws/{streams:.*}", self.hub.stream_handler)
        app.router.add_get("/ws", self.hub.stream_handler)
        app.router.add_get("/stream", self.hub.stream_handler)
        return app

    def _route(self, ep: Endpoint):
        async def handle(request: web.Request) -> web.Response:
            return await self.rest(request, ep)
        return handle

    async def rest(self, request: web.Request, ep: Endpoint) -> web.Response:
        """One REST call: weight and 429/418 first, then auth, then the handler; Binance's headers."""
        ip, real_now = request.remote or "?", wall_ms()
        headers: dict[str, str] = {}
        venue = self.venue
        try:
            query = request.raw_path.partition("?")[2]
            body = await request.text() if request.method != "GET" else ""
            params = parse_params(query, body)
            weight = ep.weight(params) if callable(ep.weight) else ep.weight
            headers["X-MBX-USED-WEIGHT-1M"] = str(self.limits.admit(ip, weight, real_now, self.faults.take_429()))
            now = venue.now()
            account = None
            if ep.signed:
                account = check_signed(request.headers.get("X-MBX-APIKEY"), venue.secrets, query, body,
                                       params, now)
            status, payload = 200, ep.handler(venue, params, account, now)
            if ep.orders:
                headers.update(self.limits.order_headers(account, now))
        except ApiError as exc:
            status, payload = exc.status, exc.body()
            headers.update(exc.headers)
        except Exception:
            log.exception("request failed: %s %s", request.method, request.raw_path[:300])
            status, payload = 500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        venue.commit()
        if status == 200 and self.faults.take_5xx():
            status, payload = 503, {"code": -1007, "msg": TEXT[-1007]}
        headers.setdefault("X-MBX-USED-WEIGHT-1M", str(self.limits.used(ip, real_now)))
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json",
                            headers=headers)

    # -- control (tests) ----------------------------------------------------------------------------
    async def control(self, request: web.Request) -> web.Response:
        if request.remote not in _LOCAL:
            return web.json_response({"error": "control is for localhost only"}, status=403)
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("op"), str):
                raise ValueError("expected a JSON object with an 'op'")
            result = self.run_op(body["op"], body)
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.Response(body=orjson.dumps(result), content_type="application/json")

    def run_op(self, op: str, body: dict) -> dict:
        venue = self.venue
        if op == "state":
            return self.state()
        if op == "fund":
            account = str(body["account"])
            if "secret" in body and account not in venue.secrets:
                venue.add_account(account, str(body["secret"]))
            venue.fund(account, str(body["asset"]), Decimal(str(body["amount"])))
        elif op == "faults":
            self.apply_faults(str(body["spec"]))
        elif op in ("pause", "resume"):
            venue.tick(wall_ms())
            venue.paused = op == "pause"
            venue.dirty = True
        elif op == "set_price":
            symbol, price = body["symbol"], Decimal(str(body["price"]))
            if symbol not in venue.symbols or not price.is_finite() or price <= 0:
                raise ValueError(f"set_price needs a listed symbol and a positive price, got {symbol!r} {price}")
            venue.set_price(symbol, price)
        elif op in ("drop_ws", "user_stream_unsubscribe", "restart"):
            self.apply_faults(op)
        elif op == "limits":
            self.set_limits(body)
        else:
            raise ValueError(f"unknown op {op!r}")
        self.venue.commit()
        return {"ok": True, **self.state()}

    def set_limits(self, body: dict) -> None:
        for name in ("weight_1m", "orders_10s", "orders_1d"):
            if name in body:
                setattr(self.limits, name, int(body[name]))
        if "max_num_orders" in body:
            symbol = body.get("symbol", self.venue.symbols[0])
            rules = self.venue.engine.rules(symbol)
            self.venue.engine.set_rules(dataclasses.replace(rules, max_orders=int(body["max_num_orders"])))
            self.venue.dirty = True

    def apply_faults(self, spec: str) -> None:
        for name in self.faults.apply(spec, wall_ms()):
            if name in ("partial_fills", "clock_skew_ms", "clear"):
                self.venue.engine.partial_fills = self.faults.partial_fills
                self.venue.skew_ms = self.faults.clock_skew_ms
                if name == "clear":
                    self.limits.clear()
            elif name == "drop_ws":
                self.hub.drop_all()
            elif name == "user_stream_unsubscribe":
                self.hub.unsubscribe_all()
            elif name == "restart":
                self.restart()

    def restart(self) -> None:
        """What a crash-free restart looks like to clients: state persisted, sockets dropped, the venue
        read back as a new process would read it."""
        self.venue.commit()
        state = None if self.settings.state else self.venue.to_state()
        self.venue.save()
        self.hub.drop_all()
        self._attach(BnVenue(self.settings, state=state))
        log.info("venue restarted from %s", self.settings.state or "memory")

    def state(self) -> dict:
        venue = self.venue
        now = venue.now()
        accounts = {}
        for key in sorted(venue.secrets):
            balances = venue.engine.balances(key)
            accounts[key] = {
                "balances": {a: {"free": P.d8(b.free), "locked": P.d8(b.locked)} for a, b in sorted(balances.items())},
                "open_orders": sum(1 for i in venue.infos.values() if i.account == key and venue.is_open(i)),
                "trades": len(venue.engine.fills(key))}
        mids = {s: P.d8(venue.engine.mid(s)) for s in venue.symbols}
        return {"time": now, "mid": mids[venue.symbols[0]], "mids": mids, "paused": venue.paused,
                "faults": self.faults.describe(wall_ms()), "limits": self.limits.settings(),
                "ws_connections": self.hub.connections, "subscriptions": self.hub.subscriptions,
                "accounts": accounts}

    # -- running -----------------------------------------------------------------------------------
    async def ticker(self) -> None:
        while not self._stopping.is_set():
            try:
                now = wall_ms()
                self.venue.tick(now)
                self.hub.periodic(now)
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
        announce(f"gridbot exchange-sim binance listening on {self.url}")
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


def serve(venue: BnVenue, host: str, port: int, faults: str = "", ready_file: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; the state is saved on the way out."""
    import signal

    async def main() -> None:
        server = BnServer(venue, faults)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        await server.run(host, port, ready_file, announce=lambda line: print(line, flush=True))

    asyncio.run(main())
    return 0
