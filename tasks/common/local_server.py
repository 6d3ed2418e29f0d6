"""Plain local runs start their temporary Prefect server themselves: in turn, with time to start.

Without PREFECT_API_URL, each `python flows/...` run starts a temporary Prefect server of its
own on the SQLite database under PREFECT_HOME (`~/.prefect/prefect.db`), which every such run
shares. A server's start migrates that database and registers Prefect's block types, and
Prefect guards neither against another process: two servers starting at once on a fresh or
outdated database both run the migrations or register the blocks, and the losing one fails.
A start is also seconds of imports, so on a busy laptop it can miss Prefect's start-up limit
(20 s by default) and the run ends in "Timed out while attempting to connect to ephemeral
Prefect API server".

So a command line, once its own checks have passed (a mistake still ends before anything is
imported, locked or started), calls `start_temporary_server()`: it takes an exclusive lock on a
file beside the database (`prefect.db.server-start.lock`), starts the server through Prefect's
own `SubprocessASGIServer` with the start-up limit raised to at least
LOCAL_STARTUP_TIMEOUT_SECONDS (Prefect's setting PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS;
a larger value of the user's stands), and lets go once the server answers. Prefect's clients
then find that server running and use it. A second run waits for the first one's server to be
up (saying so in one line), then starts its own on the database already set up; from then on
the runs go on side by side as Prefect allows (WAL, its busy timeout, its retries). Runs with
PREFECT_API_URL set never start a temporary server: the call does nothing for them. A watcher
process, started just before the server, stops it if the run dies without stopping it, during
the server's start or after it (tasks/common/server_watch.py).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.logging import get_logger

from tasks.common.errors import UserError

LOCK_SUFFIX = ".server-start.lock"
ANALYTICS_VARIABLE = "PREFECT_SERVER_ANALYTICS_ENABLED"
# Long enough for a server's start on a loaded two-core laptop (imports, migrations, blocks).
LOCAL_STARTUP_TIMEOUT_SECONDS = 120
# The lock is held for one server's start, bounded by the start-up limit; past this wait its
# holder is stuck (a stopped process), and the run starts its server anyway.
MAX_WAIT_SECONDS = 300.0
_POLL_SECONDS = 0.1


def is_plain_local_run() -> bool:
    """True when this process's flow runs would start a temporary Prefect server: no
    PREFECT_API_URL, temporary servers allowed."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return not settings.api.url and settings.server.ephemeral.enabled


def start_temporary_server() -> None:
    """Start this process's temporary Prefect server now, in turn with other local runs on the
    same database and with time to start; a no-op once started. With PREFECT_API_URL set it
    starts nothing, but a server that cannot be reached there is a user's mistake, said in one
    line (ApiUnreachable) before any run begins."""
    if not is_plain_local_run():
        check_api_reachable()
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as SETTING

    server = SubprocessASGIServer()
    if server.running:
        return
    updates: dict[Any, Any] = {SETTING: local_startup_timeout()}
    if ANALYTICS_VARIABLE not in os.environ:
        # The server's usage report: offline (or firewalled), each start logs an ERROR line.
        updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    with temporary_settings(updates=updates), server_start_lock(start_lock_path()):
        if server.port is None:
            server.port = server.find_available_port()
        watch_server(server.port)
        server.start()


def watch_server(port: int) -> None:
    """Start the watcher that stops this process's temporary server (on port) if this process
    dies without stopping it, even while the server starts (tasks/common/server_watch.py)."""
    subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("server_watch.py")),
            str(os.getpid()),
            str(port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def local_startup_timeout() -> int:
    """Seconds a local run's temporary server may take to start: Prefect's setting, raised to
    LOCAL_STARTUP_TIMEOUT_SECONDS when lower."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    return max(
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), LOCAL_STARTUP_TIMEOUT_SECONDS
    )


def start_lock_path() -> Path | None:
    """The lock file of the temporary servers' database: beside the SQLite file they share;
    under PREFECT_HOME for another database; None for an in-memory one (nothing is shared)."""
    from prefect.settings import get_current_settings
    from sqlalchemy.engine import make_url

    settings = get_current_settings()
    url = settings.server.database.connection_url
    if url is None:
        return Path(settings.home) / f"prefect.db{LOCK_SUFFIX}"
    parsed = make_url(url.get_secret_value())
    if parsed.get_backend_name() != "sqlite":
        return Path(settings.home) / f"server{LOCK_SUFFIX}"
    database = parsed.database or ""
    if not database or ":memory:" in database or parsed.query.get("mode") == "memory":
        return None
    return Path(database).expanduser().with_name(Path(database).name + LOCK_SUFFIX)


@contextmanager
def server_start_lock(
    path: Path | None, max_wait: float = MAX_WAIT_SECONDS
) -> Iterator[float | None]:
    """Hold the exclusive lock at path for the block (a no-op for None); the seconds waited for
    it, or None when it was never taken (stuck holder). One line is logged when another
    process holds it; the lock dies with its process, so a crashed holder never blocks."""
    if path is None:
        yield 0.0
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = _acquire(fd, path, max_wait)
        try:
            yield waited
        finally:
            if waited is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, max_wait: float) -> float | None:
    if _try_lock(fd):
        return 0.0
    # Prefect's console logger, never a run's: a run's logs go to the server not yet up.
    logger = get_logger("sparkify")
    database = path.with_name(path.name.removesuffix(LOCK_SUFFIX))
    logger.info(
        "waiting for another local run to start its temporary Prefect server: both use %s, "
        "which two servers must not set up at once",
        database,
    )
    asked = clock.monotonic()
    while clock.monotonic() - asked < max_wait:
        clock.sleep(_POLL_SECONDS)
        if _try_lock(fd):
            return clock.monotonic() - asked
    logger.warning(
        "%s has been held for %.0fs by a process that may be stuck: starting the server anyway",
        path,
        max_wait,
    )
    return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class ApiUnreachable(UserError):
    """PREFECT_API_URL names a server that does not answer."""


def check_api_reachable(timeout: float = 10.0) -> None:
    """ApiUnreachable when nothing answers at PREFECT_API_URL: no connection, or none in time.
    Any HTTP answer, even a refusal, means a server is there (Prefect's client says the rest)."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return
    try:
        httpx.get(f"{str(url).rstrip('/')}/health", timeout=timeout)
    except httpx.TransportError as error:
        raise ApiUnreachable(
            f"the Prefect API at {url} (PREFECT_API_URL) cannot be reached "
            f"({type(error).__name__}): start that server (make server), or unset "
            "PREFECT_API_URL to run on a temporary local server"
        ) from None
