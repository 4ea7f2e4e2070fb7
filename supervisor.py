"""gridbot's supervisor actor and command line.

The Supervisor creates and wires the seven actors, refuses to trade until the first reconciliation
succeeds (I3), restarts a dead actor with exponential backoff and rebuilds every actor from a fresh
exchange snapshot, and shuts down cleanly (cancel, final audit, summary). `main()` is the `gridbot`
command: it validates config, starts the actor system on loopback and watches the supervisor.
"""
from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from datetime import timedelta

from loguru import logger
from thespian.actors import Actor, ActorExitRequest, ChildActorExited, PoisonMessage, WakeupMessage

from actors import hardening  # noqa: F401 - patches Thespian before any actor process forks
from actors.lifeline import Lifeline
from actors.operator import OperatorCommands
from actors.roster import ACTOR_CLASSES, REBUILT, ROLES, Roster, StatusFanIn
from actors.shell import configure_logging, die_with_parent, in_own_process
from adapters.journal import Journal
from messages.commands import DisarmDeadMan, EmergencyStop, RequestCancels, RequestSnapshot, StopMarketData
from messages.events import ExchangeError, ExchangeSnapshot, OrdersCleared
from messages.lifecycle import (
    AdminShutdown,
    InjectFault,
    Flatten,
    Halt,
    Heartbeat,
    ModeChanged,
    Ready,
    Rebuild,
    Reconciled,
    Resume,
    Shutdown,
    ShutdownComplete,
    Start,
    StatusReport,
    StatusRequest,
    Wire,
)
from messages.types import FillSource, Mode

_STATUS_TIMEOUT_S = 3.0
_FINAL_AUDIT_ID = 10**9
_LIFELINE_S = 0.5


