"""The Prometheus metrics: a supervisor summary in, the exposition text out, and the loopback endpoint."""
from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.launcher import free_port, plain
from actors.metrics import Metrics, level_gap_pct
from config.schema import BotConfig

D = Decimal
REQUIRED = ("fills_total", "position", "exchange_position", "orders_open", "grid_level_gap_pct",
            "shadow_ledger_drift", "restarts_total", "pnl_realized", "pnl_unrealized", "drawdown", "mode",
            "request_weight_used", "circuit_breaker_open")


def summary(**over) -> dict:
    """A summary as the supervisor's summary() gives it during a paper run (two restarts, a drift)."""
    hb = 1_000_000.0
    s = {
        "mode": "trading", "reason": "reconciled with the exchange", "emergency": "", "shutdown_requested": "",
        "supervisor_pid": 100, "bot_id": "paper-btc", "exchange": "paper",
        "actors": {role: {"pid": 101 + i, "restarts": 2 if role == "gateway" else 0, "last_heartbeat": hb - i,
                          "alive": True}
                   for i, role in enumerate(("gateway", "guarantor", "orderbook", "position", "grid", "risk",
                                             "balance"))},
        "restarts": 2, "position": D("0.00200"), "exchange_position": D("0.00100"), "open_orders": 19,
        "exchange_open_orders": 19, "fills": 4, "fills_by_source": {"ws": 3, "rest": 1},
        "realized_pnl": D("0.12000"), "unrealized_pnl": D("-0.001200"), "fees": D("0.0359640000"),
        "price": D("39939.4"),
        "details": {
            "guarantor": {"fills": 4, "fills_by_source": {"ws": 3, "rest": 1}, "duplicates_skipped": 5,
                          "gaps_detected": 1, "stream_downs": 1, "audits": 2},
            "orderbook": {"open_orders": 19, "unresolved": 1,
                          "by_state": {"intent": 0, "submitted": 2, "open": 17, "partially_filled": 0,
                                       "cancel_pending": 1, "filled": 4, "cancelled": 0, "rejected": 0,
                                       "unknown": 1}},
            "position": {"position": D("0.002"), "exchange_position": D("0.001"), "corrections": 1,
                         "drifts_seen": 3, "drift": D("0.001")},
            "grid": {"anchor": D("40000"), "epoch": 1, "levels": 10, "bias": "neutral", "spacing_pct": D("0.15"),
                     "working": 20, "cancelling": 0, "mid": D("39939.4"),
                     "working_prices": [D("39820"), D("39880"), D("40000"), D("40060")]},
            "risk": {"max_position": D("0.05"), "pnl": D("0.0828360000"), "peak_pnl": D("0.1198180000"),
                     "equity": D("9999.9988"), "emergency": "", "refused": {"stale": 2, "limit": 0},
                     "breaker": {"open": False, "open_for_s": 0.0, "reason": "", "trips": 1, "rate_limited": 0,
                                 "network": 0, "rejected": 0}},
            "gateway": {"exchange": "paper", "stream_up": True, "requests": 50, "errors": {"transient": 2},
                        "reconnects": 1, "price": D("39939.4")},
        },
    }
    s.update(over)
    return s


