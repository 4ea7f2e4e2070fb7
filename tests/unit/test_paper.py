"""The paper venue: the Exchange interface over the engine and a price path, its simulated clock,
its pushed events and its persistence across processes."""
from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.paper import PaperExchange, PaperSettings
from messages.commands import OrderSpec
from messages.events import (
    CancelFailed,
    FillsReceived,
    OrderAcked,
    OrderCancelled,
    OrderRejected,
    PriceTick,
    StreamUp,
)
from messages.types import FillSource, MarketRules, OrderState, RejectReason, Side

pytestmark = pytest.mark.timeout(60)

D = Decimal
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
START_S = 1_700_000_000.0


class FakeClock:
    def __init__(self, seconds: float = START_S):
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds

    @property
    def ms(self) -> int:
        return int(self.seconds * 1000)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def real_csv() -> Path:
    path = DATA_DIR / "btc-perp-2022-01-1m.csv"
    if not path.exists():
        pytest.skip(f"real candle data not present at {path}")
    return path


def spec(cid, side, price, size="0.001", symbol="BTC", post_only=True, reduce_only=False) -> OrderSpec:
    return OrderSpec(cid, symbol, side, D(price), D(size), post_only=post_only, reduce_only=reduce_only)


def grid(venue: PaperExchange, levels: int = 5, step: str = "0.001", size: str = "0.001"):
    """Buys below and sells above the mid, `step` apart, rounded away from the touch."""
    rules, mid = venue.rules(), venue.engine.mid(venue.settings.symbol)
    specs = []
    for i in range(1, levels + 1):
        for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
            price = rules.round_price_passive(mid * (1 + sign * D(step) * i), side)
            specs.append(OrderSpec(f"{side.value}-{i}", venue.settings.symbol, side, price, D(size)))
    return specs


def fills_of(events) -> list:
    return [f for e in events if isinstance(e, FillsReceived) for f in e.fills]


# -- interface ------------------------------------------------------------------------------------
def test_defaults_are_a_synthetic_hyperliquid_btc_perp(clock):
    venue = PaperExchange(PaperSettings(), clock=clock)
    rules = venue.rules()
    assert (rules.symbol, rules.lot_size, rules.sig_figs, rules.max_price_decimals, rules.min_notional) == (
        "BTC", D("0.00001"), 5, 1, D("10"))
    snap = venue.snapshot()
    assert snap.mid == D("40000") and snap.position.size == 0
    assert snap.open_orders == () and snap.fills == ()
    assert snap.balance("USDC").total == D("10000")
    assert snap.time_ms == venue.sim_time_ms


def test_place_maps_every_outcome(clock):
    venue = PaperExchange(PaperSettings(), clock=clock)
    venue.start_stream()
    venue.drain_events()
    results = venue.place([
        spec("rest", Side.BUY, "39900"),
        spec("cross", Side.BUY, "40100"),
        spec("taker", Side.BUY, "40100", post_only=False),
        spec("tick", Side.BUY, "39900.5"),
        spec("tiny", Side.BUY, "39900", size="0.0001"),
        spec("eth", Side.BUY, "2000", symbol="ETH"),
        spec("ro", Side.BUY, "39000", reduce_only=True),
    ])
    assert isinstance(results[0], OrderAcked) and results[0].state is OrderState.OPEN
    assert results[1] == OrderRejected("cross", RejectReason.POST_ONLY_WOULD_CROSS, results[1].message)
    assert isinstance(results[2], OrderAcked) and results[2].state is OrderState.FILLED
    assert [r.reason for r in results[3:]] == [
        RejectReason.PRICE_TICK, RejectReason.MIN_NOTIONAL, RejectReason.OTHER, RejectReason.REDUCE_ONLY]
    [batch] = venue.drain_events()
    [taker] = batch.fills
    assert batch.source is FillSource.WS
    assert (taker.client_id, taker.maker, taker.price, taker.exchange_order_id) == (
        "taker", False, D("40000"), results[2].exchange_order_id)


def test_walk_pushes_one_fill_batch_and_one_tick_in_simulated_time(clock):
    venue = PaperExchange(PaperSettings(seed=7), clock=clock)
    venue.place(grid(venue, levels=5, step="0.0005"))
    venue.start_stream()
    assert venue.drain_events() == [StreamUp(venue.sim_time_ms)]
    walked = venue.advance_points(400)
    events = venue.drain_events()
    assert walked == 400
    batches = [e for e in events if isinstance(e, FillsReceived)]
    ticks = [e for e in events if isinstance(e, PriceTick)]
    assert len(batches) == 1 and len(ticks) == 1 and events[-1] is ticks[0]
    assert ticks[0] == PriceTick("BTC", venue.engine.mid("BTC"), venue.sim_time_ms)
    fills = batches[0].fills
    assert len(fills) >= 3
    first = fills[0]
    assert first.trade_id == "1" and first.fee_asset == "USDC" and first.maker
    assert first.fee == first.price * first.size * D("0.00015")
    assert first.time_ms >= 1_640_995_200_000 and first.time_ms % 15_000 == 0
    assert [f.order_key for f in fills] == sorted(f.order_key for f in fills)
    assert venue.fills_since(0) == list(fills)


