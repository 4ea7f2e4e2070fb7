"""The bot dies with its launcher. Thespian's admin process is forked by `gridbot run` but cannot be
told to die with it, so the supervisor holds a lifeline: it watches the launcher's pid (and start time,
against pid reuse), and when the launcher is gone, SIGKILL or not, it takes the admin process and every
actor down, leaving the venue's dead man's switch to cancel what rests."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from actors.shell import LAUNCHER_ENV


def proc_stat(pid: int | str) -> list[str] | None:
    """/proc/pid/stat's fields after the command name (state first, then ppid ...), None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/pid/stat), None when it does not exist."""
    fields = proc_stat(pid)
    return fields[19] if fields and fields[0] != "Z" else None


def process_tree() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(entry.name)
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(root: int) -> list[int]:
    tree, out, todo = process_tree(), [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def processes_with_arg(text: str) -> list[int]:
    """Pids of running (non-zombie) processes other than this one with `text` in their command line.
    Every process of a bot is forked from its launcher, so each carries the launcher's arguments (a
    unique state dir or config path), while an environment variable set at run time would not show."""
    needle, me, found = text.encode(), os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fields = proc_stat(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields and fields[0] != "Z" and needle in cmdline:
            found.append(int(entry.name))
    return found


class Lifeline:
    def __init__(self) -> None:
        text = os.environ.get(LAUNCHER_ENV, "")
        self.pid = int(text) if text.isdigit() else None
        self.started = start_time(self.pid) if self.pid else None

    @property
    def watching(self) -> bool:
        return self.pid is not None and self.pid != os.getpid() and self.started is not None

    def launcher_alive(self) -> bool:
        return not self.watching or start_time(self.pid) == self.started

    def cut(self) -> None:
        """Kill the admin process and everything under it except us, then exit."""
        admin = os.getppid()
        me = os.getpid()
        for pid in [p for p in descendants(admin) if p != me] + [admin]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(1)