def values(text: str) -> dict:
    """{(sample name, ((label, value), ...)): value} from exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scraped(s: dict, clock=lambda: 1_000_000.0) -> dict:
    m = Metrics(clock=clock)
    m.update(s)
    return values(m.exposition())


def test_required_metrics_carry_the_summary_values():
    m = Metrics(clock=lambda: 1_000_000.0)
    m.update(summary())
    text = m.exposition()
    assert 'fills_total{source="ws"} 3.0' in text
    v = values(text)
    assert v[("fills_total", (("source", "ws"),))] == 3
    assert v[("fills_total", (("source", "rest"),))] == 1
    assert v[("position", ())] == 0.002
    assert v[("exchange_position", ())] == 0.001
    assert v[("orders_open", ())] == 19
    assert v[("shadow_ledger_drift", ())] == 0.001
    assert v[("restarts_total", ())] == 2
    assert v[("actor_restarts_total", (("role", "gateway"),))] == 2
    assert v[("pnl_realized", ())] == 0.12
    assert v[("pnl_unrealized", ())] == -0.0012
    assert v[("drawdown", ())] == pytest.approx(0.1198180000 - 0.0828360000)
    assert v[("circuit_breaker_open", ())] == 0
    assert v[("circuit_breaker_trips_total", ())] == 1
    # the nearest working order is the buy at 39880: 59.4 below the mid
    assert v[("grid_level_gap_pct", ())] == pytest.approx(59.4 / 39939.4 * 100)
    for name in REQUIRED:
        assert f"# TYPE {name} " in text, name


def test_mode_is_one_hot_and_halts_show():
    v = scraped(summary())
    assert v[("mode", (("mode", "trading"),))] == 1
    assert sum(val for (name, _), val in v.items() if name == "mode") == 1
    assert v[("risk_halted", ())] == 0
    halted = scraped(summary(mode="emergency", emergency="counter-order failed 5 times"))
    assert halted[("mode", (("mode", "emergency"),))] == 1 and halted[("mode", (("mode", "trading"),))] == 0
    assert halted[("risk_halted", ())] == 1 and halted[("emergency", ())] == 1


def test_the_monitoring_list_of_the_findings():
    """fills by source, pending and stuck orders, gap and coverage, drift, corrections, error streak,
    WS gaps, halts, drawdown."""
    v = scraped(summary())
    assert v[("orders_pending", ())] == 3                  # 2 submitted + 1 cancel pending
    assert v[("orders_stuck", ())] == 2                    # 1 given up by the watchdog + 1 unknown
    assert v[("orders", (("state", "open"),))] == 17
    assert v[("grid_levels_working", ())] == 20 and v[("grid_levels_expected", ())] == 20
    assert v[("grid_coverage_ratio", ())] == 1
    assert v[("ledger_drifts_total", ())] == 3
    assert v[("reconciliation_corrections_total", ())] == 1
    assert v[("fill_gaps_detected_total", ())] == 1 and v[("stream_downs_total", ())] == 1
    assert v[("fills_duplicates_skipped_total", ())] == 5
    assert v[("stream_up", ())] == 1 and v[("stream_reconnects_total", ())] == 1
    assert v[("api_errors_total", (("kind", "transient"),))] == 2
    assert v[("risk_refused_total", (("reason", "stale"),))] == 2
    assert v[("actor_up", (("role", "grid"),))] == 1
    assert v[("actor_heartbeat_age_seconds", (("role", "orderbook"),))] == 2
    assert v[("exchange_requests_total", ())] == 50
    assert v[("gridbot_info", (("bot_id", "paper-btc"), ("exchange", "paper")))] == 1


def test_the_admin_json_copy_gives_the_same_values():
    assert scraped(plain(summary())) == scraped(summary())


def test_grid_level_gap_definitions():
    grid = {"anchor": D("40000"), "levels": 10, "bias": "neutral", "spacing_pct": D("0.15"), "mid": D("39939.4")}
    # fallback: the nominal ladder (step 60) without the level nearest the mid (39940, the empty one)
    assert level_gap_pct(grid) == pytest.approx(59.4 / 39939.4 * 100)
    # below the grid every buy filled: the lowest level (39400) is the empty one, the sells start at 39460
    assert level_gap_pct({**grid, "mid": D("39000")}) == pytest.approx(460 / 39000 * 100)
    assert level_gap_pct({**grid, "working_prices": []}) == math.inf
    assert level_gap_pct({**grid, "working_prices": [D("40600")]}) == pytest.approx(660.6 / 39939.4 * 100)
    assert level_gap_pct({**grid, "mid": None}) is None
    geometric = level_gap_pct({**grid, "mid": D("40100")}, "geometric")       # levels 40060, 40120.09
    assert geometric == pytest.approx((40100 - 40060) / 40100 * 100)


def test_breaker_drawdown_and_budgets():
    s = summary()
    s["details"]["risk"]["breaker"] = {"open": True, "trips": 2, "reason": "rate limited"}
    s["details"]["gateway"]["budgets"] = {"X-MBX-USED-WEIGHT-1M": "300/6000", "X-MBX-ORDER-COUNT-10S": "4/100",
                                          "rest_weight_1m": {"used": 12, "limit": 1200}}
    v = scraped(s)
    assert v[("circuit_breaker_open", ())] == 1
    assert v[("request_weight_used", (("window", "X-MBX-USED-WEIGHT-1M"),))] == 300
    assert v[("request_weight_limit", (("window", "X-MBX-USED-WEIGHT-1M"),))] == 6000
    assert v[("request_weight_used", (("window", "rest_weight_1m"),))] == 12
    assert v[("order_budget_used", (("window", "X-MBX-ORDER-COUNT-10S"),))] == 4
    s["details"]["gateway"].update(budgets={}, weight_used_1m=42, fill_to_order_ms={"n": 9, "p50": 0.4, "p99": 2.5})
    v = scraped(s)
    assert v[("request_weight_used", (("window", "weight_1m"),))] == 42                  # Hyperliquid's minute
    assert v[("fill_to_order_ms", (("quantile", "0.99"),))] == 2.5
    s["details"]["risk"].update(pnl=D("5"), peak_pnl=D("3"))        # at a new peak: no drawdown
    assert scraped(s)[("drawdown", ())] == 0


def test_api_error_streak_counts_errors_until_requests_succeed():
    m = Metrics()

    def poll(requests, errors):
        s = summary()
        s["details"]["gateway"].update(requests=requests, errors={"transient": errors})
        m.update(s)
        return values(m.exposition())[("api_error_streak", ())]

    assert poll(10, 0) == 0
    assert poll(12, 2) == 2
    assert poll(13, 3) == 3
    assert poll(20, 3) == 0                 # requests went through without a new error
    assert poll(21, 4) == 1


def test_an_unreadable_status_keeps_the_last_good_values_and_is_counted():
    now = [1_000_000.0]
    m = Metrics(clock=lambda: now[0])
    assert ("status_age_seconds", ()) not in values(m.exposition())      # nothing polled yet: no age
    m.update(summary())
    now[0] += 7
    m.update(123)                                          # not a summary: must not raise
    v = values(m.exposition())
    assert v[("metrics_update_errors_total", ())] == 1
    assert v[("position", ())] == 0.002
    assert v[("status_age_seconds", ())] == 7


def test_a_summary_without_details_serves_what_it_has():
    v = scraped({"mode": "starting", "actors": {}, "restarts": 0, "position": None})
    assert v[("mode", (("mode", "starting"),))] == 1
    assert ("position", ()) not in v                        # unknown is absent, not 0
    assert ("grid_level_gap_pct", ()) not in v


def test_the_port_comes_from_config():
    assert Metrics.for_config(BotConfig()) is None
    m = Metrics.for_config(BotConfig().with_overrides(bot={"metrics_port": 9464}, grid={"spacing": "geometric"}))
    assert m.port == 9464 and m.spacing == "geometric"


def test_endpoint_serves_on_loopback_only_and_stops():
    m = Metrics(port=free_port())
    assert m.probe() == ""
    m.serve()
    try:
        m.update(summary())
        assert m._server.server_address[0] == "127.0.0.1"
        body = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read().decode()
        assert 'fills_total{source="ws"} 3.0' in body and "orders_open 19.0" in body
        assert Metrics(port=m.port).probe().startswith(f"cannot listen on 127.0.0.1:{m.port}")
        outside = [a for a in {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
                   if not a.startswith("127.")]
        for address in outside:             # where the host has another address, nothing answers there
            with pytest.raises(OSError):
                socket.create_connection((address, m.port), timeout=2).close()
    finally:
        m.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5)
