"""A launcher killed during startup leaves the Thespian admin (its own session) running; the next start
of the same bot stops exactly those processes, never one whose pid was recycled."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from actors.launcher import reap_stale
from actors.lifeline import start_time
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(30)


def test_processes_a_previous_run_left_are_stopped_with_their_children(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "time.sleep(60)"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from actors.lifeline import process_tree
        children = wait_until(lambda: process_tree().get(parent.pid), 10, "the child process")
        (tmp_path / "processes.json").write_text(json.dumps([[parent.pid, start_time(parent.pid)],
                                                             [bystander.pid, "0"]]))   # recycled pid
        assert reap_stale(tmp_path) == 2
        parent.wait(10)
        wait_until(lambda: start_time(children[0]) is None, 10, "the child gone")
        assert bystander.poll() is None                  # a different start time: not ours, left alone
    finally:
        for proc in (parent, bystander):
            proc.kill()
            proc.wait(10)


def test_nothing_recorded_nothing_stopped(tmp_path):
    assert reap_stale(tmp_path) == 0
