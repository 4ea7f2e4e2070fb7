"""`gridbot chaos`: the bot against the local exchange, with random faults of every kind, then a halt and
the invariants checked against the exchange's own records.

Everything runs as real processes, as a user would run them: the simulator (`gridbot exchange-sim`),
the bot (`gridbot run`) and every fault through the same doors a real failure uses (the simulator's
fault switches, signals to the bot's processes, the admin port). The report says what was injected and
whether anything was lost, counted twice, left behind or doubled on a level.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

from actors.lifeline import processes_with_arg

REPO = Path(__file__).resolve().parents[1]
VENUE_FAULTS = ("ws_drop", "ws_silence", "http_429", "exchange_5xx", "delay", "dup_fills", "reorder_fills",
                "exchange_restart", "user_stream_lost")
BOT_FAULTS = ("actor_exit", "actor_raise", "actor_sigkill", "supervisor_sigkill", "bot_sigkill")
KINDS = VENUE_FAULTS + BOT_FAULTS
ROLES = ("gateway", "guarantor", "orderbook", "position", "grid", "risk", "balance")


class ChaosError(Exception):
    """The run could not be carried out (not an invariant violation: those go in the report)."""


def poll_until(predicate, seconds: float, what: str, poll: float = 0.3):
    """Re-evaluate `predicate` until it holds (its value is returned) or `seconds` pass. The pause
    paces the polling of other processes' state, which offers nothing to block on."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise ChaosError(f"timed out waiting for {what}")


