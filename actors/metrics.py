"""The Prometheus endpoint: the bot's status, as the launcher already polls it every second, exposed on
127.0.0.1:`bot.metrics_port`/metrics (0 = off) from a registry of its own.

No actor knows about it: `Metrics.update(summary)` turns the supervisor's `summary()` (the launcher's
`StatusReport.data`) into metric families, and a scrape serves the families of the last update. The
HTTP server is prometheus_client's, in a daemon thread of the launcher process only; it is started
after the actor system so no actor process inherits its socket.

Metrics (a missing input leaves its family without samples; it never invents a value):

- `gridbot_info{bot_id,exchange}` 1.
- `mode{mode}` 1 for the current mode, 0 for every other (starting, reconciling, trading, halted,
  emergency, stopping). `risk_halted` 1 while the mode is halted or emergency. `emergency` 1 while an
  emergency stop stands.
- `circuit_breaker_open` 1 while the risk actor's breaker refuses orders; `circuit_breaker_trips_total`.
- `position`, `exchange_position`: the ledger's position and the exchange's, base units;
  `position_limit`: risk.max_position.
- `shadow_ledger_drift`: the position actor's last measured drift, ledger minus exchange, base units
  (its status key `drift`, or `last_drift`); `ledger_drifts_total`: drifts seen;
  `reconciliation_corrections_total`: corrections the ledger took from the exchange.
- `orders_open`: live orders in the order book; `exchange_orders_open`: the exchange's count at the
  last snapshot; `orders{state}`: orders per state machine state (S-3); `orders_pending`: orders not yet
  confirmed either way (intent + submitted + cancel pending); `orders_stuck`: orders the status
  watchdog gave up on plus orders in state unknown; `order_pending_oldest_seconds`: age of the oldest
  pending order, when the order book reports `oldest_pending_s`.
- `fills_total{source}`: journaled fills by source (ws, rest, recon, backfill, status...);
  `fills_duplicates_skipped_total`; `fill_gaps_detected_total` (gaps the guarantor found in a
  stream); `stream_downs_total`; `stream_up` (the gateway's stream is live); `stream_reconnects_total`;
  `audits_total`.
- `grid_level_gap_pct`: how far the price must move before an order of ours fills: the distance from
  the mid to the nearest working grid order, in percent of the mid. In a healthy grid it is about one
  spacing; it grows when the levels around the price have no order (a counter-order missing) or the
  price left the grid, and is +Inf when the grid has a mid but no working order. Computed from the grid
  status's `working_prices` (the prices of the levels holding an order, pending or live). A grid status
  without that key falls back to the nominal ladder rebuilt from `anchor`, `spacing_pct`, `levels` and
  `bias` (no tick rounding), skipping the level nearest the mid (where the grid's empty level normally
  is): the same scale (about one spacing inside the grid), and it shows the price leaving the grid, but
  not a missing order. `grid_levels_working`, `grid_levels_expected`
  (2 x levels per side: every level but the empty one), `grid_coverage_ratio` (working / expected),
  `grid_spacing_pct`, `grid_anchor`, `price` (the gateway's last mid).
- `pnl_realized`, `pnl_unrealized`, `fees` (cumulative, quote), `equity`, `pnl_peak` (risk's peak of
  realized + unrealized - fees), `drawdown`: pnl_peak minus the current PnL, never below 0 (quote).
- `restarts_total`: actor restarts under this supervisor; `actor_restarts_total{role}`,
  `actor_up{role}`, `actor_heartbeat_age_seconds{role}`.
- `api_errors_total{kind}`: the gateway's classified exchange errors; `api_error_streak`: errors since
  the last poll that saw requests succeed without a new error (1 s resolution); `exchange_requests_total`.
- `request_weight_used{window}`, `request_weight_limit{window}`: the venue's request-weight budgets:
  the gateway status's `weight_used_1m` (window "weight_1m", the adapter's own sliding minute; no limit
  sample) or its `budgets` ({window: "used/limit"} or {window: {"used", "limit"}}; the windows whose
  name says "weight"); `order_budget_used{window}`, `order_budget_limit{window}`: the
  other budgets (Binance's order counts). No samples on a venue without budgets (paper).
- `fill_to_order_ms{quantile}`: the gateway's fill received -> next order sent latency (0.5, 0.99, and
  1 for the maximum) over its recent sample.
- `risk_refused_total{reason}`: intents the risk actor refused.
- `status_age_seconds`: seconds since the last status reached the launcher (a stuck supervisor shows
  here); `metrics_update_errors_total`.
"""
from __future__ import annotations

