"""Stops a local run's temporary Prefect server once the run is gone, however it ended.

Prefect starts the server as a child process of the run and stops it when the run exits; a run
killed outright (kill -9, the out-of-memory killer) never gets to, and the server would go on
serving, holding its port and the database, for good. So `start_temporary_server` starts this
watcher just before the server: `python tasks/common/server_watch.py RUN_PID PORT` (run as a
file, it needs no import path), a child of the run in a session of its own (Ctrl-C in the
terminal does not reach it). It imports nothing of Prefect's. While the run lives, it notes each
of the run's children that is a Prefect server. Once its parent is no longer the run (at once,
if the run died before the watcher began), it stops those still there and any Prefect server
left on PORT, the port the run chose (a server the run died too early to see noted), SIGTERM
then SIGKILL, and ends. So a killed run's server is stopped whether the run died while the
server was starting or long after.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
STOP_SECONDS = 5.0
# The factory Prefect's temporary server runs under uvicorn: it names a server on the command line.
SERVER_APP = b"prefect.server.api.server:create_app"


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


def command_line(pid: int) -> list[bytes]:
    """The process's arguments; empty once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def is_server(pid: int, port: int | None = None) -> bool:
    """Whether the process is a Prefect server (on port, when given)."""
    args = command_line(pid)
    if SERVER_APP not in args:
        return False
    wanted = (b"--port", str(port).encode())
    return port is None or wanted in itertools.pairwise(args)


def children(pid: int) -> set[int]:
    """The process's children (those of each of its threads), from /proc."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def servers_on(port: int) -> set[int]:
    """Every process that is a Prefect server on port."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return {pid for pid in pids if is_server(pid, port)}


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
    noted: dict[int, list[bytes]] = {}  # PID: its command line, to know it again
    while os.getppid() == run_pid:
        for pid in children(run_pid) - noted.keys():
            if is_server(pid):
                noted[pid] = command_line(pid)
        time.sleep(POLL_SECONDS)
    noted.update((pid, command_line(pid)) for pid in servers_on(port))
    for pid, args in noted.items():
        if command_line(pid) == args:  # still that server, not another process on its PID
            stop(pid)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
