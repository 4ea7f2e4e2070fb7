"""ActorShell: the one place that turns Thespian messages into calls on a pure state class.

It handles Wire (roster + config, answered with Ready), timers, heartbeats, PR_SET_PDEATHSIG, logging
context, and the exception policy: MalformedInput is logged and dropped; any other exception may have
corrupted state, so the actor exits and the supervisor rebuilds it from the exchange.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import time
from datetime import timedelta

from loguru import logger
from thespian.actors import (
    Actor,
    ActorExitRequest,
    ChildActorExited,
    PoisonMessage,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from actors.outbox import REPLY, SUPERVISOR, After, MalformedInput, Out
from messages.lifecycle import FaultProbe, Heartbeat, ModeChanged, Ready, Wire

LAUNCHER_ENV = "GRIDBOT_LAUNCHER_PID"
_HEARTBEAT = "__heartbeat__"
_PR_SET_PDEATHSIG = 1


def mark_launcher() -> None:
    """Called by whatever starts an ActorSystem, so actors can tell they run in a process of their own."""
    os.environ[LAUNCHER_ENV] = str(os.getpid())


def in_own_process() -> bool:
    return os.environ.get(LAUNCHER_ENV, "") != str(os.getpid())


def die_with_parent() -> None:
    """Children die with their parent (Linux): a SIGKILLed supervisor leaves no orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


_log_configured: set[str] = set()
_console_replaced = False
# a 32-byte hex key (an Ethereum private key, an HMAC key) or a 64-character API key or secret
_SECRET_LIKE = re.compile(r"\b(?:0x)?[0-9a-fA-F]{64}\b|\b[A-Za-z0-9]{64}\b")


def _redact(record) -> bool:
    """Every sink's filter: whatever looks like a key never reaches a log, even by mistake."""
    record["message"] = _SECRET_LIKE.sub("[redacted]", record["message"])
    return True


def _console_format(record) -> str:
    role = str(record["extra"].get("role") or record["name"]).replace("{", "{{").replace("}", "}}")
    return "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> " + f"{role: <10}" + " {message}\n{exception}"


def configure_logging(state_dir, role: str, level: str = "INFO") -> None:
    """JSON lines into the state directory, one file for the whole bot (appends are atomic), every
    line naming its actor. An actor in a process of its own writes nothing to the terminal: `gridbot
    run` relays the file's INFO-and-above records as human lines (actors/status_view.py). Actors in
    the launcher's process (simpleSystemBase: tests, backtests) trade loguru's default DEBUG console
    for human lines at INFO (or `level` if higher), unless the program already removed that default."""
    global _console_replaced
    key = f"{os.getpid()}:{state_dir}"
    if key in _log_configured:
        return
    _log_configured.add(key)
    if in_own_process():
        logger.remove()
        logger.configure(extra={"role": role})
    elif not _console_replaced:
        _console_replaced = True
        try:
            logger.remove(0)                # loguru's default sink: stderr, DEBUG
        except ValueError:
            pass                            # the program chose its own console: leave it alone
        else:
            logger.add(lambda line: sys.stderr.write(line), colorize=sys.stderr.isatty(),
                       level=max(logger.level(level).no, logger.level("INFO").no),
                       format=_console_format, filter=_redact, backtrace=False, diagnose=False)
    logger.add(os.path.join(str(state_dir), "gridbot.log"), serialize=True, level=level, filter=_redact,
               enqueue=False, backtrace=False, diagnose=False)


