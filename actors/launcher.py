"""The process behind `gridbot run`: prepares the state directory, starts the actor system on
loopback, creates the supervisor, shows a live status line, and shuts everything down cleanly on
Ctrl-C, SIGTERM or --duration, leaving no process behind."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from actors import hardening
from actors.lifeline import descendants, proc_stat, process_tree, start_time
from actors.shell import mark_launcher
from config import schema
from messages.lifecycle import Shutdown, ShutdownComplete, Start, StatusReport, StatusRequest


AVAILABLE_EXCHANGES = ("paper", "hyperliquid", "binance")


def load_config(args) -> schema.BotConfig:
    config = schema.load(args.config)
    if config.bot.exchange not in AVAILABLE_EXCHANGES:
        raise schema.ConfigError(config.source, "bot.exchange",
                                 f"{config.bot.exchange} is not available in this build yet "
                                 f"(available: {', '.join(AVAILABLE_EXCHANGES)})")
    overrides: dict = {}
    if getattr(args, "state_dir", None):
        overrides.setdefault("bot", {})["state_dir"] = str(Path(args.state_dir).resolve())
    if getattr(args, "data", None):
        data = Path(args.data)
        if not data.is_file():
            raise schema.ConfigError("--data", "paper.data", f"no such file: {args.data}")
        overrides.setdefault("paper", {})["data"] = str(data.resolve())
    if getattr(args, "base_url", None):
        if config.bot.exchange not in ("hyperliquid", "binance"):
            raise schema.ConfigError("--base-url", "bot.exchange",
                                     f"--base-url needs a real venue, the config trades on {config.bot.exchange}")
        if not args.base_url.startswith(("http://", "https://")):
            raise schema.ConfigError("--base-url", f"{config.bot.exchange}.base_url",
                                     f"must start with http:// or https://, got {args.base_url!r}")
        overrides.setdefault(config.bot.exchange, {})["base_url"] = args.base_url.rstrip("/")
    if getattr(args, "speed", None) is not None:
        if args.speed <= 0:
            raise schema.ConfigError("--speed", "paper.speed", f"must be greater than 0, got {args.speed}")
        overrides.setdefault("paper", {})["speed"] = float(args.speed)
    config = config.with_overrides(**overrides) if overrides else config
    check_secrets(config)
    return config


def check_secrets(config: schema.BotConfig) -> None:
    """Fail at the command line, not in the gateway's process, when a key is missing or exposed.
    The key is read again where it is used, so it never travels in a message."""
    if config.bot.exchange == "hyperliquid":
        from adapters.factory import hyperliquid_key
        from adapters.secrets import SecretError
        try:
            key = hyperliquid_key(config)
        except SecretError as exc:
            raise schema.ConfigError(config.source, exc.key, exc.problem) from None
        try:
            from eth_account import Account
            Account.from_key(key.reveal())
        except (ValueError, TypeError):
            raise schema.ConfigError(config.source, "hyperliquid.private_key_env",
                                     "the private key is not a valid 32-byte hex key") from None
    if config.bot.exchange == "binance":
        from adapters.factory import binance_keys
        from adapters.secrets import SecretError
        try:
            binance_keys(config)
        except SecretError as exc:
            raise schema.ConfigError(config.source, exc.key, exc.problem) from None


def prepare_state_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _journal_event(state: Path, kind: str, detail: str) -> None:
    """From whichever bot process refused a frame: every refusal is journaled, not only logged."""
    from adapters.journal import Journal
    journal = Journal(state / "journal.db")
    try:
        journal.log_event(kind, detail)
    finally:
        journal.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def thespian_log_defs(state_dir: Path) -> dict:
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain", "level": "WARNING",
                                  "filename": str(state_dir / "actors.log")}},
            "root": {"handlers": ["file"], "level": "WARNING"}}


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphaned actor processes are re-parented to us (not to init), so we can reap them all."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:
        pass


def reap_children(timeout: float = 10.0) -> int:
    """Wait for every child process to exit (SIGKILL after the deadline); returns how many were killed."""
    deadline = time.monotonic() + timeout
    killed = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline:
            for child in process_tree().get(os.getpid(), []):
                try:
                    os.kill(child, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
        threading.Event().wait(0.05)


_PROCESSES = "processes.json"


def record_processes(state: Path) -> None:
    """The Thespian admin and its helpers run in their own session: if this launcher is killed before
    the supervisor's lifeline runs (during startup), nothing else would stop them. Their pids and
    start times go into the state dir at once, so the next start can."""
    children = process_tree().get(os.getpid(), [])
    (state / _PROCESSES).write_text(json.dumps([[pid, start_time(pid)] for pid in children]))


def reap_stale(state: Path) -> int:
    """Kill what a previous launcher of this state dir left running (same pid and start time, so a
    recycled pid is never hit), with every descendant. Returns how many processes were killed."""
    try:
        recorded = json.loads((state / _PROCESSES).read_text())
    except (OSError, ValueError):
        return 0
    killed = 0
    for pid, started in recorded:
        if started is None or start_time(pid) != started:
            continue
        for p in [pid] + descendants(pid):
            try:
                os.kill(p, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    if killed:
        print(f"gridbot: stopped {killed} processes a previous run of this bot left behind", file=sys.stderr)
    return killed


def start_system(config: schema.BotConfig, base: str = "multiprocTCPBase"):
    """Start the actor system and the supervisor; returns (system, supervisor address, admin port,
    supervisor pid)."""
    from thespian.actors import ActorSystem

    state = prepare_state_dir(config.state_path)
    os.environ["THESPLOG_FILE"] = str(state / "thespian.log")
    os.environ["THESPIAN_BASE_IPADDR"] = "127.0.0.1"
    hardening.install(state)        # loopback, HMAC-authenticated frames, allow-listed unpickling (I8)
    hardening.REFUSAL_HOOKS[:] = [lambda text: _journal_event(state, "security", text)]
    mark_launcher()
    if base.startswith("multiproc"):
        become_subreaper()
    port = config.bot.admin_port or free_port()
    capabilities = {"Admin Port": port} if base.startswith("multiproc") else {}
    reap_stale(state)
    system = ActorSystem(base, capabilities, logDefs=thespian_log_defs(state),
                         transientUnique=not base.startswith("multiproc"))
    if base.startswith("multiproc"):
        record_processes(state)
    try:
        supervisor, pid = start_supervisor(system, config, port)
    except RuntimeError:
        system.shutdown()
        raise
    return system, supervisor, port, pid


_incarnations = iter(range(10**9))


def start_supervisor(system, config: schema.BotConfig, port: int):
    """Create the supervisor (again, after it died) and start it; returns (address, pid). Each one gets
    a global name of its own (Thespian keeps a dead actor's name) and admin.json says which."""
    n = next(_incarnations)
    name = f"gridbot:{config.bot.id}" + (f":{n}" if n else "")
    supervisor = system.createActor("supervisor.Supervisor", globalName=name)
    reply = ask_for(system, supervisor, Start(config), 30, lambda r: isinstance(r, StatusReport) and r.request_id == 0)
    if not isinstance(reply, StatusReport):
        raise RuntimeError(f"the supervisor did not start (got {reply!r})")
    (config.state_path / "admin.json").write_text(json.dumps({"bot_id": config.bot.id, "admin_port": port,
                                                              "pid": os.getpid(), "global_name": name}))
    return supervisor, reply.data.get("pid")


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, TypeError):
        return False
    except PermissionError:
        return True
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


