"""`gridbot bench`: measure what the issue's targets are about, on this machine, and write them as JSON.

Each measurement runs in a process of its own (`python -m sim.bench PART`), so one actor system never
leaks into the next and peak memory is the bot's alone. Figures:

- fill -> counter-order inside the bot: from the gateway receiving fills to the gateway sending the next
  order (the gateway keeps the samples), p50/p99, on multiprocTCPBase and on simpleSystemBase;
- a 40-level wick on the local Hyperliquid: 40 buys filled in one push; the gateway's reaction time and
  the number of order requests used until all 40 counter-orders rest;
- recovery: an actor SIGKILLed -> the bot trading again (seen from outside, polled every 20 ms);
- steady state: REST request weight per minute on the local Hyperliquid with no fills;
- journal fsync p99 (one fill per transaction, as the guarantor journals a stream fill);
- peak RSS of the whole bot (every process's VmHWM, summed);
- backtest candles per second over the January 2022 file, if the backtest module is present.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sim.chaos import poll_until

REPO = Path(__file__).resolve().parents[1]

JANUARY = REPO.parent / "shared" / "data" / "btc-perp-2022-01-1m.csv"
PARTS = ("multiproc", "simple", "inprocess", "wick", "steady", "fsync", "backtest")


def _status(system, supervisor) -> dict:
    from actors.launcher import ask_for
    from messages.lifecycle import StatusReport, StatusRequest
    rid = int(time.monotonic() * 1e6)
    reply = ask_for(system, supervisor, StatusRequest(rid), 10,
                    lambda r: isinstance(r, StatusReport) and r.request_id == rid)
    return reply.data if reply is not None else {}


def _paper_config(state: Path, **paper):
    from config.schema import BotConfig
    data = str(JANUARY) if JANUARY.exists() else ""
    return BotConfig().with_overrides(bot={"state_dir": str(state), "id": f"bench{os.getpid()}"},
                                      paper={"data": data, "speed": 1800.0, **paper})


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    from actors.lifeline import descendants
    return [root] + descendants(root)


# -- parts (each in its own process) --------------------------------------------------------------
def part_paper(base: str, seconds: float) -> dict:
    """The paper bot on `base`: reaction latency; on multiproc also recovery and peak RSS."""
    from actors import launcher
    state = Path(tempfile.mkdtemp(prefix="gridbot-bench-")) / "state"
    system, supervisor, _, _ = launcher.start_system(_paper_config(state), base=base)
    result: dict = {}
    try:
        poll_until(lambda: _status(system, supervisor).get("mode") == "trading", 60, "trading", 0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:        # on simpleSystemBase timers only fire while we ask
            data = _status(system, supervisor)
        result["fill_to_order_ms"] = data["details"]["gateway"]["fill_to_order_ms"]
        result["fills"] = data.get("fills")
        if base.startswith("multiproc"):
            result["peak_rss_mb"] = round(sum(_vm_hwm_kb(p) for p in _tree(os.getpid())) / 1024, 1)
            result["processes"] = len(_tree(os.getpid()))
            pid = data["actors"]["grid"]["pid"]
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            poll_until(lambda: (lambda s: s.get("mode") == "trading" and s["actors"]["grid"]["restarts"] >= 1 and
                           s["actors"]["grid"]["pid"] not in (None, pid))(_status(system, supervisor)),
                  30, "trading after the restart")
            # The supervisor journals the moment it trades again; a status poll would add its own wait
            # for the dead actor's report.
            from adapters.journal import Journal
            journal = Journal(state / "journal.db")
            back = min(t for t, _, detail in journal.events("mode") if t > killed and detail.startswith("trading"))
            journal.close()
            result["recovery_s"] = round(back - killed, 3)
    finally:
        system.shutdown()
        launcher.reap_children(10)
    return result


def part_hyperliquid(kind: str) -> dict:
    """The bot against the local Hyperliquid: a 40-level wick, or a quiet minute's request weight."""
    from sim.chaos import HyperliquidChaos
    work = Path(tempfile.mkdtemp(prefix="gridbot-bench-hl-"))
    venue = HyperliquidChaos(work, None, 1)
    try:
        venue.start_sim()
        venue.control("pause")
        levels = 40 if kind == "wick" else 5
        venue._write_config("hyperliquid", "BTC", f"""[hyperliquid]
base_url = "{venue.url}"
dead_man_s = 60.0""", levels=levels, spacing_pct=0.02, max_position=1, max_open_orders=200,
                            audit_interval_s=30.0)     # the default audit cadence
        venue.start_bot()
        poll_until(lambda: len(venue.open_order_prices()) >= 2 * levels, 90, "the whole grid resting", 0.2)
        before = venue.admin("status")["details"]["gateway"]
        if kind == "steady":
            time.sleep(20.0)                 # the measurement window itself, not a synchronization
            after = venue.admin("status")["details"]["gateway"]
            return {"weight_used_last_minute": after.get("weight_used_1m"),
                    "note": "venue paused, no fills; weight over the last 60 s as the adapter counts it"}
        mid = Decimal(venue.control("state")["mids"]["BTC"])
        low = min(Decimal(p) for p in venue.open_order_prices())
        venue.control("set_price", coin="BTC", px=str((low * Decimal("0.9999")).quantize(Decimal(1))))
        poll_until(lambda: sum(1 for _ in venue.exchange_fills()) >= 40, 30, "the 40 fills", 0.05)
        poll_until(lambda: len(venue.open_order_prices()) >= 2 * levels - 1, 30, "the wick countered", 0.05)
        after = venue.admin("status")["details"]["gateway"]
        return {"levels_filled": 40, "from": str(mid), "to": str(low),
                "reaction_ms": after["fill_to_order_ms"]["max"],
                "order_requests": after["place_requests"] - before["place_requests"]}
    finally:
        venue.close()


