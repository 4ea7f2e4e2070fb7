"""The hardened Thespian transport (actors.hardening) against a real multiprocTCPBase system.

The system runs in a subprocess of its own (`python -m tests.faults.test_security host ...`) and the
well-behaved admin client in another (`... client ...`), so this test process never imports
actors.hardening: it plays the attacker with raw sockets and its own, independent reading of the wire
format (`<length>>` + HMAC-SHA256(key, pickle) + pickle).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from thespian.actors import Actor

pytestmark = [pytest.mark.multiproc, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.faults.test_security"
PROBE = "actors.hardening.HardeningProbe"
IO_TIMEOUT_S = 15   # a guard against a hung peer, never a synchronisation


class Outsider(Actor):
    """A perfectly ordinary Actor that is not in the actors package: the admin must refuse to create it."""

    def receiveMessage(self, msg, sender):
        self.send(sender, msg)


# --- the two helper processes -------------------------------------------------------------------

def _log_defs(state: Path) -> dict:
    return {"version": 1, "disable_existing_loggers": False,
            "handlers": {"file": {"class": "logging.FileHandler", "level": "WARNING",
                                  "filename": str(state / "actors.log")}},
            "root": {"handlers": ["file"], "level": "WARNING"}}


def host_main(state: Path, port: int) -> None:
    """Start a hardened system with a probe actor, say where it is, stop when stdin closes."""
    from actors import hardening

    hardening.install(state)
    from thespian.actors import ActorSystem

    system = ActorSystem("multiprocTCPBase", {"Admin Port": port}, logDefs=_log_defs(state))
    try:
        probe = system.createActor(PROBE, globalName="probe")
        print(json.dumps({"probe_port": probe.addressDetails.sockname[1], "pid": os.getpid()}), flush=True)
        sys.stdin.read()
    finally:
        system.shutdown()


def client_main(state: Path, port: int) -> None:
    """The remote admin: load the bot's key, find the probe, ask it, try forbidden creations.
    Leaves without shutdown() (that would stop the whole system)."""
    from actors import hardening

    hardening.hardened(state)
    from thespian.actors import ActorSystem

    from messages.lifecycle import StatusReport, StatusRequest

    system = ActorSystem("multiprocTCPBase", {"Admin Port": port})
    probe = system.createActor(PROBE, globalName="probe")
    reply = system.ask(probe, StatusRequest(4242), 10)
    out = {"reply": [reply.role, reply.request_id] if isinstance(reply, StatusReport) else repr(reply)}
    for cls in [f"{MODULE}.Outsider", "thespian.runcommand.RunCommand", "os.system"]:
        try:
            system.createActor(cls)
            out[cls] = "created"
        except Exception as exc:
            out[cls] = type(exc).__name__
    print(json.dumps(out), flush=True)


# --- the attacker's view of the wire ------------------------------------------------------------

def wire(payload: bytes) -> bytes:
    return b"%d>" % len(payload) + payload


def sealed(key: bytes, obj) -> bytes:
    body = pickle.dumps(obj)
    return wire(hmac.digest(key, body, hashlib.sha256) + body)


def read_frame(sock: socket.socket) -> bytes:
    """One frame's payload, or b'' if the peer closed first."""
    head = b""
    while not head.endswith(b">"):
        chunk = sock.recv(1)
        if not chunk:
            return b""
        head += chunk
    size = int(head[:-1])
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


def opened(key: bytes, payload: bytes):
    tag, body = payload[:32], payload[32:]
    assert hmac.compare_digest(tag, hmac.digest(key, body, hashlib.sha256)), "reply without a valid MAC"
    return pickle.loads(body)   # authenticated by our own system


