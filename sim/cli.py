"""`gridbot exchange-sim VENUE [options]`: run a local exchange that speaks a real venue's protocol.

Errors in the command line or the venue's inputs (data file, state file, fault spec) print one line on
stderr and exit with code 2, never a traceback; SIGTERM/SIGINT save the state and exit 0.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from decimal import Decimal, InvalidOperation

__all__ = ["exchange_sim_main", "VENUES"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line instead of usage + error."""

    def error(self, message: str):
        raise _UsageError(message)


def _fund(text: str) -> tuple[str, Decimal]:
    address, sep, amount = text.partition(":")
    if not sep or not _ADDRESS.match(address):
        raise argparse.ArgumentTypeError(f"--fund expects 0xADDRESS:USDC, got {text!r}")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--fund amount must be a number, got {amount!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"--fund amount must be positive, got {amount!r}")
    return address.lower(), value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value
    return parse


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0-65535 (0 = pick a free one), got {text!r}")
    return int(text)


def _hyperliquid_parser() -> _Parser:
    from sim.hyperliquid import faults

    parser = _Parser(
        prog="gridbot exchange-sim hyperliquid", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A local Hyperliquid exchange (HTTP /info, /exchange, WebSocket /ws, test-only "
                    "/control) for the unmodified hyperliquid-python-sdk. Markets: BTC (follows --data "
                    "when given), ETH, SOL, ATOM (seeded synthetic candles). The clock is the wall clock; "
                    "the candle paths only supply prices.",
        epilog="Fault " + faults.__doc__[faults.__doc__.index("SPEC grammar"):])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: pick a free one)")
    parser.add_argument("--data", help="1-minute candle CSV for BTC (default: synthetic candles)")
    parser.add_argument("--speed", type=_positive(float), default=60.0,
                        help="simulated seconds of candles per real second (default 60)")
    parser.add_argument("--faults", default="", metavar="SPEC", help="faults to start with (see below)")
    parser.add_argument("--state", help="persist the venue here and resume from it when it exists")
    parser.add_argument("--fund", type=_fund, action="append", default=[], metavar="ADDRESS:USDC",
                        help="credit USDC to an address the venue does not know yet (repeatable)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic paths (default 7)")
    parser.add_argument("--page-limit", type=_positive(int), default=2000,
                        help="fills per userFillsByTime answer (default 2000, as the real API)")
    parser.add_argument("--ready-file", help="write {url, pid} here (atomically) once listening")
    return parser


def _hyperliquid_main(argv: list[str]) -> int:
    from sim.hyperliquid.faults import parse_spec
    from sim.hyperliquid.server import serve
    from sim.hyperliquid.venue import HlVenue, VenueSettings

    args = _hyperliquid_parser().parse_args(argv)
    try:
        parse_spec(args.faults)
    except ValueError as exc:
        raise _UsageError(f"--faults: {exc}") from None
    settings = VenueSettings(data=args.data, speed=args.speed, seed=args.seed, state=args.state,
                             page_limit=args.page_limit)
    try:
        venue = HlVenue(settings)
        for address, amount in args.fund:
            if address not in venue.users:
                venue.fund(address, amount)
        venue.commit()
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    except (KeyError, TypeError) as exc:
        raise _UsageError(f"{args.state}: not a valid venue state ({type(exc).__name__}: {exc})") from None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(venue, args.host, args.port, args.faults, args.ready_file)
    except OSError as exc:
        raise _UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from None


def _account(text: str) -> tuple[str, str, list[tuple[str, Decimal]]]:
    key, sep, rest = text.partition(":")
    secret, _, funds = rest.partition(":")
    if not sep or not _KEY.match(key) or not _KEY.match(secret):
        raise argparse.ArgumentTypeError(f"--account expects API_KEY:API_SECRET[:ASSET=AMOUNT,...] (letters, "
                                         f"digits, - and _), got {text!r}")
    balances = []
    for item in filter(None, funds.split(",")):
        asset, eq, amount = item.partition("=")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal(-1)
        if not eq or not _ASSET.match(asset) or not value.is_finite() or value <= 0:
            raise argparse.ArgumentTypeError(f"--account balance must be ASSET=AMOUNT with AMOUNT > 0, got {item!r}")
        balances.append((asset, value))
    return key, secret, balances