class ActorShell(Actor):
    """Subclasses set `role`, implement `make_state(wire)` and `routes` (message type -> method name
    on the state). State methods return lists of Out/After."""

    role = "actor"
    routes: dict = {}

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.state = None
        self.wire: Wire | None = None
        self.incarnation = 0
        self._heartbeat_started = False
        self._sender = None
        if in_own_process():
            die_with_parent()

    # -- hooks -----------------------------------------------------------------------------------
    def make_state(self, wire: Wire):
        raise NotImplementedError

    def on_wired(self) -> list:
        """Called after every Wire; the first creates the state."""
        return []

    def on_timer(self, payload) -> list:
        handler = getattr(self.state, "on_timer", None)
        return handler(payload) if handler else []

    def on_watch(self, ready) -> list:
        return []

    def watch_fds(self) -> list[int]:
        return []

    def on_exit(self) -> None:
        closer = getattr(self.state, "close", None)
        if closer:
            closer()

    # -- plumbing --------------------------------------------------------------------------------
    def receiveMessage(self, msg, sender):
        self._sender = sender
        try:
            self._dispatch(self._handle(msg, sender))
        except MalformedInput as exc:
            logger.bind(role=self.role).warning("dropped malformed {}: {}", type(msg).__name__, exc)
        except Exception:
            logger.bind(role=self.role).exception("{} failed on {}; exiting for a rebuild", self.role,
                                                  type(msg).__name__)
            self._exit_for_rebuild()
            return None
        fds = self.watch_fds()
        return ThespianWatch(fds) if fds else None

    def _handle(self, msg, sender) -> list:
        if isinstance(msg, Wire):
            return self._on_wire(msg, sender)
        if isinstance(msg, ActorExitRequest):
            self.on_exit()
            return []
        if isinstance(msg, WakeupMessage):
            if msg.payload == _HEARTBEAT:
                return self._heartbeat()
            return self.on_timer(msg.payload) if self.state is not None else []
        if isinstance(msg, WatchMessage):
            return self.on_watch(msg.ready) if self.state is not None else []
        if isinstance(msg, (ChildActorExited, PoisonMessage)):
            logger.bind(role=self.role).warning("{} got {}", self.role, msg)
            return []
        if self.state is None:
            logger.bind(role=self.role).debug("{} not wired yet; dropped {}", self.role, type(msg).__name__)
            return []
        if isinstance(msg, FaultProbe):
            raise RuntimeError(f"injected fault in {self.role}'s handler {msg.note}")
        method = self.routes.get(type(msg))
        if method is None and isinstance(msg, ModeChanged):
            return []               # only the actors that act on the mode route it
        if method is None:
            raise MalformedInput(f"{self.role} has no route for {type(msg).__name__}")
        return getattr(self.state, method)(msg)

    def _on_wire(self, wire: Wire, sender) -> list:
        first = self.state is None
        self.wire = wire
        if first:
            config = wire.config
            configure_logging(config.state_path, self.role, config.bot.log_level)
            self.state = self.make_state(wire)
        out = [Out(REPLY, Ready(self.role, os.getpid(), self.incarnation))] if first else []
        if first and not self._heartbeat_started:
            self._heartbeat_started = True
            self.wakeupAfter(timedelta(seconds=wire.config.timing.heartbeat_interval_s), _HEARTBEAT)
        return out + self.on_wired()

    def _heartbeat(self) -> list:
        self.wakeupAfter(timedelta(seconds=self.wire.config.timing.heartbeat_interval_s), _HEARTBEAT)
        return [Out(SUPERVISOR, Heartbeat(self.role, os.getpid(), time.time()))]

    def _dispatch(self, outputs) -> None:
        for item in outputs or ():
            if isinstance(item, After):
                self.wakeupAfter(timedelta(seconds=item.seconds), item.payload)
            elif isinstance(item, Out):
                targets = (item.to,) if isinstance(item.to, str) else item.to
                for target in targets:
                    addr = self._address(target)
                    if addr is None:
                        logger.bind(role=self.role).debug("no address for {}; dropped {}", target,
                                                          type(item.msg).__name__)
                        continue
                    self.send(addr, item.msg)
            else:
                raise TypeError(f"state returned {item!r}")

    def _address(self, role: str):
        if role == REPLY:
            return self._sender
        if self.wire is None:
            return None
        if role == SUPERVISOR:
            return self.wire.supervisor
        return self.wire.address(role)

    def _exit_for_rebuild(self) -> None:
        try:
            self.on_exit()
        except Exception:
            pass
        self.send(self.myAddress, ActorExitRequest())