def test_no_events_before_the_stream_starts_but_backfill_finds_the_fills(clock):
    venue = PaperExchange(PaperSettings(), clock=clock)
    venue.place(grid(venue, step="0.0005"))
    venue.advance_points(400)
    assert venue.drain_events() == []
    fills = venue.fills_since(0)
    assert fills and venue.snapshot(fills_since_ms=0).fills == tuple(fills)
    assert venue.fills_since(fills[-1].time_ms + 1) == []


def test_pump_walks_real_time_times_speed(clock):
    venue = PaperExchange(PaperSettings(speed=120.0), clock=clock)
    start = venue.sim_time_ms
    venue.pump(clock.ms + 1_000)  # 1 real second = 120 simulated seconds
    assert start < venue.sim_time_ms <= start + 120_000
    assert venue.path.peek()[0] > start + 120_000
    venue.pump(clock.ms + 1_000)  # no time passed: nothing to walk
    assert venue.path.peek()[0] > start + 120_000


def test_pump_work_is_capped_and_the_rest_follows(clock):
    venue = PaperExchange(PaperSettings(max_points_per_pump=5), clock=clock)
    before = venue.path.cursor
    venue.pump(clock.ms + 3_600_000)  # an hour's pause: 120 simulated hours owed
    assert _distance(venue, before) == 5
    venue.pump(clock.ms + 3_600_000)
    assert _distance(venue, before) == 10


def _distance(venue: PaperExchange, cursor) -> int:
    replay = PaperExchange(dataclasses.replace(venue.settings, state_file=None), clock=FakeClock())
    replay.path.seek(cursor)
    count = 0
    while replay.path.cursor != venue.path.cursor:
        replay.path.next_point()
        count += 1
    return count


def test_cancel_and_status_results(clock):
    venue = PaperExchange(PaperSettings(), clock=clock)
    [near, far] = venue.place([spec("near", Side.BUY, "39990"), spec("far", Side.BUY, "30000")])
    venue.engine.advance("BTC", venue.sim_time_ms + 1, D("39980"))
    results = venue.cancel([("far", far.exchange_order_id), ("near", None), ("ghost", None)])
    assert results[0] == OrderCancelled("far")
    assert isinstance(results[1], CancelFailed) and results[1].ambiguous  # filled meanwhile
    assert isinstance(results[2], CancelFailed) and not results[2].ambiguous
    near_report, far_report, ghost = venue.order_status(["near", "far", "ghost"])
    assert (near_report.state, near_report.filled, near_report.exchange_order_id) == (
        OrderState.FILLED, D("0.001"), near.exchange_order_id)
    assert far_report.state is OrderState.CANCELLED and ghost is None
    venue.place([spec("bad", Side.BUY, "45000")])
    assert venue.order_status(["bad"])[0].state is OrderState.REJECTED


def test_partial_fills_arrive_in_one_batch_and_sum_exactly(clock):
    venue = PaperExchange(PaperSettings(partial_fills=True), clock=clock)
    venue.start_stream()
    venue.place([spec("b", Side.BUY, "39990", size="0.01234")])
    venue.engine.advance("BTC", venue.sim_time_ms, D("40000"))
    venue.drain_events()
    while not venue.fills_since(0):
        venue.advance_points(1)
    fills = fills_of(venue.drain_events())
    assert 2 <= len(fills) <= 3 and len({f.trade_id for f in fills}) == len(fills)
    assert sum((f.size for f in fills), D(0)) == D("0.01234")


def test_spot_paper_venue_locks_funds(clock):
    rules = MarketRules(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", lot_size=D("0.00001"),
                        tick_size=D("0.01"), min_notional=D("5"))
    settings = PaperSettings(symbol="BTCUSDT", kind="spot", rules=rules,
                             balances=(("USDT", D("1000")), ("BTC", D("0.01"))))
    venue = PaperExchange(settings, clock=clock)
    venue.place([spec("b", Side.BUY, "39000.00", symbol="BTCUSDT", size="0.002"),
                 spec("s", Side.SELL, "41000.00", symbol="BTCUSDT", size="0.003")])
    snap = venue.snapshot()
    assert (snap.balance("USDT").free, snap.balance("USDT").locked) == (D("922"), D("78"))
    assert (snap.balance("BTC").free, snap.balance("BTC").locked) == (D("0.007"), D("0.003"))
    assert snap.position.size == D("0.01")


def test_rules_must_match_the_symbol(clock):
    with pytest.raises(ValueError, match="rules are for BTC"):
        PaperExchange(PaperSettings(symbol="ETH"), clock=clock)