def part_inprocess(candles: int = 5000) -> dict:
    """The same path with no transport at all: the state classes on one queue (sim/backtest's
    pipeline), journal fsync kept, the first `candles` of January; the gateway's own samples."""
    from sim.backtest.pipeline import Pipeline
    state = Path(tempfile.mkdtemp(prefix="gridbot-bench-ip-")) / "state"
    bot = Pipeline(_paper_config(state).with_overrides(timing={"audit_interval_s": 3600.0}), durable=True)
    bot.start()
    walked = 0
    while walked < candles and bot.step(1):
        walked += 1
    result = {"fill_to_order_ms": bot.status("gateway")["fill_to_order_ms"], "candles": walked}
    bot.close()
    return result


def part_fsync(count: int = 500) -> dict:
    from adapters.journal import Journal
    from messages.reports import FillReport
    from messages.types import FillSource, Side
    journal = Journal(Path(tempfile.mkdtemp(prefix="gridbot-bench-j-")) / "journal.db")
    samples = []
    for i in range(count):
        fill = FillReport(str(i), "BTC", Side.BUY, Decimal("40000"), Decimal("0.001"), Decimal("0.006"), "USDC",
                          1_000 + i, client_id=f"c{i}")
        t = time.perf_counter()
        journal.record_fills([fill], FillSource.WS)
        samples.append((time.perf_counter() - t) * 1000)
    journal.close()
    from actors.gateway import percentiles
    return {"fill_fsync_ms": percentiles(samples)}


def part_backtest() -> dict:
    from sim.backtest import ISSUE_GRID, run_backtest
    if not JANUARY.exists():
        return {"skipped": f"{JANUARY} not present"}
    summary = run_backtest(str(JANUARY), None, None, overrides={"grid": ISSUE_GRID})
    return {"candles": summary["candles"], "fills": summary["fills"],
            "candles_per_second": float(summary["candles_per_second"]), "wall_seconds": float(summary["wall_seconds"]),
            "peak_rss_mb": round(_vm_hwm_kb(os.getpid()) / 1024, 1)}


def run_part(name: str) -> dict:
    if name == "multiproc":
        return part_paper("multiprocTCPBase", 20.0)
    if name == "simple":
        return part_paper("simpleSystemBase", 10.0)
    if name in ("wick", "steady"):
        return part_hyperliquid(name)
    if name == "fsync":
        return part_fsync()
    if name == "inprocess":
        return part_inprocess()
    if name == "backtest":
        return part_backtest()
    raise ValueError(name)


# -- the command ---------------------------------------------------------------------------------
def bench_main(out: str | None, parts: tuple[str, ...] = PARTS) -> int:
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}}
    for name in parts:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "sim.bench", name], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
        try:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            results[name] = {"error": (proc.stderr or proc.stdout).strip()[-500:]}
        results[name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"{name}: {json.dumps(results[name])}", file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2)
    if out:
        Path(out).write_text(text)
    print(text)
    return 0 if all("error" not in results[p] for p in parts) else 1


if __name__ == "__main__":
    print(json.dumps(run_part(sys.argv[1])))