class Chaos:
    """Venue-neutral: a subclass starts its simulator, writes the bot's config and reads the exchange's
    records (fills, open order prices, position)."""
    exchange = "?"
    venue_faults: dict[str, str] = {}

    def __init__(self, workdir: Path, data: str | None, seed: int):
        self.dir, self.data, self.rng = workdir, data, random.Random(seed)
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.state = workdir / "state"
        self.config = workdir / "bot.toml"
        self.sim = self.bot = None
        self.url = ""
        self.doubled_levels = 0
        self.bot_starts = 0
        self.leftovers = 0

    # -- processes -------------------------------------------------------------------------------
    def start_sim(self) -> None:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def _start_sim(self, module: str, *args: str) -> None:
        ready = self.dir / "sim.ready.json"
        cmd = [sys.executable, "-m", module, "--port", "0", "--ready-file", str(ready), "--speed", "600",
               "--state", str(self.dir / "sim.json"), "--seed", "7", *args]
        if self.data:
            cmd += ["--data", self.data]
        self.sim = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                    stderr=open(self.dir / "sim.err", "w"))
        poll_until(lambda: ready.exists() and json.loads(ready.read_text()).get("url"), 30, "the simulator")
        self.url = json.loads(ready.read_text())["url"]

    def _write_config(self, exchange: str, symbol: str, venue_section: str, levels: int = 5,
                      spacing_pct: float = 0.1, max_position: float = 0.05, max_open_orders: int = 30,
                      audit_interval_s: float = 5.0) -> None:
        self.config.write_text(f"""[bot]
id = "chaos"
exchange = "{exchange}"
state_dir = "{self.state}"

[market]
symbol = "{symbol}"

[grid]
levels_per_side = {levels}
spacing_pct = {spacing_pct}
order_size = 0.001

[risk]
max_position = {max_position}
max_open_orders = {max_open_orders}

[timing]
audit_interval_s = {audit_interval_s}
heartbeat_timeout_s = 5.0
restart_limit = 30

{venue_section}
""")

    def start_bot(self) -> None:
        self.bot_starts += 1
        out = open(self.dir / f"bot-{self.bot_starts}.out", "w")
        self.bot = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(self.config)],
                                    cwd=self.dir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        poll_until(self.trading, 90, "the bot trading")

    def admin(self, *args, tolerate: bool = True) -> dict | None:
        proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), *args, "--state-dir", str(self.state),
                               "--json"], capture_output=True, text=True, timeout=60, env=self.env)
        if proc.returncode != 0:
            if tolerate:
                return None
            raise ChaosError(f"gridbot {args[0]}: {proc.stderr.strip()[-300:]}")
        return json.loads(proc.stdout)

    def trading(self) -> dict | None:
        s = self.admin("status")
        return s if s and s["mode"] == "trading" and (s["open_orders"] or 0) > 0 else None

    # -- the exchange's records -----------------------------------------------------------------
    def control(self, op: str, **kw) -> dict:
        req = urllib.request.Request(f"{self.url}/control", json.dumps({"op": op, **kw}).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def exchange_fills(self) -> list[str]:
        raise NotImplementedError

    def open_order_prices(self) -> list[str]:
        raise NotImplementedError

    def exchange_position(self) -> Decimal:
        raise NotImplementedError

    def journal_fills(self) -> list[str]:
        db = sqlite3.connect(f"file:{self.state / 'journal.db'}?mode=ro", uri=True)
        try:
            return [r[0] for r in db.execute("SELECT trade_id FROM fills")]
        finally:
            db.close()

    def sample_levels(self) -> None:
        """Never two of our orders at one price: sampled between faults."""
        try:
            prices = Counter(self.open_order_prices())
        except Exception:       # noqa: BLE001 - the venue may be restarting: sample next time
            return
        self.doubled_levels += sum(1 for n in prices.values() if n > 1)

    # -- faults ----------------------------------------------------------------------------------
    def inject(self, kind: str) -> None:
        if kind in VENUE_FAULTS:
            op = self.venue_faults[kind]
            if op in ("drop_ws", "restart", "user_stream_unsubscribe"):
                self.control(op)
            else:
                self.control("faults", spec=op)
        elif kind in ("actor_exit", "actor_raise"):
            self.admin("inject", self.rng.choice(ROLES), kind.split("_")[1])
        elif kind == "actor_sigkill":
            status = self.admin("status") or {}
            pid = (status.get("actors") or {}).get(self.rng.choice(ROLES), {}).get("pid")
            if pid:
                _kill(pid)
        elif kind == "supervisor_sigkill":
            pid = (self.admin("status") or {}).get("supervisor_pid")
            if pid:
                _kill(pid)
        elif kind == "bot_sigkill":
            os.killpg(self.bot.pid, signal.SIGKILL)       # kill -9 of `gridbot run`: the rest follows it
            self.bot.wait(10)
            try:
                poll_until(lambda: not processes_with_arg(str(self.config)), 15, "every old bot process gone")
            except ChaosError:
                self.leftovers += 1          # the next launcher stops them (actors/launcher.reap_stale)
            self.start_bot()

    def run(self, faults: int) -> dict:
        started = time.monotonic()
        self.start_sim()
        self.write_config()
        self.start_bot()
        injected: Counter = Counter()
        plan: list[str] = []
        kinds = [k for k in KINDS if k in BOT_FAULTS or k in self.venue_faults]
        while len(plan) < faults:           # every kind once before any kind twice
            batch = list(kinds)
            self.rng.shuffle(batch)
            plan += batch
        plan = plan[:faults]
        for kind in plan:
            self.inject(kind)
            injected[kind] += 1
            end = time.monotonic() + self.rng.uniform(2.0, 4.0)
            while time.monotonic() < end:
                self.sample_levels()
                time.sleep(0.5)     # pacing the sampling of another process's book, not synchronization
            self.control("faults", spec="clear")
        poll_until(self.trading, 90, "the bot trading after the last fault")
        self.admin("halt", "--reason", "chaos over", tolerate=False)
        poll_until(lambda: not self.open_order_prices(), 60, "every order cancelled after the halt")
        status = poll_until(lambda: (lambda s: s if s and s["mode"] == "halted" else None)(self.admin("status")),
                            30, "the halted status")
        try:
            poll_until(lambda: sorted(self.journal_fills()) == sorted(self.exchange_fills()) or None, 30,
                       "the journal to catch up with the exchange")
        except ChaosError:
            pass                    # never caught up: the report below counts what is lost or doubled
        exchange, journal = self.exchange_fills(), self.journal_fills()
        status = self.admin("status") or status
        position = Decimal(str(status.get("position") or 0))
        report = {
            "exchange": self.exchange, "faults_injected": sum(injected.values()),
            "faults_by_kind": dict(sorted(injected.items())),
            "fills_exchange": len(exchange), "fills_journal": len(journal),
            "lost_fills": len(set(exchange) - set(journal)),
            "duplicate_fills": len(journal) - len(set(journal)),
            "unknown_fills": len(set(journal) - set(exchange)),
            "position": str(position), "exchange_position": str(self.exchange_position()),
            "position_matches": position == self.exchange_position(),
            "open_orders_after_halt": len(self.open_order_prices()),
            "doubled_levels_seen": self.doubled_levels, "restarts": status.get("restarts"),
            "bot_starts": self.bot_starts, "kills_that_left_processes": self.leftovers,
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        report["position_mismatches"] = 0 if report["position_matches"] else 1
        report["orphan_orders"] = report["open_orders_after_halt"]
        report["duplicate_level_orders"] = report["doubled_levels_seen"]
        report["violations"] = (report["lost_fills"] + report["duplicate_fills"] + report["unknown_fills"] +
                                report["position_mismatches"] + report["orphan_orders"] +
                                report["duplicate_level_orders"])
        report["ok"] = report["violations"] == 0
        return report

    def close(self) -> None:
        if self.bot is not None and self.bot.poll() is None:
            self.admin("shutdown", "--reason", "chaos over")
            try:
                self.bot.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.bot.pid, signal.SIGKILL)
        if self.sim is not None and self.sim.poll() is None:
            self.sim.terminate()
            self.sim.wait(10)

class HyperliquidChaos(Chaos):
    exchange = "hyperliquid"
    venue_faults = {"ws_drop": "drop_ws", "ws_silence": "ws_silence=3", "http_429": "http_429=3",
                    "exchange_5xx": "exchange_5xx=2", "delay": "delay_ms=300", "dup_fills": "dup_fills=1",
                    "reorder_fills": "reorder_fills=1", "exchange_restart": "restart"}

    def __init__(self, workdir: Path, data: str | None, seed: int):
        super().__init__(workdir, data, seed)
        from eth_account import Account
        key = "0x" + secrets.token_hex(32)
        self.address = Account.from_key(key).address.lower()
        self.env["GRIDBOT_HL_PRIVATE_KEY"] = key

    def start_sim(self) -> None:
        self._start_sim("sim.hyperliquid", "--fund", f"{self.address}:10000")

    def write_config(self) -> None:
        self._write_config("hyperliquid", "BTC", f"""[hyperliquid]
base_url = "{self.url}"
stream_stale_s = 2.0
reconnect_max_s = 1.0
dead_man_s = 60.0""")

    def info(self, body: dict):
        req = urllib.request.Request(f"{self.url}/info", json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def exchange_fills(self) -> list[str]:
        seen: dict[str, None] = {}
        start = 0
        while True:
            page = self.info({"type": "userFillsByTime", "user": self.address, "startTime": start})
            fresh = [f for f in page if str(f["tid"]) not in seen]
            if not fresh:
                return list(seen)
            seen.update((str(f["tid"]), None) for f in fresh)
            start = max(f["time"] for f in page)

    def open_order_prices(self) -> list[str]:
        return [o["limitPx"] for o in self.info({"type": "frontendOpenOrders", "user": self.address})]

    def exchange_position(self) -> Decimal:
        return Decimal(self.control("state")["users"].get(self.address, {}).get("positions", {}).get("BTC", "0"))


class BinanceChaos(Chaos):
    exchange = "binance"
    venue_faults = {"ws_drop": "drop_ws", "ws_silence": "ws_silence=3", "http_429": "http_429=1",
                    "exchange_5xx": "http_5xx=2", "delay": "delay_ms=300", "dup_fills": "dup_fills=1",
                    "reorder_fills": "reorder_fills=1", "exchange_restart": "restart",
                    "user_stream_lost": "user_stream_unsubscribe"}
    KEY, SECRET = "chaos-key", "chaos-secret"

    def __init__(self, workdir: Path, data: str | None, seed: int):
        super().__init__(workdir, data, seed)
        self.env.update(GRIDBOT_BINANCE_API_KEY=self.KEY, GRIDBOT_BINANCE_API_SECRET=self.SECRET)
        self._client = None

    def start_sim(self) -> None:
        self._start_sim("sim.binance", "--account", f"{self.KEY}:{self.SECRET}:USDT=10000,BTC=0.05")

    def write_config(self) -> None:
        self._write_config("binance", "BTCUSDT", f"""[binance]
base_url = "{self.url}"
stream_check_s = 1.0
reconnect_max_s = 1.0""")

    def client(self):
        if self._client is None:
            from binance.base_client import BaseClient
            from binance.client import Client
            BaseClient.API_URL = self.url + "/api"
            self._client = Client(self.KEY, self.SECRET, ping=False)
        return self._client

    def _signed(self, fn, **kw):
        """The venue's clock may be skewed by a fault or its restart: resync once and retry."""
        from binance.exceptions import BinanceAPIException
        try:
            return fn(**kw)
        except BinanceAPIException as exc:
            if exc.code != -1021:
                raise
            client = self.client()
            client.timestamp_offset = client.get_server_time()["serverTime"] - int(time.time() * 1000)
            return fn(**kw)

    def exchange_fills(self) -> list[str]:
        trades, start = [], 0
        while True:
            page = self._signed(self.client().get_my_trades, symbol="BTCUSDT", fromId=start, limit=1000)
            trades += [str(t["id"]) for t in page]
            if len(page) < 1000:
                return trades
            start = page[-1]["id"] + 1

    def open_order_prices(self) -> list[str]:
        return [o["price"] for o in self._signed(self.client().get_open_orders, symbol="BTCUSDT")]

    def exchange_position(self) -> Decimal:
        btc = self.control("state")["accounts"][self.KEY]["balances"].get("BTC", {"free": "0", "locked": "0"})
        return Decimal(btc["free"]) + Decimal(btc["locked"])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def chaos_main(exchange: str, faults: int, seed: int, data: str | None, out: str | None) -> int:
    if data and not Path(data).is_file():
        print(f"gridbot chaos: --data: no such file: {data}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="gridbot-chaos-"))
    venue = {"hyperliquid": HyperliquidChaos, "binance": BinanceChaos}[exchange]
    chaos = venue(workdir, str(Path(data).resolve()) if data else None, seed)
    try:
        report = chaos.run(faults)
    except ChaosError as exc:
        print(f"gridbot chaos: {exc} (logs in {workdir})", file=sys.stderr)
        return 1
    finally:
        chaos.close()
    report["workdir"] = str(workdir)
    text = json.dumps(report, indent=2)
    if out:
        Path(out).write_text(text)
    print(text)
    return 0 if report["ok"] else 1