import math
import socket
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

MODES = ("starting", "reconciling", "trading", "halted", "emergency", "stopping")
PENDING_STATES = ("intent", "submitted", "cancel_pending")
HOST = "127.0.0.1"


def num(value: Any) -> float | None:
    """A float from a Decimal, a number or a numeric string (the admin's JSON copy); None otherwise."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _ladder(anchor: float, pct: float, levels: int, bias: str, spacing: str) -> list[float]:
    below, above = {"long": (2 * levels, 0), "short": (0, 2 * levels)}.get(bias, (levels, levels))
    if spacing == "geometric":
        return [anchor * (1 + pct / 100) ** i for i in range(-below, above + 1)]
    return [anchor + anchor * pct / 100 * i for i in range(-below, above + 1)]


def level_gap_pct(grid: dict, spacing: str = "arithmetic") -> float | None:
    """grid_level_gap_pct from a grid status (see the module docstring); None without a mid."""
    mid = num(grid.get("mid"))
    if not mid:
        return None
    if "working_prices" in grid:
        prices = [p for p in (num(v) for v in grid.get("working_prices") or ()) if p]
        return min(abs(mid - p) for p in prices) / mid * 100 if prices else math.inf
    anchor, pct, levels = num(grid.get("anchor")), num(grid.get("spacing_pct")), grid.get("levels")
    if not anchor or not pct or not isinstance(levels, int):
        return None
    gaps = sorted(abs(mid - p) for p in _ladder(anchor, pct, levels, str(grid.get("bias") or "neutral"), spacing))
    return gaps[min(1, len(gaps) - 1)] / mid * 100


def _budget(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, dict):
        return num(value.get("used")), num(value.get("limit"))
    if isinstance(value, str) and "/" in value:
        used, limit = value.split("/", 1)
        return num(used), num(limit)
    return num(value), None


class _Families:
    """Builds one snapshot of metric families."""

    def __init__(self):
        self.out: list = []

    def gauge(self, name: str, doc: str, value: Any = None, labels: tuple[str, ...] = (),
              samples: dict | None = None) -> None:
        self._add(GaugeMetricFamily(name, doc, labels=list(labels)), value, samples)

    def counter(self, name: str, doc: str, value: Any = None, labels: tuple[str, ...] = (),
                samples: dict | None = None) -> None:
        self._add(CounterMetricFamily(name, doc, labels=list(labels)), value, samples)

    def _add(self, family, value, samples) -> None:
        if samples is None:
            v = num(value)
            if v is not None:
                family.add_metric([], v)
        else:
            for key, sample in samples.items():
                v = num(sample)
                if v is not None:
                    family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], v)
        self.out.append(family)


class Metrics:
    """Metric families from the launcher's status polls; `serve()` exposes them over HTTP."""

    def __init__(self, port: int = 0, spacing: str = "arithmetic", clock: Callable[[], float] = time.time):
        self.port = port
        self.spacing = spacing
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._families: list = []
        self._updated: float | None = None
        self._lock = threading.Lock()
        self._errors_seen: float | None = None
        self._requests_seen: float | None = None
        self.error_streak = 0.0
        self.update_errors = 0
        self._server = None
        self._thread = None

    @classmethod
    def for_config(cls, config) -> "Metrics | None":
        port = int(getattr(config.bot, "metrics_port", 0) or 0)
        return cls(port, getattr(config.grid, "spacing", "arithmetic")) if port else None

    # -- HTTP ------------------------------------------------------------------------------------
    def probe(self) -> str:
        """'' when 127.0.0.1:port can be listened on now, else why not (checked before the actor
        system starts, so a busy port stops `gridbot run` before it trades)."""
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, self.port))
            except OSError as exc:
                return f"cannot listen on {HOST}:{self.port} ({exc.strerror or exc})"
        return ""

    def serve(self) -> None:
        from prometheus_client import start_http_server
        self._server, self._thread = start_http_server(self.port, addr=HOST, registry=self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()

    # -- collection ------------------------------------------------------------------------------
    def collect(self):
        with self._lock:
            families, updated = list(self._families), self._updated
        yield from families
        age = GaugeMetricFamily("status_age_seconds", "Seconds since the last status reached the launcher.")
        if updated is not None:
            age.add_metric([], max(0.0, self.clock() - updated))
        yield age
        errors = CounterMetricFamily("metrics_update_errors", "Status polls the metrics could not read.")
        errors.add_metric([], self.update_errors)
        yield errors

    def update(self, summary: dict) -> None:
        """Take one status poll. Never raises: a summary it cannot read is counted, and the last good
        families are served."""
        try:
            families = self._build(summary or {})
        except Exception:                   # the launcher's loop must not die for a metric
            self.update_errors += 1
            return
        with self._lock:
            self._families, self._updated = families, self.clock()

    def _build(self, s: dict) -> list:
        now = self.clock()
        d = _dict(s.get("details"))
        grid, risk, pos, book, guar, gw = (_dict(d.get(k)) for k in
                                           ("grid", "risk", "position", "orderbook", "guarantor", "gateway"))
        breaker = _dict(risk.get("breaker"))
        f = _Families()

        info = InfoMetricFamily("gridbot", "The bot this endpoint belongs to.")
        info.add_metric([], {"bot_id": str(s.get("bot_id") or ""), "exchange": str(s.get("exchange") or "")})
        f.out.append(info)
        mode = str(s.get("mode") or "")
        f.gauge("mode", "1 for the bot's current mode.", labels=("mode",),
                samples={m: int(m == mode) for m in (*MODES, *(() if not mode or mode in MODES else (mode,)))})
        f.gauge("risk_halted", "1 while trading is halted (halted or emergency).",
                int(mode in ("halted", "emergency")) if mode else None)
        f.gauge("emergency", "1 while an emergency stop stands.", int(bool(s.get("emergency") or risk.get("emergency"))))
        f.gauge("circuit_breaker_open", "1 while the circuit breaker refuses orders.",
                int(bool(breaker.get("open"))) if breaker else None)
        f.counter("circuit_breaker_trips", "Circuit breaker trips.", breaker.get("trips"))

        f.gauge("position", "The ledger's position (base units).", s.get("position"))
        f.gauge("exchange_position", "The exchange's position at the last snapshot (base units).",
                s.get("exchange_position"))
        f.gauge("position_limit", "risk.max_position (base units).", risk.get("max_position"))
        f.gauge("shadow_ledger_drift", "Ledger minus exchange position at the last check (base units).",
                pos.get("drift", pos.get("last_drift")))
        f.counter("ledger_drifts", "Ledger/exchange drifts seen.", pos.get("drifts_seen"))
        f.counter("reconciliation_corrections", "Corrections the ledger took from the exchange.",
                  pos.get("corrections"))

        by_state = _dict(book.get("by_state"))
        f.gauge("orders_open", "Live orders in the order book.", s.get("open_orders", book.get("open_orders")))
        f.gauge("exchange_orders_open", "Open orders on the exchange at the last snapshot.",
                s.get("exchange_open_orders"))
        f.gauge("orders", "Orders per state.", labels=("state",), samples=by_state)
        f.gauge("orders_pending", "Orders awaiting the exchange's answer (intent, submitted, cancel pending).",
                sum(num(by_state.get(k)) or 0 for k in PENDING_STATES) if by_state else None)
        f.gauge("orders_stuck", "Orders the status watchdog gave up on, plus orders in state unknown.",
                (num(book.get("unresolved")) or 0) + (num(by_state.get("unknown")) or 0) if book else None)
        f.gauge("order_pending_oldest_seconds", "Age of the oldest pending order.", book.get("oldest_pending_s"))

        fills = _dict(s.get("fills_by_source")) or _dict(guar.get("fills_by_source"))
        f.counter("fills", "Journaled fills by source.", labels=("source",), samples=fills)
        f.counter("fills_duplicates_skipped", "Fills seen again and skipped.", guar.get("duplicates_skipped"))
        f.counter("fill_gaps_detected", "Stream gaps the fill guarantor found.", guar.get("gaps_detected"))
        f.counter("stream_downs", "Times the fill stream went down.", guar.get("stream_downs"))
        f.counter("audits", "Fill/position audits against the exchange.", guar.get("audits"))
        f.gauge("stream_up", "1 while the gateway's stream is live.",
                int(bool(gw["stream_up"])) if "stream_up" in gw else None)
        f.counter("stream_reconnects", "Stream reconnections.", gw.get("reconnects"))

        mid = grid.get("mid") if grid.get("mid") is not None else s.get("price")
        levels = grid.get("levels") if isinstance(grid.get("levels"), int) else None
        working = num(grid.get("working"))
        expected = 2 * levels if levels else None
        f.gauge("grid_level_gap_pct", "Distance from the mid to the nearest working grid order, % of the mid.",
                level_gap_pct({**grid, "mid": mid}, self.spacing) if grid else None)
        f.gauge("grid_levels_working", "Grid levels holding an order (pending or live).", working)
        f.gauge("grid_levels_expected", "Grid levels that should hold an order (all but the empty one).", expected)
        f.gauge("grid_coverage_ratio", "grid_levels_working / grid_levels_expected.",
                working / expected if working is not None and expected else None)
        f.gauge("grid_spacing_pct", "Distance between grid levels, % of the anchor.", grid.get("spacing_pct"))
        f.gauge("grid_anchor", "The grid's anchor price.", grid.get("anchor"))
        f.gauge("price", "The last mid price.", s.get("price"))

        pnl, peak = num(risk.get("pnl")), num(risk.get("peak_pnl"))
        f.gauge("pnl_realized", "Realized PnL (quote).", s.get("realized_pnl"))
        f.gauge("pnl_unrealized", "Unrealized PnL (quote).", s.get("unrealized_pnl"))
        f.gauge("fees", "Fees paid (quote, cumulative).", s.get("fees"))
        f.gauge("equity", "Account equity (quote).", risk.get("equity"))
        f.gauge("pnl_peak", "Peak PnL (quote).", peak)
        f.gauge("drawdown", "Peak PnL minus current PnL (quote).",
                max(0.0, peak - pnl) if pnl is not None and peak is not None else None)

        actors = {str(k): _dict(v) for k, v in _dict(s.get("actors")).items()}
        f.counter("restarts", "Actor restarts.", s.get("restarts"))
        f.counter("actor_restarts", "Restarts per actor.", labels=("role",),
                  samples={k: v.get("restarts") for k, v in actors.items()})
        f.gauge("actor_up", "1 while the actor is alive.", labels=("role",),
                samples={k: int(bool(v.get("alive"))) for k, v in actors.items()})
        f.gauge("actor_heartbeat_age_seconds", "Seconds since the actor's last heartbeat.", labels=("role",),
                samples={k: max(0.0, now - hb) for k, v in actors.items()
                         if (hb := num(v.get("last_heartbeat"))) is not None})

        errors = {str(k): v for k, v in _dict(gw.get("errors")).items()}
        total_errors, requests = sum(num(v) or 0 for v in errors.values()), num(gw.get("requests"))
        if gw:
            if self._errors_seen is not None and total_errors > self._errors_seen:
                self.error_streak += total_errors - self._errors_seen
            elif self._errors_seen is not None and total_errors < self._errors_seen:
                self.error_streak = 0.0                 # a new gateway: counts started again
            elif requests is not None and self._requests_seen is not None and requests > self._requests_seen:
                self.error_streak = 0.0
            self._errors_seen, self._requests_seen = total_errors, requests
        f.counter("api_errors", "Classified exchange errors.", labels=("kind",), samples=errors)
        f.gauge("api_error_streak", "Exchange errors since requests last succeeded without one.",
                self.error_streak if gw else None)
        f.counter("exchange_requests", "Requests sent to the exchange.", requests)
        budgets = {str(k): _budget(v) for k, v in _dict(gw.get("budgets")).items()}
        if gw.get("weight_used_1m") is not None and not any("weight" in k.lower() for k in budgets):
            budgets["weight_1m"] = (num(gw.get("weight_used_1m")), None)
        weight = {k: v for k, v in budgets.items() if "weight" in k.lower()}
        orders = {k: v for k, v in budgets.items() if k not in weight}
        f.gauge("request_weight_used", "Request weight used in the venue's window.", labels=("window",),
                samples={k: u for k, (u, _) in weight.items()})
        f.gauge("request_weight_limit", "Request weight allowed in the venue's window.", labels=("window",),
                samples={k: lim for k, (_, lim) in weight.items()})
        f.gauge("order_budget_used", "New orders counted in the venue's window.", labels=("window",),
                samples={k: u for k, (u, _) in orders.items()})
        f.gauge("order_budget_limit", "New orders allowed in the venue's window.", labels=("window",),
                samples={k: lim for k, (_, lim) in orders.items()})
        latency = _dict(gw.get("fill_to_order_ms"))
        f.gauge("fill_to_order_ms", "Gateway: a fill received -> the next order sent (ms).", labels=("quantile",),
                samples={"0.5": latency.get("p50"), "0.99": latency.get("p99"), "1": latency.get("max")})
        f.counter("risk_refused", "Order intents the risk actor refused.", labels=("reason",),
                  samples=_dict(risk.get("refused")))
        return f.out
