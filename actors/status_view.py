"""What a person sees of a running bot: the status table (`render`), shown live by `gridbot run` on a
terminal and printed by `gridbot status`, and the console lines of `gridbot run` (`StatusConsole`).

The actors log JSON lines to `gridbot.log` in the state directory (actors/shell.py); none of them
writes to the terminal. The launcher is the terminal's only writer: each status poll it relays the new
log records at INFO and above as human lines (mode changes, emergencies, restarts, breaker trips...),
adds a fills summary (at most one line every FILLS_NOTE_EVERY_S, and one before the shutdown), and
redraws the table. With a live
table the lines scroll above it; without a terminal they go to stderr and stdout keeps its contract.
"""
from __future__ import annotations

import io
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from actors.metrics import level_gap_pct

FILLS_NOTE_EVERY_S = 10.0
HEARTBEAT_LATE_S = 5.0
INFO = 20
_MODE_STYLE = {"trading": "bold green", "emergency": "bold white on red", "halted": "bold yellow",
               "stopping": "yellow", "reconciling": "cyan", "starting": "cyan"}
_LEVEL_STYLE = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold white on red", "SUCCESS": "green"}


def fmt(value: Any) -> str:
    """A number as a person reads it: Decimals exact without trailing zeros, '-' for nothing."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    if isinstance(value, (Decimal, str)):
        try:
            d = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        return format(d.normalize(), "f") if d else "0"
    return str(value)


def _num(value: Any) -> Decimal | None:
    try:
        return None if value is None or isinstance(value, bool) else Decimal(str(value))
    except InvalidOperation:
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    return f"{seconds / 60:.0f}m ago" if seconds < 3600 else f"{seconds / 3600:.1f}h ago"


def actors_table(actors: dict, now: float) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("actor", "pid", "alive", "restarts", "last heartbeat"):
        table.add_column(column, justify="right" if column in ("pid", "restarts") else "left")
    for role, actor in actors.items():
        actor = _dict(actor)
        hb = _num(actor.get("last_heartbeat"))
        age = max(0.0, now - float(hb)) if hb is not None else None
        alive = bool(actor.get("alive"))
        late = age is None or age > HEARTBEAT_LATE_S
        table.add_row(str(role), fmt(actor.get("pid")), Text("yes" if alive else "NO", "green" if alive else "bold red"),
                      Text(fmt(actor.get("restarts")), "yellow" if actor.get("restarts") else ""),
                      Text(_age(age), "yellow" if late and alive else ("red" if not alive else "")))
    return table


def render(summary: dict, now: float | None = None) -> Table:
    """The status table of one supervisor summary (Decimals, or the strings of its JSON copy)."""
    s = summary or {}
    now = time.time() if now is None else now
    d = _dict(s.get("details"))
    grid, risk, pos = _dict(d.get("grid")), _dict(d.get("risk")), _dict(d.get("position"))
    title = f"gridbot {s.get('bot_id') or ''} · {s.get('exchange') or ''}".strip(" ·")
    table = Table(title=title, show_header=False, box=box.ROUNDED, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")

    mode = str(s.get("mode") or "-")
    line = Text(mode.upper(), _MODE_STYLE.get(mode, "bold"))
    if s.get("reason"):
        line.append(f"  ({s['reason']})", "dim")
    table.add_row("mode", line)
    emergency = s.get("emergency") or risk.get("emergency")
    table.add_row("emergency", Text(f"EMERGENCY STOP: {emergency}", "bold white on red") if emergency
                  else Text("none", "green"))
    breaker = _dict(risk.get("breaker"))
    if breaker.get("open"):
        text = Text(f"OPEN: {breaker.get('reason') or '?'}", "bold red")
        text.append(f"  {fmt(breaker.get('open_for_s'))}s left · {fmt(breaker.get('trips'))} trips")
    elif breaker:
        text = Text("closed", "green")
        text.append(f"  · {fmt(breaker.get('trips'))} trips", "dim")
    else:
        text = Text("-")
    table.add_row("circuit breaker", text)
    table.add_row("price", fmt(s.get("price")))

    position, exchange = _num(s.get("position")), _num(s.get("exchange_position"))
    text = Text(fmt(s.get("position")))
    text.append(f"  (exchange {fmt(s.get('exchange_position'))})",
                "bold yellow" if position is not None and exchange is not None and position != exchange else "dim")
    drift = pos.get("drift", pos.get("last_drift"))
    if drift is not None:
        text.append(f"  · drift {fmt(drift)}", "yellow" if _num(drift) else "dim")
    if risk.get("max_position") is not None:
        text.append(f"  · limit {fmt(risk.get('max_position'))}", "dim")
    table.add_row("position", text)
    table.add_row("open orders", Text(fmt(s.get("open_orders"))).append(
        f"  (exchange {fmt(s.get('exchange_open_orders'))})", "dim"))

    by_source = _dict(s.get("fills_by_source"))
    text = Text(fmt(s.get("fills")))
    if by_source:
        text.append("  " + ", ".join(f"{src} {fmt(n)}" for src, n in sorted(by_source.items())), "dim")
    table.add_row("fills", text)

    realized, unrealized, fees = (_num(s.get(k)) for k in ("realized_pnl", "unrealized_pnl", "fees"))
    text = Text("realized ")
    text.append(fmt(s.get("realized_pnl")), "green" if realized and realized > 0 else ("red" if realized and realized < 0 else ""))
    text.append("  unrealized ")
    text.append(fmt(s.get("unrealized_pnl")), "green" if unrealized and unrealized > 0 else ("red" if unrealized and unrealized < 0 else ""))
    text.append(f"  fees {fmt(s.get('fees'))}", "dim")
    if realized is not None and unrealized is not None and fees is not None:
        text.append(f"  net {fmt(realized + unrealized - fees)}", "bold")
    table.add_row("PnL", text)
    pnl, peak = _num(risk.get("pnl")), _num(risk.get("peak_pnl"))
    if pnl is not None and peak is not None:
        drawdown = max(Decimal(0), peak - pnl)
        table.add_row("drawdown", Text(fmt(drawdown), "yellow" if drawdown else "").append(
            f"  (peak {fmt(peak)})", "dim"))
    else:
        table.add_row("drawdown", "-")

    if grid:
        levels = grid.get("levels")
        text = Text(f"anchor {fmt(grid.get('anchor'))} · spacing {fmt(grid.get('spacing_pct'))}%"
                    f" · {fmt(grid.get('working'))}/{2 * levels if isinstance(levels, int) else '-'} levels working")
        gap = level_gap_pct({**grid, "mid": grid.get("mid") if grid.get("mid") is not None else s.get("price")})
        if gap is not None:
            text.append(f" · nearest order {gap:.3g}% away")
        if grid.get("refused_reason"):
            text.append(f"  refused: {grid['refused_reason']}", "bold red")
        table.add_row("grid", text)
    table.add_row("restarts", Text(fmt(s.get("restarts")), "yellow" if s.get("restarts") else ""))
    table.add_row("actors", actors_table(_dict(s.get("actors")), now))
    return table


def render_text(summary: dict, width: int = 120, now: float | None = None) -> str:
    """The table as plain text (tests, logs)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(render(summary, now))
    return console.export_text()