_SILENT_POLLS = 3


def ask_for(system, address, msg, timeout: float, accept):
    """`ask`, but only the expected answer counts: Thespian hands an ask whatever arrives next, and a
    late answer to an earlier ask (a status poll that timed out) must not pass for this one."""
    end = time.monotonic() + timeout
    reply = system.ask(address, msg, timeout)
    while reply is not None and not accept(reply):
        left = end - time.monotonic()
        if left <= 0:
            return None
        reply = system.listen(left)
    return reply


def watch_supervisor(system, supervisor, pid, config, port: int, silent: int):
    """The top-level actor has no parent to restart it: the launcher does. A dead supervisor (its
    actors die with it) or one silent for several polls is replaced by a new one, which rebuilds
    everything from the exchange and the journal. Returns (supervisor, pid, silent polls)."""
    if pid is not None and _alive(pid) and silent < _SILENT_POLLS:
        return supervisor, pid, silent
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGKILL)
    print(f"\nthe supervisor (pid {pid}) is {'gone' if silent < _SILENT_POLLS else 'not answering'}: "
          "starting a new one", flush=True)
    supervisor, pid = start_supervisor(system, config, port)
    return supervisor, pid, 0


def plain(value):
    """JSON-friendly copy: Decimals as exact strings, enums by value."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "value") and hasattr(value, "name"):
        return value.value
    return value


def status_line(data: dict) -> str:
    return (f"[{data.get('mode')}] price {plain(data.get('price'))}  position {plain(data.get('position'))} "
            f"(exchange {plain(data.get('exchange_position'))})  open {data.get('open_orders')}  "
            f"fills {data.get('fills')}  pnl {plain(data.get('realized_pnl'))}  restarts {data.get('restarts')}")


def run(config: schema.BotConfig, duration: float | None = None, summary_path: str | None = None) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from actors.metrics import Metrics
    from actors.status_view import StatusConsole
    metrics = Metrics.for_config(config)            # None when bot.metrics_port is 0
    if metrics is not None and (problem := metrics.probe()):
        print(f"gridbot: config error: {config.source}: bot.metrics_port: {problem}", file=sys.stderr)
        return 2
    tty = sys.stdout.isatty()
    view = StatusConsole(config.state_path / "gridbot.log", live=tty)   # the table on a terminal, log lines
    system, supervisor, port, sup_pid = start_system(config)
    print(f"gridbot {config.bot.id}: {config.bot.exchange} exchange, state in {config.state_path}, "
          f"admin port {port}" + (f", metrics on 127.0.0.1:{metrics.port}/metrics" if metrics else ""), flush=True)
    started = time.monotonic()
    summary: dict = {}
    silent = 0
    try:
        if metrics is not None:
            metrics.serve()                         # after start_system: no actor process inherits its socket
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            rid = int(time.monotonic() * 1000)
            reply = ask_for(system, supervisor, StatusRequest(rid), 5,
                            lambda r, rid=rid: isinstance(r, StatusReport) and r.request_id == rid)
            silent = 0 if isinstance(reply, StatusReport) else silent + 1
            supervisor, sup_pid, silent = watch_supervisor(system, supervisor, sup_pid, config, port, silent)
            if isinstance(reply, StatusReport):
                if reply.data.get("shutdown_requested"):
                    print(f"\nshutdown requested by admin: {reply.data['shutdown_requested']}", flush=True)
                    break
                if metrics is not None:
                    metrics.update(reply.data)
                view.update(reply.data)
            stop.wait(1.0 if duration is None else min(1.0, max(0.0, duration - (time.monotonic() - started))))
        view.stop_live()
        reply = ask_for(system, supervisor, Shutdown(config.bot.cancel_on_shutdown, "stopped by user"),
                        config.timing.shutdown_timeout_s + 10, lambda r: isinstance(r, ShutdownComplete))
        if isinstance(reply, ShutdownComplete):
            summary = plain(reply.summary)
    finally:
        view.close()
        if metrics is not None:
            metrics.stop()
        system.shutdown()
        reap_children()
    result = {k: summary.get(k) for k in ("fills", "position", "exchange_position", "open_orders",
                                           "exchange_open_orders", "realized_pnl", "unrealized_pnl", "fees",
                                           "restarts", "settled", "fills_by_source", "mode", "emergency")}
    print("stopped: " + json.dumps(result), flush=True)
    if summary_path:
        Path(summary_path).write_text(json.dumps({**result, "details": summary.get("details")}, indent=2))
    return 0 if summary else 1