# -- persistence ----------------------------------------------------------------------------------
def test_state_survives_a_new_venue_and_continues_without_duplicate_trade_ids(tmp_path, clock):
    settings = PaperSettings(state_file=str(tmp_path / "paper.json"))
    first = PaperExchange(settings, clock=clock)
    first.place(grid(first, levels=5, step="0.0005"))
    first.pump(clock.ms + 2_000)
    before = first.snapshot(fills_since_ms=0)
    assert before.fills, "the walk should have filled something"
    cursor, sim_ms = first.path.cursor, first.sim_time_ms
    del first  # the hosting process dies: nothing is flushed on the way out

    clock.seconds += 6 * 3600  # long downtime: the venue must not jump over it
    second = PaperExchange(settings, clock=clock)
    assert second.snapshot(fills_since_ms=0) == before
    assert (second.path.cursor, second.sim_time_ms) == (cursor, sim_ms)
    second.pump(clock.ms + 1_000)
    assert second.sim_time_ms <= sim_ms + 120_000

    second.place(grid(second, levels=5, step="0.0005"))
    second.advance_points(2_000)
    all_fills = second.fills_since(0)
    ids = [int(f.trade_id) for f in all_fills]
    assert len(ids) > len(before.fills) and len(set(ids)) == len(ids)
    assert min(ids[len(before.fills):]) > max(int(f.trade_id) for f in before.fills)


def test_quiet_pumps_persist_the_cursor_too(tmp_path, clock):
    settings = PaperSettings(state_file=str(tmp_path / "paper.json"))
    venue = PaperExchange(settings, clock=clock)
    venue.place([spec("far", Side.BUY, "20000")])
    for k in range(1, 6):
        venue.pump(clock.ms + k * 1_000)
    assert venue.fills_since(0) == []
    reloaded = PaperExchange(settings, clock=clock)
    assert reloaded.path.cursor == venue.path.cursor
    assert reloaded.engine.mid("BTC") == venue.engine.mid("BTC")
    assert reloaded.sim_time_ms == venue.sim_time_ms
    assert [o.client_id for o in reloaded.snapshot().open_orders] == ["far"]


def test_cursor_file_of_an_older_generation_is_ignored(tmp_path, clock):
    settings = PaperSettings(state_file=str(tmp_path / "paper.json"))
    venue = PaperExchange(settings, clock=clock)
    saved = venue.path.cursor
    venue.pump(clock.ms + 1_000)
    assert venue.path.cursor != saved
    (tmp_path / "paper.json.cursor").write_text(json.dumps(
        {"generation": 0, "cursor": [999, 0], "sim_ms": 0, "price": "1", "time_ms": 0}))
    reloaded = PaperExchange(settings, clock=clock)
    assert reloaded.path.cursor == saved


def test_state_file_of_another_path_is_refused(tmp_path, clock):
    PaperExchange(PaperSettings(state_file=str(tmp_path / "p.json"), seed=1), clock=clock)
    with pytest.raises(ValueError, match="saved for"):
        PaperExchange(PaperSettings(state_file=str(tmp_path / "p.json"), seed=2), clock=clock)


# -- real data ------------------------------------------------------------------------------------
def test_real_csv_backtest_runs_to_the_end(real_csv, clock):
    venue = PaperExchange(PaperSettings(data=str(real_csv), balances=(("USDC", D("100000")),)), clock=clock)
    assert venue.engine.mid("BTC") == D("46319.0")
    venue.start_stream()
    venue.place(grid(venue, levels=10, step="0.002"))
    rules = venue.rules()
    counter = 0
    candles = 0
    while venue.advance_candles(1):
        candles += 1
        for fill in fills_of(venue.drain_events()):
            counter += 1
            side = fill.side.opposite
            price = rules.round_price_passive(
                fill.price * (D("1.002") if side is Side.SELL else D("0.998")), side)
            venue.place([spec(f"c{counter}", side, str(price))])
    assert venue.path.exhausted and candles == 45_031
    ids = [int(f.trade_id) for f in venue.fills_since(0)]
    assert counter == len(ids) > 100 and len(set(ids)) == len(ids)


def test_csv_venue_resumes_at_the_saved_cursor_and_ends(real_csv, tmp_path, clock):
    short = tmp_path / "first-hours.csv"
    short.write_text("".join(real_csv.open().readlines()[:1 + 120]))
    settings = PaperSettings(data=str(short), state_file=str(tmp_path / "venue.json"))
    venue = PaperExchange(settings, clock=clock)
    venue.advance_points(100)
    cursor, mid = venue.path.cursor, venue.engine.mid("BTC")
    resumed = PaperExchange(settings, clock=clock)
    assert (resumed.path.cursor, resumed.engine.mid("BTC")) == (cursor, mid)
    while resumed.advance_candles(10):
        pass
    assert resumed.path.exhausted and resumed.path.cursor == (120, 0)
    resumed.pump(clock.ms + 60_000)  # nothing left to walk: a no-op, not an error
    assert resumed.engine.mid("BTC") == D(short.read_text().splitlines()[-1].split(",")[4])