# -- the console of `gridbot run` ----------------------------------------------------------------
def human_line(record: dict) -> tuple[str, str]:
    """(level name, line) of one loguru record as serialized in gridbot.log."""
    level = _dict(record.get("level")).get("name", "INFO")
    stamp = _dict(record.get("time")).get("timestamp")
    clock = time.strftime("%H:%M:%S", time.localtime(stamp)) if isinstance(stamp, (int, float)) else "--:--:--"
    role = _dict(record.get("extra")).get("role") or str(record.get("name") or "").rsplit(".", 1)[-1]
    message = str(record.get("message", ""))
    exc = record.get("exception")
    if isinstance(exc, dict) and exc.get("type"):
        message += f" ({exc.get('type')}: {exc.get('value')})"
    return level, f"{clock} {level:<7} {role:<10} {message}"


class LogRelay:
    """Follows gridbot.log from where it ended when the relay was made (earlier runs stay unread)."""

    def __init__(self, path: Path, level: int = INFO, chunk: int = 4 << 20):
        self.path = Path(path)
        self.level = level
        self.chunk = chunk
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.partial = b""

    def read(self) -> list[tuple[str, str]]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:                  # truncated or replaced
            self.offset, self.partial = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.chunk)
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        out = []
        for raw in lines:
            try:
                record = json.loads(raw)["record"]
            except (ValueError, KeyError, TypeError):
                continue
            if _dict(record.get("level")).get("no", INFO) >= self.level:
                out.append(human_line(record))
        return out


