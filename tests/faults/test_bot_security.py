"""I8 against a running bot (`gridbot run`, paper): every listening socket of every bot process is on
127.0.0.1; crafted pickles sent raw to the admin port and to an actor's port do not execute (the canary
file never appears), are journaled, and the bot keeps trading."""
from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from thespian.actors import ActorAddress
from thespian.system.transport.IPBase import TCPv4ActorAddress

from tests.faults.test_security import Exploit, _global, listening_sockets, sealed, send_raw, wire
from tests.helpers import admin_json, live_processes_with_arg, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.multiproc]
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def status(state) -> dict | None:
    return admin_json("status", "--state-dir", str(state), tolerate=True)


def test_running_bot_binds_loopback_and_refuses_crafted_frames(tmp_path):
    state = tmp_path / "state"
    bot = subprocess.Popen([sys.executable, str(REPO / "supervisor.py"), "run", "--state-dir", str(state),
                            "--speed", "600"], stdout=open(tmp_path / "out.txt", "w"),
                           stderr=open(tmp_path / "err.txt", "w"), env=ENV)
    marker = tmp_path / "pwned"
    try:
        first = wait_until(lambda: (state / "admin.json").exists() and (lambda s: s if s and s["mode"] == "trading"
                                                                         else None)(status(state)), 60, "trading")
        pids = set(live_processes_with_arg(str(state)))
        assert len(pids) >= 9                                   # launcher, admin, supervisor, 7 actors ...
        listening = listening_sockets(pids)
        assert listening and all(t == "tcp" and a == "0100007F" for t, a, _ in listening), listening
        admin_port = json.loads((state / "admin.json").read_text())["admin_port"]
        grid_ports = [p for _, _, p in listening_sockets({first["actors"]["grid"]["pid"]})]
        assert grid_ports
        me = ActorAddress(TCPv4ActorAddress("127.0.0.1", 9, external=True))
        wrong_key = os.urandom(32)
        bot_key = (state / "hmac.key").read_bytes()              # only to check the bot's signed answers
        for port in (admin_port, grid_ports[0]):
            for frame in (wire(pickle.dumps((me, Exploit(marker)))),                       # os.system reduce
                          wire(pickle.dumps((me, _global("os.path", "join")))),            # a dotted-name walk
                          wire(pickle.dumps((me, _global("thespian.runcommand", "Command")))),
                          sealed(wrong_key, (me, Exploit(marker)))):                    # a client without the key
                assert send_raw(port, frame, bot_key) in ("ACK+DATAERR", None)
        assert not marker.exists()
        fills = first["fills"] or 0
        wait_until(lambda: (lambda s: s and (s["fills"] or 0) > fills and s["mode"] == "trading")(status(state)),
                   60, "the bot still trading")
        db = sqlite3.connect(state / "journal.db")
        refused = [d for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'security'")]
        db.close()
        assert refused and all("refused a frame" in d for d in refused)
    finally:
        bot.terminate()
        bot.wait(60)
    assert not marker.exists()
