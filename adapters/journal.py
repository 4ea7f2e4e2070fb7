"""The SQLite journal: one file per bot, WAL, synchronous=FULL.

Each table has one writing actor (fills/watermarks: guarantor; orders: order book; grid_state and
timers: grid; events: supervisor); any process may read. A fill is committed here before anyone acts
on it (I2), and the UNIQUE trade id makes a second journaling of the same fill a no-op (I1).
"""
from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from messages.reports import FillReport
from messages.types import FillSource, Side

SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, size TEXT NOT NULL,
    fee TEXT NOT NULL, fee_asset TEXT NOT NULL, time_ms INTEGER NOT NULL,
    client_id TEXT, exchange_order_id TEXT, maker INTEGER NOT NULL,
    source TEXT NOT NULL, recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_time ON fills(time_ms);
CREATE TABLE IF NOT EXISTS watermarks (
    source TEXT PRIMARY KEY, time_ms INTEGER NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, exchange_order_id TEXT, symbol TEXT NOT NULL, side TEXT NOT NULL,
    price TEXT NOT NULL, size TEXT NOT NULL, filled TEXT NOT NULL, state TEXT NOT NULL,
    origin TEXT NOT NULL, level INTEGER, position_version INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS grid_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS timers (name TEXT PRIMARY KEY, deadline REAL NOT NULL);
CREATE TABLE IF NOT EXISTS protective_orders (
    client_id TEXT PRIMARY KEY, exchange_id TEXT, kind TEXT NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
"""

_FILL_COLUMNS = ("trade_id, symbol, side, price, size, fee, fee_asset, time_ms, client_id, "
                 "exchange_order_id, maker")


def _fill_from_row(row) -> FillReport:
    return FillReport(
        trade_id=row[0], symbol=row[1], side=Side(row[2]), price=Decimal(row[3]), size=Decimal(row[4]),
        fee=Decimal(row[5]), fee_asset=row[6], time_ms=row[7], client_id=row[8],
        exchange_order_id=row[9], maker=bool(row[10]))


class Journal:
    """A connection to the bot's journal. Not shared between threads or processes: open one each."""

    def __init__(self, path: str | Path, durable: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- fills (writer: FillGuarantorActor) ------------------------------------------------------
    def record_fills(self, fills: Iterable[FillReport], source: FillSource) -> list[tuple[int, FillReport]]:
        """Journal the fills not seen before, in (time, trade id) order, in one durable transaction.
        Returns the newly journaled ones with their sequence numbers; duplicates are skipped."""
        ordered = sorted(fills, key=lambda f: f.order_key)
        now = time.time()
        new: list[tuple[int, FillReport]] = []
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for f in ordered:
                cur.execute(
                    f"INSERT OR IGNORE INTO fills ({_FILL_COLUMNS}, source, recorded_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (f.trade_id, f.symbol, f.side.value, str(f.price), str(f.size), str(f.fee),
                     f.fee_asset, f.time_ms, f.client_id, f.exchange_order_id, int(f.maker),
                     source.value, now))
                if cur.rowcount == 1:
                    new.append((cur.lastrowid, f))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return new

    def version(self) -> int:
        """The sequence of the last journaled fill: the position version."""
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()
        return int(row[0])

    def fill_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0])

    def last_fill_time_ms(self) -> int | None:
        row = self._db.execute("SELECT MAX(time_ms) FROM fills").fetchone()
        return None if row[0] is None else int(row[0])

    def fills(self, after_seq: int = 0) -> list[tuple[int, FillReport]]:
        rows = self._db.execute(
            f"SELECT seq, {_FILL_COLUMNS} FROM fills WHERE seq > ? ORDER BY seq", (after_seq,))
        return [(r[0], _fill_from_row(r[1:])) for r in rows]

    def trade_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT trade_id FROM fills ORDER BY seq")]

    def fills_by_source(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._db.execute("SELECT source, COUNT(*) FROM fills GROUP BY source")}

    def filled_by_client_id(self) -> dict[str, Decimal]:
        """Journaled fill size per client order id: rebuilt orders start from what already filled."""
        totals: dict[str, Decimal] = {}
        for cid, size in self._db.execute("SELECT client_id, size FROM fills WHERE client_id IS NOT NULL"):
            totals[cid] = totals.get(cid, Decimal(0)) + Decimal(size)
        return totals

    def has_trade(self, trade_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM fills WHERE trade_id = ?", (trade_id,)).fetchone() is not None

    # -- high-water marks (writer: FillGuarantorActor) -------------------------------------------
    def set_watermark(self, source: FillSource, time_ms: int) -> None:
        self._db.execute(
            "INSERT INTO watermarks (source, time_ms, updated_at) VALUES (?,?,?) "
            "ON CONFLICT(source) DO UPDATE SET time_ms = MAX(time_ms, excluded.time_ms), "
            "updated_at = excluded.updated_at", (source.value, time_ms, time.time()))

    def poll_start_ms(self, source: FillSource, margin_ms: int) -> int | None:
        """Where a poll of `source` starts: its own high-water mark (never past the last journaled
        fill) minus the overlap margin; None while the journal has no fill."""
        last = self.last_fill_time_ms()
        if last is None:
            return None
        mark = self.watermarks().get(source.value)
        return max(0, (last if mark is None else min(mark, last)) - margin_ms)

    def watermarks(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._db.execute("SELECT source, time_ms FROM watermarks")}

    # -- orders (writer: OrderBookActor) ---------------------------------------------------------
    def save_orders(self, rows: Iterable[dict], durable: bool = True) -> None:
        """`durable=False` skips the fsync for a change recovery does not depend on (still safe against
        a crash of the process; only a power cut can lose it)."""
        now = time.time()
        level = None
        if not durable:
            level = self._db.execute("PRAGMA synchronous").fetchone()[0]
            if level > 1:
                self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._upsert_orders(rows, now)
        finally:
            if level is not None and level > 1:
                self._db.execute(f"PRAGMA synchronous={level}")

    def _upsert_orders(self, rows: Iterable[dict], now: float) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO orders (client_id, exchange_order_id, symbol, side, price, size, filled, "
                "state, origin, level, position_version, created_at, updated_at) "
                "VALUES (:client_id, :exchange_order_id, :symbol, :side, :price, :size, :filled, "
                ":state, :origin, :level, :position_version, :now, :now) "
                "ON CONFLICT(client_id) DO UPDATE SET exchange_order_id = excluded.exchange_order_id, "
                "filled = excluded.filled, state = excluded.state, updated_at = excluded.updated_at",
                [{**r, "now": now} for r in rows])

    def orders(self, states: Iterable[str] | None = None) -> list[dict]:
        sql = ("SELECT client_id, exchange_order_id, symbol, side, price, size, filled, state, origin, "
               "level, position_version, created_at FROM orders")
        params: tuple = ()
        if states is not None:
            states = tuple(states)
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            params = states
        keys = ("client_id", "exchange_order_id", "symbol", "side", "price", "size", "filled", "state",
                "origin", "level", "position_version", "created_at")
        return [dict(zip(keys, r)) for r in self._db.execute(sql, params)]

    # -- small persisted state (grid_state, timers: GridActor) ----------------------------------
    def put_state(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT INTO grid_state (key, value) VALUES (?, ?) ON CONFLICT(key) "
                             "DO UPDATE SET value = excluded.value", (key, value))

    def get_state(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM grid_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_timer(self, name: str, deadline: float | None) -> None:
        with self._db:
            if deadline is None:
                self._db.execute("DELETE FROM timers WHERE name = ?", (name,))
            else:
                self._db.execute("INSERT INTO timers (name, deadline) VALUES (?, ?) ON CONFLICT(name) "
                                 "DO UPDATE SET deadline = excluded.deadline", (name, deadline))

    def timer(self, name: str) -> float | None:
        row = self._db.execute("SELECT deadline FROM timers WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    # -- events (writer: supervisor) -------------------------------------------------------------
    def log_event(self, kind: str, detail: str = "") -> None:
        with self._db:
            self._db.execute("INSERT INTO events (time, kind, detail) VALUES (?,?,?)",
                             (time.time(), kind, detail))

    def events(self, kind: str | None = None) -> list[tuple[float, str, str]]:
        if kind is None:
            return list(self._db.execute("SELECT time, kind, detail FROM events ORDER BY id"))
        return list(self._db.execute("SELECT time, kind, detail FROM events WHERE kind = ? ORDER BY id",
                                     (kind,)))