def _binance_parser() -> _Parser:
    from sim.binance import faults
    from sim.binance.protocol import SPECS

    parser = _Parser(
        prog="gridbot exchange-sim binance", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A local Binance spot exchange (REST /api/v3, WebSocket API /ws-api/v3, market streams "
                    "/ws and /stream, test-only /control) for the unmodified python-binance client. "
                    f"Symbols: {', '.join(SPECS)}; the first --symbol follows --data when given, the others "
                    "seeded synthetic candles. The clock is the wall clock; the candle paths only supply prices.",
        epilog="Fault " + faults.__doc__[faults.__doc__.index("SPEC grammar"):])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: pick a free one)")
    parser.add_argument("--data", help="1-minute candle CSV for the first symbol (default: synthetic candles)")
    parser.add_argument("--speed", type=_positive(float), default=60.0,
                        help="simulated seconds of candles per real second (default 60)")
    parser.add_argument("--faults", default="", metavar="SPEC", help="faults to start with (see below)")
    parser.add_argument("--state", help="persist the venue here and resume from it when it exists")
    parser.add_argument("--account", type=_account, action="append", default=[],
                        metavar="API_KEY:API_SECRET:ASSET=AMOUNT,...",
                        help="an API key pair and its starting balances, for a key the venue does not know "
                             "yet (repeatable)")
    parser.add_argument("--symbol", action="append", default=[], choices=list(SPECS),
                        help="a symbol to list (repeatable; default BTCUSDT)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic paths (default 7)")
    parser.add_argument("--ready-file", help="write {url, pid} here (atomically) once listening")
    return parser


def _binance_main(argv: list[str]) -> int:
    from sim.binance.faults import parse_spec
    from sim.binance.server import serve
    from sim.binance.venue import BnVenue, VenueSettings

    args = _binance_parser().parse_args(argv)
    try:
        parse_spec(args.faults)
    except ValueError as exc:
        raise _UsageError(f"--faults: {exc}") from None
    symbols = tuple(dict.fromkeys(args.symbol)) or ("BTCUSDT",)
    settings = VenueSettings(symbols=symbols, data=args.data, speed=args.speed, seed=args.seed, state=args.state)
    try:
        venue = BnVenue(settings)
        for key, secret, balances in args.account:
            if key in venue.secrets:
                continue
            venue.add_account(key, secret)
            for asset, amount in balances:
                venue.fund(key, asset, amount)
        venue.commit()
    except (OSError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    except (KeyError, TypeError, IndexError) as exc:
        raise _UsageError(f"{args.state}: not a valid venue state ({type(exc).__name__}: {exc})") from None
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(venue, args.host, args.port, args.faults, args.ready_file)
    except OSError as exc:
        raise _UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from None


VENUES = {"hyperliquid": _hyperliquid_main, "binance": _binance_main}


def exchange_sim_main(argv: list[str]) -> int:
    """Entry point: argv starts with the venue name, e.g. ["hyperliquid", "--port", "0"]."""
    usage = f"usage: gridbot exchange-sim {{{','.join(VENUES)}}} [options]  (VENUE --help for options)"
    if not argv:
        print(f"gridbot exchange-sim: error: no venue given; {usage}", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    venue = argv[0]
    if venue not in VENUES:
        print(f"gridbot exchange-sim: error: unknown venue {venue!r} (known: {', '.join(VENUES)})",
              file=sys.stderr)
        return 2
    try:
        return VENUES[venue](argv[1:])
    except _UsageError as exc:
        print(f"gridbot exchange-sim {venue}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