def send_raw(port: int, data: bytes, key: bytes):
    """Send bytes to a Thespian port; the decoded answer ('ACK', 'ACK+DATAERR') or None if it just closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as sock:
        sock.sendall(data)
        payload = read_frame(sock)
    return opened(key, payload) if payload else None


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --- process bookkeeping ------------------------------------------------------------------------

def listening_sockets(pids: set[int]) -> list[tuple[str, str, int]]:
    """(table, local address hex, port) of every TCP socket in LISTEN held by one of `pids`."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:
                addr, port = cols[1].split(":")
                found.append((table, addr, int(port, 16)))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_client(state: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDBOT_HMAC_KEY_FILE", "THESPIAN_BASE_IPADDR")}
    return subprocess.Popen([sys.executable, "-m", MODULE, "client", str(state), str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_client(state: Path, port: int) -> dict:
    proc = start_client(state, port)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def system(tmp_path):
    """A hardened system in a subprocess: (state dir, admin port, probe port, host pid, key). Every
    process of it carries the (unique) state dir in its command line."""
    from tests.helpers import live_processes_with_arg, wait_until

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GRIDBOT_HMAC_KEY_FILE", "THESPIAN_BASE_IPADDR")}
    env["THESPLOG_FILE"] = str(state / "thespian.log")
    host = subprocess.Popen([sys.executable, "-m", MODULE, "host", str(state), str(port)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(state / "host.err", "w"),
                            text=True, start_new_session=True)
    try:
        line = host.stdout.readline()
        assert line, f"the system did not start: {(state / 'host.err').read_text()[-3000:]}"
        info = json.loads(line)
        key = (state / "hmac.key").read_bytes()
        yield state, port, info["probe_port"], host.pid, key
    finally:
        host.stdin.close()                             # the host shuts the system down
        try:
            host.wait(30)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait(10)
        try:
            wait_until(lambda: not live_processes_with_arg(str(state)), 20, "every process of the system gone")
        finally:
            for pid in live_processes_with_arg(str(state)):   # the admin daemonizes: not our child
                os.kill(pid, signal.SIGKILL)


# --- the test -----------------------------------------------------------------------------------

def test_hardened_system_refuses_crafted_frames_binds_loopback_and_serves_the_keyed_client(system, tmp_path):
    from thespian.actors import ActorAddress
    from thespian.system.transport.IPBase import TCPv4ActorAddress

    from messages.lifecycle import StatusReport, StatusRequest

    from tests.helpers import live_processes_with_arg

    state, admin_port, probe_port, host_pid, key = system
    marker = tmp_path / "pwned"

    # A client with another key (its own state dir) is refused: Thespian gives up after ~15 s, so it
    # runs alongside the rest and is judged at the end.
    other = tmp_path / "other-state"
    other.mkdir(mode=0o700)
    (other / "hmac.key").write_bytes(secrets.token_bytes(32))
    (other / "hmac.key").chmod(0o600)
    keyless = start_client(other, admin_port)

    # (c) every listening socket of every process of the system (all carry the state dir in their
    # command line; the admin daemonizes, so they are not all our descendants) is on 127.0.0.1
    pids = set(live_processes_with_arg(str(state)))
    assert host_pid in pids and len(pids) >= 4, pids   # the host, the admin, the logger, the probe
    listening = listening_sockets(pids)
    ports = {p for _, _, p in listening}
    assert {admin_port, probe_port} <= ports, listening
    assert len(listening) >= 4, listening           # the host's endpoint, the admin, the logger, the probe
    assert all(table == "tcp" and addr == "0100007F" for table, addr, _ in listening), listening

    # (a) code-execution pickles, stock (no MAC) and even MAC'd with the real key: refused, not run
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(IO_TIMEOUT_S)
    me = ActorAddress(TCPv4ActorAddress("127.0.0.1", listener.getsockname()[1], external=True))
    exploit = (me, Exploit(marker))
    attacks = {
        "stock pickle to the admin": (admin_port, wire(pickle.dumps(exploit))),
        "stock pickle to an actor": (probe_port, wire(pickle.dumps(exploit))),
        "keyed exploit to the admin": (admin_port, sealed(key, exploit)),
        "keyed runcommand to the admin": (admin_port, sealed(key, (me, _global("thespian.runcommand", "Command")))),
        "keyed two strings to the admin": (admin_port, sealed(key, ("a", "b"))),
        "keyed two strings to an actor": (probe_port, sealed(key, ("a", "b"))),
        "a 10^15-byte frame": (admin_port, b"1000000000000000>" + b"x" * 64),
        "garbage": (admin_port, b"\x80\x04\x95garbage" * 8),
    }
    for what, (port, data) in attacks.items():
        answer = send_raw(port, data, key)
        assert answer in ("ACK+DATAERR", None), f"{what}: {answer!r}"
    assert not marker.exists()

    # (b) an allowed message without a MAC, or with a wrong one, is refused; with the right one it is served
    assert send_raw(probe_port, wire(pickle.dumps((me, StatusRequest(1)))), key) == "ACK+DATAERR"
    assert send_raw(probe_port, sealed(secrets.token_bytes(32), (me, StatusRequest(2))), key) == "ACK+DATAERR"
    assert send_raw(probe_port, sealed(key, (me, StatusRequest(3))), key) == "ACK"
    conn, _ = listener.accept()
    with conn, listener:
        conn.settimeout(IO_TIMEOUT_S)
        sender, report = opened(key, read_frame(conn))
        conn.sendall(sealed(key, "ACK"))
    assert isinstance(report, StatusReport) and report.request_id == 3, report   # not 1 or 2
    assert sender.addressDetails.sockname == ("127.0.0.1", probe_port)

    # (d) the admin client with the key still works after all that; (e) it cannot create foreign actors
    out = run_client(state, admin_port)
    assert out["reply"] == ["hardening-probe", 4242]
    assert out[f"{MODULE}.Outsider"] == "NoCompatibleSystemForActor"
    assert out["thespian.runcommand.RunCommand"] == "NoCompatibleSystemForActor"
    assert out["os.system"] == "NoCompatibleSystemForActor"
    assert not marker.exists()
    refused = (state / "host.err").read_text()
    assert "dropped an incoming frame" in refused

    try:
        _, err = keyless.communicate(timeout=60)
    finally:
        if keyless.poll() is None:
            keyless.kill()
    assert keyless.returncode != 0
    assert "not a valid or useable ActorSystem Admin" in err, err[-3000:]
    assert not live_processes_with_arg(str(other))      # and it did not start a system of its own


class _global:
    """Pickles as a bare reference to module.name (what a crafted frame would carry)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __reduce__(self):
        import importlib

        return getattr(importlib.import_module(self.module), self.name), ()


if __name__ == "__main__":
    role, state_dir, admin_port_arg = sys.argv[1:4]
    {"host": host_main, "client": client_main}[role](Path(state_dir), int(admin_port_arg))
