"""Stops a local run's temporary Prefect server once the run is gone, however it ended.

Prefect starts the server as a child process of the run and stops it when the run exits; a run
killed outright (kill -9, the out-of-memory killer) never gets to, and the server would go on
serving, holding its port and the database, for good. So `start_temporary_server` starts this
watcher just before the server: `python tasks/common/server_watch.py RUN_PID PORT` (run as a
file, it needs no import path), a child of the run in a session of its own (Ctrl-C in the
terminal does not reach it). It imports nothing of Prefect's and reads processes from /proc, or
from ps(1) where there is none. While the run lives, it notes each of the run's children that is
a Prefect server. Once its parent is no longer the run (at once, if the run died before the
watcher began), it stops those still there and any Prefect server left on PORT, the port the
run chose (a server the run died too early to see noted), SIGTERM then SIGKILL, and ends. So a
killed run's server is stopped whether the run died while the server was starting or long after.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

POLL_SECONDS = 0.5
STOP_SECONDS = 5.0
# The factory Prefect's temporary server runs under uvicorn: it names a server on the command line.
SERVER_APP = "prefect.server.api.server:create_app"


def running(pid: int) -> bool:
    """Whether the process is there and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:  # no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in (b"Z", b"X")


def process_table() -> dict[int, tuple[int, list[str]]]:
    """Every process: PID to (its parent's PID, its arguments); from /proc, or from ps(1) where
    there is no /proc (macOS)."""
    return table_from_proc() if os.path.isdir("/proc/self") else table_from_ps()


def table_from_proc() -> dict[int, tuple[int, list[str]]]:
    """The process table read from /proc (Linux)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().decode(errors="replace").split("\0")
        except OSError:  # ended in the meantime
            continue
        table[int(entry)] = (parent, args)
    return table


def table_from_ps() -> dict[int, tuple[int, list[str]]]:
    """The process table as ps(1) lists it, at any width (-ww): arguments split at blanks."""
    listing = subprocess.run(
        ["ps", "-A", "-ww", "-o", "pid=", "-o", "ppid=", "-o", "args="],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    table = {}
    for line in listing.splitlines():
        pid, parent, *args = line.split()
        table[int(pid)] = (int(parent), args)
    return table


def is_server(args: list[str], port: int | None = None) -> bool:
    """Whether a process of these arguments is a Prefect server (on port, when given)."""
    if SERVER_APP not in args:
        return False
    return port is None or ("--port", str(port)) in itertools.pairwise(args)


def stop(pid: int) -> None:
    """SIGTERM, then SIGKILL if the process is still there after STOP_SECONDS."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            if not running(pid):
                return
            time.sleep(0.1)


def watch(run_pid: int, port: int) -> None:
    """Until the run is gone, note its Prefect servers; then stop those still running."""
    noted: dict[int, list[str]] = {}  # PID: its arguments, to know it again
    while os.getppid() == run_pid:
        if not any(running(pid) for pid in noted):  # none yet, or Prefect starts another
            for pid, (parent, args) in process_table().items():
                if parent == run_pid and is_server(args):
                    noted[pid] = args
        time.sleep(POLL_SECONDS)
    table = process_table()
    noted.update((pid, args) for pid, (_, args) in table.items() if is_server(args, port))
    for pid, args in noted.items():
        if pid in table and table[pid][1] == args:  # that server, not another process on its PID
            stop(pid)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