class Supervisor(OperatorCommands, Actor):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        if in_own_process():
            die_with_parent()
        self.config = None
        self.journal: Journal | None = None
        self.roster: Roster | None = None
        self.mode = Mode.STARTING
        self.reason = ""
        self.waiting_ready: set[str] = set()
        self.waiting_reconciled: set[str] = set()
        self.snapshot_id = 0
        self.fanins: dict[int, StatusFanIn] = {}
        self.ids = itertools.count(1)
        self.shutdown_to = None
        self.shutdown_phase = ""
        self.halted = False
        self.stopped_mode = Mode.HALTED
        self.emergency = ""
        self.shutdown_requested = ""

    # -- plumbing --------------------------------------------------------------------------------
    def receiveMessage(self, msg, sender):
        try:
            self._route(msg, sender)
        except Exception:
            logger.exception("supervisor failed on {}", type(msg).__name__)

    def _route(self, msg, sender):
        handler = {
            Start: self.on_start, Ready: self.on_ready, ExchangeSnapshot: self.on_snapshot,
            Reconciled: self.on_reconciled, ChildActorExited: self.on_child_exited,
            WakeupMessage: self.on_wakeup, Heartbeat: self.on_heartbeat, StatusRequest: self.on_status_request,
            StatusReport: self.on_status_report, Shutdown: self.on_shutdown, OrdersCleared: self.on_cleared,
            ExchangeError: self.on_exchange_error, EmergencyStop: self.on_emergency,
            Halt: self.on_halt, Resume: self.on_resume, Flatten: self.on_flatten, InjectFault: self.on_inject,
            AdminShutdown: self.on_admin_shutdown,
        }.get(type(msg))
        if handler is not None:
            handler(msg, sender)
        elif isinstance(msg, PoisonMessage):
            logger.warning("supervisor got a PoisonMessage: {}", msg)
        elif isinstance(msg, ActorExitRequest):
            logger.debug("supervisor got ActorExitRequest")

    def _send(self, roles, msg) -> None:
        for role in (roles,) if isinstance(roles, str) else roles:
            m = self.roster.members[role]
            if m.address is not None:
                self.send(m.address, msg)

    def _set_mode(self, mode: Mode, reason: str = "") -> None:
        if mode is self.mode and reason == self.reason:
            return
        self.mode, self.reason = mode, reason
        logger.info("mode {}{}", mode.value, f": {reason}" if reason else "")
        self.journal.log_event("mode", f"{mode.value} {reason}".strip())
        self._send(REBUILT, ModeChanged(mode, reason))

    def _after(self, seconds: float, payload) -> None:
        self.wakeupAfter(timedelta(seconds=seconds), payload)

    # -- start -----------------------------------------------------------------------------------
    def on_start(self, msg: Start, sender) -> None:
        if self.config is not None:
            self.send(sender, StatusReport("supervisor", 0, {"mode": self.mode.value}))
            return
        self.config = cfg = msg.config
        configure_logging(cfg.state_path, "supervisor", cfg.bot.log_level)
        self.journal = Journal(cfg.state_path / "journal.db")
        t = cfg.timing
        self.roster = Roster(t.restart_backoff_initial_s, t.restart_backoff_max_s, t.restart_limit,
                             t.restart_window_s)
        self.journal.log_event("start", f"pid {os.getpid()}")
        self.lifeline = Lifeline()
        if self.lifeline.watching:
            self._after(_LIFELINE_S, ("lifeline", None))
        self._after(t.heartbeat_interval_s, ("heartbeats", None))
        for role in ROLES:
            self.roster.members[role].address = self.createActor(ACTOR_CLASSES[role])
        self._wire(set(ROLES))
        self.send(sender, StatusReport("supervisor", 0, {"mode": self.mode.value, "pid": os.getpid()}))

    def _wire(self, expect_ready: set[str]) -> None:
        self.waiting_ready |= expect_ready
        wire = Wire(self.roster.pairs(), self.config, self.myAddress)
        for role in ROLES:
            self._send(role, wire)

    def on_ready(self, msg: Ready, sender) -> None:
        m = self.roster.members.get(msg.role)
        if m is None:
            return
        m.pid, m.alive, m.last_heartbeat = msg.pid, True, time.time()
        self.waiting_ready.discard(msg.role)
        if not self.waiting_ready and self.mode in (Mode.STARTING, Mode.RECONCILING):
            self._reconcile()

    def _reconcile(self) -> None:
        """Ask the exchange for the truth; every actor is rebuilt from it before trading (I3)."""
        if self.mode is not Mode.STARTING:
            self._set_mode(Mode.RECONCILING, self.reason)
        self.snapshot_id += 1
        since = self.journal.poll_start_ms(FillSource.REST, self.config.timing.backfill_margin_ms)
        self._send("gateway", RequestSnapshot(self.snapshot_id, since))
        self._after(self.config.timing.startup_timeout_s, ("reconcile-deadline", self.snapshot_id))

    def on_snapshot(self, msg: ExchangeSnapshot, sender) -> None:
        if msg.request_id != self.snapshot_id or self.mode not in (Mode.STARTING, Mode.RECONCILING):
            return
        self.waiting_reconciled = set(REBUILT)
        rebuild = Rebuild(msg.state, self.journal.version())
        self._send(REBUILT, rebuild)

    def on_exchange_error(self, msg: ExchangeError, sender) -> None:
        logger.warning("snapshot failed ({}): {}; retrying", msg.kind, msg.message)
        self._after(msg.retry_after or 1.0, ("retry-reconcile", self.snapshot_id))

    def on_reconciled(self, msg: Reconciled, sender) -> None:
        if not msg.ok:
            logger.error("{} failed to reconcile: {}", msg.role, msg.detail)
            self._after(1.0, ("retry-reconcile", self.snapshot_id))
            return
        self.waiting_reconciled.discard(msg.role)
        if self.waiting_reconciled or self.mode not in (Mode.STARTING, Mode.RECONCILING):
            return
        if self.halted:
            self._set_mode(self.stopped_mode, self.reason)
        else:
            self._set_mode(Mode.TRADING, "reconciled with the exchange")

    # -- supervision -----------------------------------------------------------------------------
    def on_child_exited(self, msg: ChildActorExited, sender) -> None:
        role = self.roster.role_of(msg.childAddress)
        if role is None or self.mode is Mode.STOPPING:
            return
        delay, too_many = self.roster.exited(role)
        self.journal.log_event("restart", f"{role} exited; restart in {delay:.1f}s")
        logger.warning("{} exited; restarting in {:.1f}s", role, delay)
        if too_many and not self.halted:
            self.halted = True
            self._set_mode(Mode.HALTED, "restart limit exceeded")
            self._send("orderbook", RequestCancels(all_orders=True, reason="restart limit exceeded"))
        else:
            self._set_mode(Mode.RECONCILING, f"{role} restarting")
        self._after(delay, ("restart", role))

    def _restart(self, role: str) -> None:
        if self.mode is Mode.STOPPING or self.roster.members[role].address is not None:
            return
        self.roster.members[role].address = self.createActor(ACTOR_CLASSES[role])
        self._wire({role})

    def on_heartbeat(self, msg: Heartbeat, sender) -> None:
        m = self.roster.members.get(msg.role)
        if m is not None and m.address == sender:
            m.last_heartbeat, m.pid = msg.time, msg.pid

    def on_wakeup(self, msg: WakeupMessage, sender) -> None:
        kind, arg = msg.payload
        if kind == "restart":
            self._restart(arg)
        elif kind in ("reconcile-deadline", "retry-reconcile"):
            if arg == self.snapshot_id and self.mode in (Mode.STARTING, Mode.RECONCILING) and not self.waiting_ready:
                self._reconcile()
        elif kind == "status-deadline":
            self._finish_fanin(arg)
        elif kind == "shutdown-step":
            self._shutdown_step(arg)
        elif kind == "lifeline":
            self._check_lifeline()
        elif kind == "heartbeats":
            self._check_heartbeats()

    def _check_heartbeats(self) -> None:
        """A hung actor sends no exit message: kill its process; the exit brings the usual rebuild."""
        t = self.config.timing
        self._after(t.heartbeat_interval_s, ("heartbeats", None))
        if self.mode is Mode.STOPPING:
            return
        for role, pid in self.roster.hung(time.time(), t.heartbeat_timeout_s):
            if pid == os.getpid():
                continue            # one process for every actor (simpleSystemBase): nothing to kill
            logger.error("{} (pid {}) sent no heartbeat for {:.0f}s: killing it for a rebuild", role, pid,
                         t.heartbeat_timeout_s)
            self.journal.log_event("hung", f"{role} pid {pid}")
            self.roster.members[role].alive = False
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _check_lifeline(self) -> None:
        if self.lifeline.launcher_alive():
            self._after(_LIFELINE_S, ("lifeline", None))
            return
        logger.error("the launcher (pid {}) is gone: stopping every actor; resting orders are left to the "
                     "exchange's dead man's switch", self.lifeline.pid)
        self.journal.log_event("launcher-lost", f"pid {self.lifeline.pid}")
        self.lifeline.cut()

    # -- status ----------------------------------------------------------------------------------
    def _start_fanin(self, reply_to, purpose: str) -> int:
        rid = next(self.ids)
        self.fanins[rid] = StatusFanIn(rid, reply_to, time.time() + _STATUS_TIMEOUT_S, purpose=purpose)
        self._send(REBUILT + ("gateway",), StatusRequest(rid))
        self._after(_STATUS_TIMEOUT_S, ("status-deadline", rid))
        return rid

    def on_status_request(self, msg: StatusRequest, sender) -> None:
        if self.roster is None:
            self.send(sender, StatusReport("supervisor", msg.request_id, {"mode": self.mode.value}))
            return
        rid = self._start_fanin(sender, "status")
        self.fanins[rid].reports["__request_id__"] = msg.request_id

    def on_status_report(self, msg: StatusReport, sender) -> None:
        fanin = self.fanins.get(msg.request_id)
        if fanin is None:
            return
        fanin.reports[msg.role] = msg.data
        if fanin.complete(ROLES):
            self._finish_fanin(msg.request_id)

    def _finish_fanin(self, rid: int) -> None:
        fanin = self.fanins.pop(rid, None)
        if fanin is None:
            return
        summary = self.summary(fanin.reports)
        if fanin.purpose == "status":
            self.send(fanin.reply_to, StatusReport("supervisor", fanin.reports.get("__request_id__", rid), summary))
        else:
            self._final_status(fanin.reports, summary)

    def summary(self, reports: dict) -> dict:
        pos, guar, book = (reports.get(r, {}) for r in ("position", "guarantor", "orderbook"))
        return {
            "mode": self.mode.value, "reason": self.reason, "emergency": self.emergency,
            "shutdown_requested": self.shutdown_requested, "supervisor_pid": os.getpid(),
            "bot_id": self.config.bot.id,
            "exchange": self.config.bot.exchange,
            "actors": self.roster.view(), "restarts": self.roster.total_restarts(),
            "position": pos.get("position"), "exchange_position": pos.get("exchange_position"),
            "open_orders": book.get("open_orders"), "exchange_open_orders": pos.get("exchange_open_orders"),
            "fills": guar.get("fills"), "fills_by_source": guar.get("fills_by_source"),
            "realized_pnl": pos.get("realized_pnl"), "unrealized_pnl": pos.get("unrealized_pnl"),
            "fees": pos.get("fees"), "price": reports.get("gateway", {}).get("price"),
            "details": {k: v for k, v in reports.items() if not k.startswith("__")},
        }

    # -- shutdown --------------------------------------------------------------------------------
    def on_shutdown(self, msg: Shutdown, sender) -> None:
        self.shutdown_to = sender
        if self.roster is None:
            self.send(sender, ShutdownComplete({}))
            return
        self._set_mode(Mode.STOPPING, msg.reason or "shutdown")
        self.journal.log_event("shutdown", msg.reason)
        self._send("gateway", StopMarketData(msg.reason))
        deadline = time.time() + self.config.timing.shutdown_timeout_s
        if msg.cancel_orders:
            self.shutdown_phase = "cancelling"
            self._send("orderbook", RequestCancels(all_orders=True, reason="shutdown"))
            self._after(self.config.timing.shutdown_timeout_s / 2, ("shutdown-step", ("cancel-deadline", deadline)))
        else:
            self._send("gateway", DisarmDeadMan("shutdown without cancelling: orders stay on purpose"))
            self._final_audit(deadline)

    def on_cleared(self, msg: OrdersCleared, sender) -> None:
        """Our orders are gone: the dead man's switch has nothing left to protect. If they are not
        gone by the deadline, it stays armed and cancels them after we exit."""
        if self.shutdown_phase == "cancelling":
            self._send("gateway", DisarmDeadMan("shutdown: orders cancelled"))
            self._final_audit(time.time() + self.config.timing.shutdown_timeout_s / 2)
        elif self.shutdown_phase == "halting":
            self.shutdown_phase = ""
            self._send("gateway", DisarmDeadMan("halted: no order of ours rests"))

    def _final_audit(self, deadline: float) -> None:
        """Journal every fill the exchange has, then compare ledger and exchange one last time."""
        self.shutdown_phase = "auditing"
        self._send("guarantor", RequestSnapshot(_FINAL_AUDIT_ID))
        self._after(0.2, ("shutdown-step", ("collect", deadline)))

    def _shutdown_step(self, step) -> None:
        kind, deadline = step
        if kind == "cancel-deadline" and self.shutdown_phase == "cancelling":
            logger.warning("orders still live at the shutdown deadline")
            self._final_audit(deadline + self.config.timing.shutdown_timeout_s / 2)
        elif kind == "collect" and self.shutdown_phase == "auditing":
            rid = self._start_fanin(None, "final")
            self.fanins[rid].reports["__deadline__"] = deadline

    def _final_status(self, reports: dict, summary: dict) -> None:
        deadline = reports.get("__deadline__", 0)
        pos, guar = reports.get("position", {}), reports.get("guarantor", {})
        # Periodic audits keep running during a shutdown, so the final one need not be the last seen.
        settled = (_FINAL_AUDIT_ID in pos.get("recent_snapshot_ids", ()) and
                   pos.get("journal_version") == guar.get("version"))
        if not settled and time.time() < deadline:
            self._after(0.2, ("shutdown-step", ("collect", deadline)))
            return
        self.shutdown_phase = "done"
        summary["settled"] = settled
        self.journal.log_event("stopped", f"fills {summary.get('fills')} position {summary.get('position')}")
        self.send(self.shutdown_to, ShutdownComplete(summary))


def main(argv=None) -> int:
    """`gridbot` (the command line lives in actors/cli.py)."""
    from actors.cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
