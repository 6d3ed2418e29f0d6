"""Stops a local run's temporary Prefect server once the run is gone, however it ended.

Prefect starts the server as a child process of the run and stops it when the run exits; a run
killed outright (kill -9, the out-of-memory killer) never gets to, and the server would go on
serving, holding its port and the database, for good. So `start_temporary_server` starts this
watcher beside it: `python tasks/common/server_watch.py SERVER_PID` (run as a file, it needs no
import path), a child of the run in a session of its own (Ctrl-C in the terminal does not reach
it). It imports nothing of Prefect's and looks twice a second: once its parent is no longer the
run, it stops the server (SIGTERM, then SIGKILL); once the server is gone (a normal stop), it
ends.
"""

from __future__ import annotations

import os
import signal
import sys
import time

POLL_SECONDS = 0.5
STOP_SECONDS = 5.0


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


def watch(run_pid: int, server_pid: int) -> None:
    """Until the server is gone: stop it as soon as the run is."""
    while running(server_pid):
        if os.getppid() != run_pid:
            stop(server_pid)
            return
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    watch(os.getppid(), int(sys.argv[1]))
