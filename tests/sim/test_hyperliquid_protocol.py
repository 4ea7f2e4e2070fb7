"""The Hyperliquid simulator's pure parts, without sockets: number formatting, wire shapes, order
parsing and validity texts, the synthetic book, nonces, fault specs, and the venue driven in-process
with a fake clock (fills, scheduled cancels, modify, persistence, paging, signatures)."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from hyperliquid.utils.signing import sign_l1_action

from messages.types import Side
from sim.book import EngineFill
from sim.cli import exchange_sim_main
from sim.hyperliquid import protocol as P
from sim.hyperliquid.exchange import DESERIALIZE, BadRequest, check_nonce, handle_exchange
from sim.hyperliquid.faults import Faults, parse_spec
from sim.hyperliquid.info import candles, handle_info
from sim.hyperliquid.venue import HISTORY, HlVenue, VenueSettings

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "hyperliquid"
T0 = 1_790_000_000_000
BTC = P.market_rules(P.DEFAULT_MARKETS[0])


class Clock:
    def __init__(self, now: int = T0):
        self.now = now

    def __call__(self) -> int:
        return self.now


def wire(a=0, b=True, p="46000", s="0.001", tif="Gtc", c=None, r=False) -> dict:
    out = {"a": a, "b": b, "p": p, "s": s, "r": r, "t": {"limit": {"tif": tif}}}
    if c is not None:
        out["c"] = c
    return out


def parsed(**kw) -> P.ParsedOrder:
    return P.parse_order(wire(**kw))


@pytest.fixture
def venue():
    clock = Clock()
    events = []
    v = HlVenue(VenueSettings(), clock=clock, listener=events.append)
    v.paused = True
    v.set_price("BTC", Decimal("47000"))
    v.fund("0xaa", Decimal("10000"))
    v.commit()
    v.events, v.clock_ = events, clock
    return v


# -- numbers and shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("value,text", [("78751", "78751.0"), ("0.005350", "0.00535"), ("0", "0.0"),
                                        ("-0.0", "0.0"), ("1E+5", "100000.0"), ("4.22618", "4.22618"),
                                        ("-12.50", "-12.5"), ("0.00000001", "0.00000001")])
def test_numbers_are_written_the_way_hyperliquid_writes_them(value, text):
    assert P.num(Decimal(value)) == text


def test_money_rounds_to_micro_dollars():
    assert P.money(Decimal("0.0126393333")) == "0.012639"
    assert P.money(Decimal("-0.0000001")) == "0.0"


@pytest.mark.parametrize("side,start,size,direction", [
    (Side.BUY, "0", "1", "Open Long"), (Side.BUY, "2", "1", "Open Long"), (Side.BUY, "-2", "1", "Close Short"),
    (Side.BUY, "-1", "3", "Short > Long"), (Side.SELL, "0", "1", "Open Short"), (Side.SELL, "2", "2", "Close Long"),
    (Side.SELL, "1", "2", "Long > Short"), (Side.SELL, "-1", "1", "Open Short")])
def test_fill_direction(side, start, size, direction):
    assert P.fill_direction(side, Decimal(start), Decimal(size)) == direction


def test_fill_wire_has_the_captured_key_order():
    fill = EngineFill(7, 3, "0xaa", "BTC", Side.BUY, Decimal("78751"), Decimal("0.00535"), Decimal("-0.012639"),
                      "USDC", T0, True, "0x5bdd47600dea461f36c8378cd7b4150c", Decimal("4.22618"), Decimal(0))
    out = P.fill_wire(fill)
    assert list(out) == ["coin", "px", "sz", "side", "time", "startPosition", "dir", "closedPnl", "hash", "oid",
                         "crossed", "fee", "tid", "cloid", "feeToken", "twapId"]
    assert (out["px"], out["sz"], out["fee"], out["crossed"], out["side"]) == ("78751.0", "0.00535", "-0.012639", False, "B")
    assert len(out["hash"]) == 66 and out["hash"].startswith("0x")
    no_cloid = P.fill_wire(EngineFill(8, 3, "0xaa", "BTC", Side.SELL, Decimal(1), Decimal(1), Decimal(0), "USDC", T0, False))
    assert "cloid" not in no_cloid and no_cloid["crossed"] is True
    if FIXTURES.is_dir():
        captured = json.loads((FIXTURES / "http_user_fills_with_cloid.json").read_text())[0]
        assert list(out) == list(captured)


# -- parsing and validity ----------------------------------------------------------------------------
def test_parse_order_reads_the_wire():
    order = parsed(b=False, p="46000.5", s="0.01", tif="Alo", c="0xAABBCCDD00112233AABBCCDD00112233", r=True)
    assert (order.side, order.price, order.size, order.tif, order.reduce_only) == (
        Side.SELL, Decimal("46000.5"), Decimal("0.01"), "Alo", True)
    assert order.cloid == "0xaabbccdd00112233aabbccdd00112233"


@pytest.mark.parametrize("bad", [
    {"t": {"trigger": {"triggerPx": "1", "isMarket": True, "tpsl": "sl"}}}, {"t": {"limit": {"tif": "Fok"}}},
    {"c": "0x1234"}, {"p": 46000}, {"s": "abc"}, {"a": "0"}, {"b": "true"}, {"p": "NaN"}])
def test_parse_order_refuses_malformed_wires(bad):
    with pytest.raises(P.WireError):
        P.parse_order({**wire(), **bad})


@pytest.mark.parametrize("price,size,text", [
    ("60000.55", "0.001", "Tick"), ("60000.5", "0.001", "Tick"), ("0", "0.001", "InvalidPrice"),
    ("60000", "0.000011", "InvalidSize"), ("60000", "0", "ZeroSize"), ("60000", "0.0001", "MinTradeNtl"),
    ("123456", "0.001", None), ("60000", "0.001", None)])
def test_precheck_texts(price, size, text):
    got = P.precheck(BTC, parsed(p=price, s=size))
    assert got == (P.TEXT[text] if text else None)


def test_error_statuses_keep_the_real_text_as_prefix():
    if FIXTURES.is_dir():
        real = {e["type"]: e["message"] for e in json.loads((FIXTURES / "exchange_error_messages.json").read_text())["errors"]}
        for key in ("Tick", "MinTradeNtl", "PerpMargin", "ReduceOnly", "BadAloPx", "IocCancel", "MissingOrder"):
            assert P.TEXT[key] == real[key]
    assert P.error_status(P.TEXT["Tick"], 3) == {"error": "Price must be divisible by tick size. asset=3"}
    from messages.types import RejectReason
    assert P.reject_text(RejectReason.POST_ONLY_WOULD_CROSS, "", "46999.0@47001.0") == \
        "Post only order would have immediately matched, bbo was 46999.0@47001.0."


def test_l2_levels_straddle_the_mid_and_merge_our_orders(venue):
    venue.place("0xaa", parsed(p="46995", s="0.002", tif="Alo"), T0)
    bids, asks = P.l2_levels(BTC, Decimal("47000.5"), venue.engine.open_orders("0xaa", "BTC"))
    assert len(bids) == len(asks) == 20
    prices = [Decimal(level["px"]) for level in bids]
    assert prices == sorted(prices, reverse=True) and prices[0] < Decimal("47000.5") < Decimal(asks[0]["px"])
    alone = {lv["px"]: lv for lv in P.l2_levels(BTC, Decimal("47000.5"), [])[0]}
    ours = next(level for level in bids if level["px"] == "46995.0")
    assert ours["n"] == alone["46995.0"]["n"] + 1
    assert Decimal(ours["sz"]) == Decimal(alone["46995.0"]["sz"]) + Decimal("0.002")


# -- nonces and faults --------------------------------------------------------------------------------
def test_nonces_follow_the_hundred_highest_rule():
    kept: list[int] = []
    assert check_nonce(kept, T0, T0) is None
    assert check_nonce(kept, T0, T0).startswith("Invalid nonce")                 # used
    assert check_nonce(kept, T0 - 3 * 86_400_000, T0).startswith("Invalid nonce")  # too old
    assert check_nonce(kept, T0 + 2 * 86_400_000, T0).startswith("Invalid nonce")  # too far ahead
    assert check_nonce(kept, T0 - 5, T0) is None                                  # out of order is fine
    for n in range(1, 120):
        assert check_nonce(kept, T0 + n, T0) is None
    assert len(kept) == 100 and kept[0] == T0 + 20
    assert check_nonce(kept, T0 + 19, T0).startswith("Invalid nonce")             # below the smallest kept


def test_fault_specs_parse_and_apply():
    faults = Faults()
    assert faults.apply("http_429=2, exchange_5xx=1,delay_ms=5,dup_fills,reorder_fills=0,ws_silence=1.5,drop_ws", T0) == [
        "http_429", "exchange_5xx", "delay_ms", "dup_fills", "reorder_fills", "ws_silence", "drop_ws"]
    assert [faults.take_429(), faults.take_429(), faults.take_429()] == [True, True, False]
    assert faults.take_5xx() and not faults.take_5xx()
    assert faults.dup_fills and not faults.reorder_fills and faults.delay_ms == 5
    assert faults.silent(T0 + 1499) and not faults.silent(T0 + 1500)
    faults.apply("clear", T0)
    assert faults.describe(T0) == {"http_429": 0, "exchange_5xx": 0, "delay_ms": 0, "exchange_delay_ms": 0,
                                   "reject_orders": 0,
                                   "cancel_fills": 0, "dup_fills": False,
                                   "reorder_fills": False, "partial_fills": False, "ws_silence_ms": 0}
    for bad in ("nope", "http_429=x", "drop_ws=1", "dup_fills=maybe", "ws_silence=-1"):
        with pytest.raises(ValueError):
            parse_spec(bad)


# -- the venue in-process -----------------------------------------------------------------------------
def test_resting_order_fills_when_the_price_reaches_it(venue):
    status = venue.place("0xaa", parsed(p="46900", tif="Alo", c="0x" + "1" * 32), T0)
    assert status == {"resting": {"oid": status["resting"]["oid"], "cloid": "0x" + "1" * 32}}
    venue.commit()
    venue.clock_.now += 1000
    venue.set_price("BTC", Decimal("46850"))
    venue.commit()
    last = venue.events[-1]
    (fill,) = last.fills["0xaa"]
    assert (fill.price, fill.maker, fill.time_ms) == (Decimal("46900"), True, T0 + 1000)
    assert [u["status"] for u in last.updates["0xaa"]] == ["filled"]


def test_alo_crossing_and_ioc_without_a_match_get_their_texts(venue):
    alo = venue.place("0xaa", parsed(p="47001", tif="Alo"), T0)
    assert alo["error"].startswith("Post only order would have immediately matched, bbo was 46999.0@47001.0")
    ioc = venue.place("0xaa", parsed(p="46000", tif="Ioc"), T0)
    assert ioc["error"].startswith(P.TEXT["IocCancel"])
    margin = venue.place("0xaa", parsed(p="46000", s="50"), T0)
    assert margin["error"].startswith(P.TEXT["PerpMargin"])
    reduce = venue.place("0xaa", parsed(p="46000", r=True), T0)
    assert reduce["error"].startswith(P.TEXT["ReduceOnly"])


def test_scheduled_cancel_rules_and_firing(venue):
    oid = venue.place("0xaa", parsed(p="46000", tif="Alo"), T0)["resting"]["oid"]
    assert venue.schedule_cancel("0xaa", T0 + 4999, T0).startswith("Scheduled cancel time too early")
    assert venue.schedule_cancel("0xaa", T0 + 5000, T0) is None
    venue.commit()
    venue.clock_.now = T0 + 5000
    venue.tick(T0 + 5000)
    last = venue.events[-1]
    assert last.cancels == {"0xaa": [{"coin": "BTC", "oid": oid}]}
    assert last.updates["0xaa"][0]["status"] == "scheduledCancel"
    assert venue.status_of(venue.find("0xaa", oid)) == "scheduledCancel"
    for n in range(9):
        assert venue.schedule_cancel("0xaa", T0 + 10_000, T0) is None
        venue.fire_scheduled(T0, force=True)
    assert venue.triggers_today("0xaa", T0) == 10
    assert venue.schedule_cancel("0xaa", T0 + 10_000, T0).startswith("Too many")
    assert venue.triggers_today("0xaa", T0 + 86_400_000) == 0


def test_modify_replaces_the_order_and_may_keep_its_cloid(venue):
    cloid = "0x" + "2" * 32
    oid = venue.place("0xaa", parsed(p="46000", tif="Alo", c=cloid), T0)["resting"]["oid"]
    status = venue.modify("0xaa", cloid, parsed(p="46100", tif="Alo", c=cloid), T0)
    new_oid = status["resting"]["oid"]
    assert new_oid != oid and venue.status_of(venue.find("0xaa", oid)) == "canceled"
    assert venue.find("0xaa", None, cloid).price == Decimal("46100")
    assert venue.modify("0xaa", oid, parsed(p="46200"), T0)["error"].startswith(P.TEXT["ModifyClosed"])
    kept = venue.modify("0xaa", new_oid, parsed(p="46100.5"), T0)
    assert kept["error"].startswith(P.TEXT["Tick"]) and venue.find("0xaa", new_oid).is_open


def test_state_round_trips_through_the_file(tmp_path):
    clock = Clock()
    settings = VenueSettings(state=str(tmp_path / "state.json"))
    first = HlVenue(settings, clock=clock)
    first.fund("0xaa", Decimal("10000"))
    first.place("0xaa", parsed(p="40000", tif="Alo", c="0x" + "3" * 32), T0)
    check_nonce(first.nonces.setdefault("0xaa", []), T0, T0)
    first.schedule_cancel("0xaa", T0 + 60_000, T0)
    first.commit()
    clock.now += 5000
    first.tick(clock.now)
    first.save_cursor(clock.now)
    second = HlVenue(settings, clock=clock)
    assert [o.client_id for o in second.engine.open_orders("0xaa")] == ["0x" + "3" * 32]
    assert second.nonces == {"0xaa": [T0]} and second.scheduled == {"0xaa": T0 + 60_000}
    assert {c: p.cursor for c, p in second.paths.items()} == {c: p.cursor for c, p in first.paths.items()}
    assert second.mids() == first.mids()


def test_fills_by_time_pages_and_only_the_most_recent_are_reachable(venue):
    venue.fund("0xbb", Decimal("100000000"))
    for i in range(HISTORY + 20):
        is_buy = i % 2 == 0
        venue.place("0xbb", parsed(b=is_buy, p="48000" if is_buy else "46000", s="0.001"), T0 + i)
    page = handle_info(venue, {"type": "userFillsByTime", "user": "0xBB", "startTime": 0})
    assert len(page) == venue.settings.page_limit and page[0]["time"] == T0 + 20     # the oldest 20 are gone
    assert [f["time"] for f in page] == sorted(f["time"] for f in page)
    window = handle_info(venue, {"type": "userFillsByTime", "user": "0xbb", "startTime": T0 + 100, "endTime": T0 + 109})
    assert [f["time"] for f in window] == list(range(T0 + 100, T0 + 110))
    recent = handle_info(venue, {"type": "userFills", "user": "0xbb"})
    assert len(recent) == 2000 and recent[0]["time"] == T0 + HISTORY + 19


def test_info_shapes_and_refusals(venue):
    with pytest.raises(BadRequest, match=DESERIALIZE):
        handle_info(venue, {"type": "noSuchThing"})
    with pytest.raises(BadRequest):
        handle_info(venue, ["not", "an", "object"])
    empty = handle_info(venue, {"type": "clearinghouseState", "user": "0xnobody"})
    assert empty["assetPositions"] == [] and empty["withdrawable"] == "0.0"
    assert handle_info(venue, {"type": "l2Book", "coin": "NOPE"}) is None
    venue.paused = False
    for _ in range(30):
        venue.clock_.now += 1000
        venue.tick(venue.clock_.now)
    rows = candles(venue, "BTC", "5m", 0, venue.clock_.now)
    assert rows and set(rows[-1]) == {"t", "T", "s", "i", "o", "c", "h", "l", "v", "n"}
    assert all(r["t"] % 300_000 == 0 and r["T"] == r["t"] + 299_999 for r in rows)
    assert Decimal(rows[-1]["l"]) <= Decimal(rows[-1]["c"]) <= Decimal(rows[-1]["h"])


def _signed(account, action, nonce) -> bytes:
    signature = sign_l1_action(account, action, None, nonce, None, False)
    return json.dumps({"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None,
                       "expiresAfter": None}).encode()


def test_exchange_recovers_the_signer_and_checks_nonces(venue):
    account = Account.create()
    action = {"type": "order", "orders": [wire(p="46000", tif="Alo")], "grouping": "na"}
    stranger = handle_exchange(venue, _signed(account, action, T0))
    assert stranger == {"status": "err", "response": f"User or API Wallet {account.address.lower()} does not exist."}
    venue.fund(account.address, Decimal("10000"))
    ok = handle_exchange(venue, _signed(account, action, T0))
    assert ok["status"] == "ok" and "resting" in ok["response"]["data"]["statuses"][0]
    again = handle_exchange(venue, _signed(account, action, T0))
    assert again["status"] == "err" and again["response"].startswith("Invalid nonce")
    cancel = {"type": "cancel", "cancels": [{"a": 0, "o": 999}]}
    answer = handle_exchange(venue, _signed(account, cancel, T0 + 1))
    assert answer["response"]["data"]["statuses"][0]["error"].startswith(P.TEXT["MissingOrder"])
    for body in (b"{", b"[]", json.dumps({"action": {"type": "order"}, "nonce": T0}).encode(),
                 _signed(account, {"type": "cancel", "cancels": [{"a": "x", "o": 1}]}, T0 + 2)):
        with pytest.raises(BadRequest):
            handle_exchange(venue, body)


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["kraken"], "unknown venue 'kraken'"), (["hyperliquid", "--bogus"], "unrecognized arguments"),
    (["hyperliquid", "--faults", "nope"], "unknown fault"), (["hyperliquid", "--fund", "0x12:10"], "--fund"),
    (["hyperliquid", "--speed", "0"], "must be > 0"), (["hyperliquid", "--data", "/no/such.csv"], "No such file"),
    ([], "no venue")])
def test_cli_errors_are_one_line_and_exit_2(argv, needle, capsys):
    assert exchange_sim_main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
