"""Plain local runs' temporary Prefect servers start one at a time.

Without PREFECT_API_URL, each `python flows/...` run starts a temporary Prefect server of its
own on the SQLite database under PREFECT_HOME (`~/.prefect/prefect.db`), which every such run
shares. A server's start migrates that database and registers Prefect's block types, and
Prefect guards neither against another process (its alembic lock is a thread lock): two servers
starting at once on a fresh or outdated database both run the migrations or register the blocks
(`duplicate column name: block_type_name`, `Online migration expected to match one row`,
`NoSuchTableError: block`); the losing server's start fails with a traceback, and Prefect
either starts it again on another port or gives up (`Timed out while attempting to connect to
ephemeral Prefect API server`, exit status 1). Starts at once also share the CPU: a start is
seconds of imports, so on two cores three of them take about as long as Prefect's start-up
timeout (20 s).

So a plain local run starts its server holding an exclusive lock on a file beside the database
(`prefect.db.server-start.lock`): a second run waits for the first one's server to be up (a
few seconds, saying so in one line), then starts its own, which finds the database migrated
and the blocks registered; from then on both servers share the database as Prefect allows (WAL,
its busy timeout, its retries of a locked database). The runs themselves go on side by side.

The lock is taken when Prefect actually starts the server (SubprocessASGIServer.start, the one
way a client, the events worker or the log worker starts it), so a mistake on the command line
still ends before anything is locked or started. Runs with PREFECT_API_URL set never start a
temporary server and are untouched.
"""

from __future__ import annotations

import fcntl
import functools
import importlib.abc
import importlib.util
import os
import sys
import time as clock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

from prefect.logging import get_logger

SERVER_MODULE = "prefect.server.api.server"
LOCK_SUFFIX = ".server-start.lock"
# The lock is held for one server's start, which Prefect bounds (20 s by default); past this
# wait its holder is stuck (a stopped process), and the run starts its server anyway.
MAX_WAIT_SECONDS = 300.0
_POLL_SECONDS = 0.1


def is_plain_local_run() -> bool:
    """True when this process's flow runs would start a temporary Prefect server: no
    PREFECT_API_URL, temporary servers allowed."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return not settings.api.url and settings.server.ephemeral.enabled


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


def start_servers_in_turn() -> None:
    """Make this process's temporary Prefect server start under the database's lock. Prefect's
    server module costs seconds to import, so it is wrapped when something first imports it
    (when a server is about to start), not now; a no-op when already done."""
    module = sys.modules.get(SERVER_MODULE)
    if module is not None:
        _wrap_start(module)
    elif not any(isinstance(finder, _WhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported(SERVER_MODULE, _wrap_start))


def _wrap_start(module: ModuleType) -> None:
    server_class = module.SubprocessASGIServer
    start = server_class.start
    if getattr(start, "_in_turn", False):
        return

    @functools.wraps(start)
    def start_in_turn(self: Any, timeout: int | None = None) -> None:
        if self.running:
            return start(self, timeout)
        with server_start_lock(start_lock_path()):
            return start(self, timeout)

    start_in_turn._in_turn = True  # type: ignore[attr-defined]
    server_class.start = start_in_turn


class _WhenImported(importlib.abc.MetaPathFinder):
    """Calls `then(module)` right after the module named is first imported, then steps aside."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module
        then = self.then

        def exec_then(module: ModuleType) -> None:
            exec_module(module)
            then(module)

        spec.loader.exec_module = exec_then  # type: ignore[method-assign]
        return spec