class FillNotes:
    """One INFO line about fills: the count at the first poll that has any, then the new ones at most
    every FILLS_NOTE_EVERY_S (`force` ignores the pace: the last line before the shutdown)."""

    def __init__(self, every_s: float = FILLS_NOTE_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.every_s, self.clock = every_s, clock
        self.fills: int | None = None
        self.by_source: dict = {}
        self.at = float("-inf")

    def take(self, s: dict, force: bool = False) -> list[tuple[str, str]]:
        fills, by_source = s.get("fills"), _dict(s.get("fills_by_source"))
        if not isinstance(fills, int):
            return []
        now = self.clock()
        if self.fills is None or fills < self.fills:
            if not fills:
                self.fills, self.by_source = fills, dict(by_source)
                return []
            change = ", ".join(f"{k} {fmt(n)}" for k, n in sorted(by_source.items()))
            head = f"fills {fills}" + (f" ({change})" if change else "")
        else:
            if fills == self.fills or (now - self.at < self.every_s and not force):
                return []
            new = {k: n - self.by_source.get(k, 0) for k, n in sorted(by_source.items())
                   if n != self.by_source.get(k, 0)}
            head = (f"fills {fills} (+{fills - self.fills}"
                    + (": " + ", ".join(f"{k} {n}" for k, n in new.items()) if new else "") + ")")
        line = (f"{time.strftime('%H:%M:%S')} {'INFO':<7} {'launcher':<10} {head}"
                f" · position {fmt(s.get('position'))} (exchange {fmt(s.get('exchange_position'))})"
                f" · realized pnl {fmt(s.get('realized_pnl'))}")
        self.fills, self.by_source, self.at = fills, dict(by_source), now
        return [("INFO", line)]


class StatusConsole:
    """The launcher's terminal: `update(summary)` each poll; `stop_live()` before the shutdown wait,
    `close()` at the end (relays what the shutdown logged)."""

    def __init__(self, log_path: Path, live: bool, out=None, err=None):
        self.relay = LogRelay(log_path)
        self.notes = FillNotes()
        self.live_wanted = live
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self._live = None
        self._last: dict | None = None

    def update(self, summary: dict) -> None:
        self._last = summary
        self.emit(self.relay.read() + self.notes.take(summary))
        if not self.live_wanted:
            return
        if self._live is None:
            from rich.live import Live
            self._live = Live(render(summary), console=Console(file=self.out), auto_refresh=False,
                              transient=False, redirect_stdout=True, redirect_stderr=True)
            self._live.start(refresh=True)
        else:
            self._live.update(render(summary), refresh=True)

    def emit(self, lines: list[tuple[str, str]]) -> None:
        for level, line in lines:
            if self._live is not None:
                self._live.console.print(Text(line, _LEVEL_STYLE.get(level, "")), soft_wrap=True)
            else:
                print(line, file=self.err, flush=True)

    def stop_live(self) -> None:
        if self._last is not None:
            self.emit(self.relay.read() + self.notes.take(self._last, force=True))
            self._last = None
        self.live_wanted = False
        if self._live is not None:
            self._live.stop()
            self._live = None

    def close(self) -> None:
        self.stop_live()
        self.emit(self.relay.read())
