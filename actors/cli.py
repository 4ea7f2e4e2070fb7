"""The `gridbot` command line: run, the remote admin commands, and the local exchange simulators.

Config errors exit 2 with one line naming the file and key, never a traceback; an admin command that
cannot reach its bot exits 1 with one line saying why.
"""
from __future__ import annotations

import json
import sys


def main(argv=None) -> int:
    """`gridbot`: parse the command line; config errors exit 2 with one line, never a traceback."""
    import argparse

    from actors import launcher
    from config.schema import ConfigError

    parser = argparse.ArgumentParser(prog="gridbot", description="Grid-trading bot (Thespian actors).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot in the foreground")
    run.add_argument("--config", help="TOML config (default: config/paper.toml)")
    run.add_argument("--state-dir", help="journal, logs and admin files (overrides bot.state_dir)")
    run.add_argument("--data", help="candle CSV for the paper exchange's price path")
    run.add_argument("--speed", type=float, help="paper: simulated seconds per real second")
    run.add_argument("--duration", type=float, help="stop cleanly after this many seconds")
    run.add_argument("--summary", help="write a JSON summary here at exit")
    run.add_argument("--base-url", help="the venue's API URL (e.g. a local `gridbot exchange-sim`)")
    for name, text in (("status", "show a running bot's status"), ("halt", "cancel every order, place nothing"),
                       ("resume", "reconcile with the exchange and trade again"),
                       ("flatten", "halt, then close the position with reduce-only orders"),
                       ("shutdown", "stop the bot as Ctrl-C would")):
        admin = sub.add_parser(name, help=text)
        admin.add_argument("--state-dir", help="the bot's state directory (default: from --config)")
        admin.add_argument("--config", help="the bot's config, to find its state directory")
        admin.add_argument("--reason", default="", help="journaled with the command")
        admin.add_argument("--json", action="store_true", help="print the answer as JSON")
        admin.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    inject = sub.add_parser("inject", help="fault injection (tests, chaos): make an actor exit or raise")
    inject.add_argument("role", choices=("gateway", "guarantor", "orderbook", "position", "grid", "risk", "balance"))
    inject.add_argument("kind", choices=("exit", "raise"))
    inject.add_argument("--state-dir", required=True)
    inject.add_argument("--json", action="store_true")
    inject.add_argument("--timeout", type=float, default=10.0)
    chaos = sub.add_parser("chaos", help="run the bot against the local exchange under random faults")
    chaos.add_argument("--exchange", default="hyperliquid", choices=("hyperliquid", "binance"))
    chaos.add_argument("--faults", type=int, default=20, help="how many faults to inject")
    chaos.add_argument("--seed", type=int, default=1)
    chaos.add_argument("--data", help="candle CSV for the exchange's price path")
    chaos.add_argument("--out", help="write the JSON report here too")
    bench = sub.add_parser("bench", help="measure latency, recovery, request weight, fsync, memory, backtest speed")
    bench.add_argument("--out", help="write the JSON here too")
    bench.add_argument("--parts", default="multiproc,simple,inprocess,wick,steady,fsync,backtest",
                       help="comma-separated subset of the measurements")
    backtest = sub.add_parser("backtest", help="replay a candle CSV through the bot on the paper venue")
    from sim.backtest.cli import add_parser_arguments
    add_parser_arguments(backtest)
    sim = sub.add_parser("exchange-sim", add_help=False,
                         help="run a local exchange that speaks a real venue's protocol (see --help)")
    sim.add_argument("venue_args", nargs=argparse.REMAINDER)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["exchange-sim"]:
        from sim.cli import exchange_sim_main
        return exchange_sim_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command in ("status", "halt", "resume", "flatten", "shutdown", "inject"):
        return admin_main(args)
    if args.command == "bench":
        from sim.bench import PARTS, bench_main
        parts = tuple(p for p in args.parts.split(",") if p)
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            print(f"gridbot bench: unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})", file=sys.stderr)
            return 2
        return bench_main(args.out, parts)
    if args.command == "backtest":
        from sim.backtest.cli import backtest_main
        return backtest_main(args)
    if args.command == "chaos":
        from sim.chaos import chaos_main
        return chaos_main(args.exchange, args.faults, args.seed, args.data, args.out)
    try:
        config = launcher.load_config(args)
    except ConfigError as exc:
        print(f"gridbot: config error: {exc}", file=sys.stderr)
        return 2
    return launcher.run(config, duration=args.duration, summary_path=args.summary)


def admin_main(args) -> int:
    """A remote admin command; never starts an actor system of its own, never stops the bot by accident."""
    from pathlib import Path

    from actors.admin import AdminError, ask, send
    from actors.launcher import plain
    from config.schema import ConfigError, load
    from messages.lifecycle import InjectFault
    try:
        state_dir = Path(args.state_dir) if args.state_dir else load(args.config).state_path
        if args.command == "inject":
            data = plain(send(state_dir, InjectFault(args.role, args.kind), args.timeout, "inject"))
        else:
            data = plain(ask(state_dir, args.command, args.reason, args.timeout))
    except ConfigError as exc:
        print(f"gridbot: config error: {exc}", file=sys.stderr)
        return 2
    except AdminError as exc:
        print(f"gridbot {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    elif args.command == "status":
        from rich.console import Console

        from actors.status_view import render
        Console().print(render(data))
    else:
        print(f"{args.command}: {data.get('outcome')} (mode {data.get('mode')})")
    return 0 if data.get("ok", True) else 1


