"""`gridbot status|halt|resume|flatten|shutdown`: talk to a running bot from another process.

The bot is found through its state directory (admin.json: bot id and admin port). Two Thespian traps
are avoided on purpose (see thespian.md): connecting to an admin port where no bot runs would
silently start a new actor system, so the port must answer first; and the supervisor is looked up by
its global name with a class that can never be created, so a typo never spawns an actor. The client
exits without `shutdown()`, which would stop the whole bot. Thespian keeps one system per process, so
a process talks to one bot: the CLI runs one command per process.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from thespian.actors import Actor, ActorSystemFailure, NoCompatibleSystemForActor

from messages.lifecycle import AdminShutdown, Flatten, Halt, Resume, StatusReport, StatusRequest

COMMANDS = {"halt": Halt, "resume": Resume, "flatten": Flatten, "shutdown": AdminShutdown}


class AdminError(Exception):
    """A one-line reason the command could not reach the bot (exit 1)."""


class SupervisorLookup(Actor):
    """Finds the supervisor by global name; never created anywhere."""

    @staticmethod
    def actorSystemCapabilityCheck(capabilities, requirements) -> bool:
        return False


def find_bot(state_dir: Path) -> tuple[str, int, str]:
    admin = Path(state_dir) / "admin.json"
    try:
        info = json.loads(admin.read_text())
        return str(info["bot_id"]), int(info["admin_port"]), str(info.get("global_name") or f"gridbot:{info['bot_id']}")
    except FileNotFoundError:
        raise AdminError(f"no bot has run in {state_dir} (no admin.json)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AdminError(f"{admin} is not a gridbot admin file ({exc})") from None


def port_answers(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def ask(state_dir: Path, command: str, reason: str = "", timeout: float = 10.0) -> dict:
    """Send one admin command (or a status request) and return the supervisor's answer."""
    msg = StatusRequest(int(time.time() * 1000)) if command == "status" else COMMANDS[command](reason)
    return send(state_dir, msg, timeout, command)


def send(state_dir: Path, msg, timeout: float = 10.0, what: str = "the request") -> dict:
    bot_id, port, name = find_bot(state_dir)
    if not port_answers(port):
        raise AdminError(f"bot {bot_id} is not running (nothing answers on its admin port {port})")
    from thespian.actors import ActorSystem

    from actors import hardening
    try:
        hardening.hardened(state_dir)       # the bot's key: without it the bot would refuse us
    except hardening.HardeningError as exc:
        raise AdminError(f"cannot authenticate to bot {bot_id}: {exc}") from None
    os.environ.setdefault("THESPIAN_BASE_IPADDR", "127.0.0.1")
    os.environ.setdefault("THESPLOG_FILE", str(Path(state_dir) / "thespian-admin.log"))
    system = ActorSystem("multiprocTCPBase", {"Admin Port": port}, logDefs=_quiet_logs())
    try:
        supervisor = system.createActor(SupervisorLookup, globalName=name)
        reply = system.ask(supervisor, msg, timeout)
    except NoCompatibleSystemForActor:
        raise AdminError(f"bot {bot_id} has no supervisor right now (is it restarting?)") from None
    except ActorSystemFailure as exc:
        raise AdminError(f"bot {bot_id} is not reachable on admin port {port} ({exc})") from None
    if not isinstance(reply, StatusReport):
        raise AdminError(f"bot {bot_id} did not answer {what} within {timeout:.0f}s")
    return reply.data


def _quiet_logs() -> dict:
    return {"version": 1, "disable_existing_loggers": False,
            "handlers": {"null": {"class": "logging.NullHandler"}},
            "root": {"handlers": ["null"], "level": "WARNING"}}
