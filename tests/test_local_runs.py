"""Plain local runs started at the same moment (no PREFECT_API_URL, one PREFECT_HOME) all succeed
with no traceback on a fresh Prefect database: each starts its temporary Prefect server in turn
(tasks/common/local_server.py), with time to start on a busy machine, then the runs go on side
by side, waiting for a warehouse another process holds."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_DATABASE_CONNECTION_URL,
    PREFECT_HOME,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    temporary_settings,
)

from sql import model
from tasks.common import server_watch
from tasks.common.local_server import (
    LOCAL_STARTUP_TIMEOUT_SECONDS,
    local_startup_timeout,
    server_start_lock,
    start_lock_path,
)
from tasks.common.server_watch import SERVER_APP, running
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.hold import WAIT_VARIABLE, transaction
from tasks.warehouse.tables import create_tables
from tests.conftest import HOLD_FILE, PROJECT_ROOT
from tests.helpers import snapshot, table_counts
from tests.shared_servers import migrated_home

# data/sample, the default source, loaded into an empty warehouse.
SAMPLE_COUNTS = {"artists": 52, "songplays": 3729, "songs": 150, "time": 3729, "users": 83}
WAITING = "waiting for another local run to start its temporary Prefect server"


def local_env(home: Path) -> dict[str, str]:
    """A plain local run's environment: no PREFECT_API_URL (nor any other Prefect setting but
    the shared PREFECT_HOME), so each run starts a temporary server on home's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("SPARKIFY_DEBUG", None)
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_two_runs_at_once_on_a_fresh_prefect_database_and_a_held_warehouse(
    tmp_path: Path, held_file: tuple[Path, subprocess.Popen]
) -> None:
    """Two `python flows/etl.py --warehouse W` at the same moment, on a fresh Prefect database
    and one warehouse file a third process holds: one waits for the other's server start, both
    then wait for the file (plain local runs share no concurrency limit), and once it is
    released they load in turn."""
    db, holder = held_file
    env = {**local_env(tmp_path / "home"), WAIT_VARIABLE: "300"}
    logs = [tmp_path / f"run{n}.log" for n in range(2)]
    runs = []
    for log in logs:
        with log.open("w") as out:
            command = [sys.executable, "flows/etl.py", "--warehouse", str(db)]
            runs.append(
                subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)
            )
    deadline = time.monotonic() + 240
    while not all("is held by another process" in log.read_text() for log in logs):
        assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
        assert all(run.poll() is None for run in runs), [log.read_text() for log in logs]
        time.sleep(0.5)
    holder.stdin.close()  # both runs are waiting for the file: release it

    outputs = []
    for run, log in zip(runs, logs, strict=True):
        assert run.wait(timeout=300) == 0, log.read_text()[-3000:]
        outputs.append(log.read_text())
    assert not any("Traceback" in output for output in outputs), outputs
    assert table_counts(db) == SAMPLE_COUNTS
    # Started at the same moment, one run waited for the other's server start (a start takes
    # seconds, more than their imports can differ), saying so once.
    waits = [line for output in outputs for line in output.splitlines() if WAITING in line]
    assert len(waits) == 1, waits
    assert " | INFO    | prefect.sparkify - " in waits[0], waits


# --- the lock, without servers ----------------------------------------------------------------


def test_the_lock_is_beside_the_sqlite_database_and_absent_for_one_in_memory(
    tmp_path: Path,
) -> None:
    # The default database URL (a session's test harness may have set another one).
    with temporary_settings(
        {PREFECT_HOME: tmp_path / "home"}, restore_defaults={PREFECT_API_DATABASE_CONNECTION_URL}
    ):
        assert start_lock_path() == tmp_path / "home" / "prefect.db.server-start.lock"
    url = f"sqlite+aiosqlite:///{tmp_path}/elsewhere/p.db"
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: url}):
        assert start_lock_path() == tmp_path / "elsewhere" / "p.db.server-start.lock"
    memory = "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true&check_same_thread=false"
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: memory}):
        assert start_lock_path() is None


def hold(path: Path) -> int:
    """Take the lock at path as another process would (flock is per open file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_start_waits_for_the_holder_saying_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prefect.db.server-start.lock"
    with caplog.at_level(logging.INFO, logger="prefect.sparkify"):
        with server_start_lock(path) as waited:
            assert waited == 0.0
        assert not [r for r in caplog.records if WAITING in r.getMessage()]

        fd = hold(path)
        threading.Timer(0.5, os.close, [fd]).start()
        with server_start_lock(path) as waited:
            assert waited is not None
            assert waited >= 0.4
    lines = [r.getMessage() for r in caplog.records if WAITING in r.getMessage()]
    assert lines == [
        f"{WAITING}: both use {tmp_path / 'prefect.db'}, which two servers must not set up at once"
    ]


def test_a_stuck_holder_delays_a_start_only_so_long(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prefect.db.server-start.lock"
    fd = hold(path)
    try:
        with (
            caplog.at_level(logging.INFO, logger="prefect.sparkify"),
            server_start_lock(path, max_wait=0.3) as waited,
        ):
            assert waited is None
    finally:
        os.close(fd)
    assert "may be stuck: starting the server anyway" in caplog.records[-1].getMessage()


def test_a_local_server_gets_at_least_the_local_start_up_limit() -> None:
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 20}):
        assert local_startup_timeout() == LOCAL_STARTUP_TIMEOUT_SECONDS
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 900}):
        assert local_startup_timeout() == 900


def test_a_run_with_prefect_api_url_set_starts_no_temporary_server(tmp_path: Path) -> None:
    """With PREFECT_API_URL set, starting the temporary server does nothing: not even Prefect's
    server module is imported, and no Prefect database is made. (Runs without it start theirs
    on the home's database: the Ctrl-C test looks into it mid-run.)"""
    home = tmp_path / "home"
    script = textwrap.dedent(
        """
        import sys
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from tasks.common.local_server import ApiUnreachable, start_temporary_server

        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
            try:
                start_temporary_server()
            except ApiUnreachable:  # nothing answers there: said, and nothing started
                print("unreachable")
        print("prefect.server.api.server" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=local_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["unreachable", "False"]
    assert not (home / "prefect.db").exists()


def child_pids(pid: int) -> list[int]:
    """The process's children, from /proc."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@pytest.mark.parametrize("moment", ["mid-flight", "while-its-server-starts"])
def test_a_local_run_killed_outright_leaves_no_temporary_server(
    tmp_path: Path, moment: str
) -> None:
    """kill -9 of a plain local run, mid-flight or while its temporary server is still starting
    (before the run could begin): that server (a child Prefect would stop at the run's exit) is
    stopped by the run's watcher within seconds."""
    log = tmp_path / "run.log"
    command = [sys.executable, "flows/etl.py", "--warehouse", str(tmp_path / "wh.duckdb")]
    env = local_env(migrated_home(tmp_path / "home"))
    with log.open("w") as out:
        run = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        at_start = moment == "while-its-server-starts"  # else once the flow run has begun
        while not servers or not (at_start or "Beginning flow run" in log.read_text()):
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2 if servers else 0.02)
            servers = uvicorn_children(run.pid)
        assert len(servers) == 1, child_pids(run.pid)
        run.kill()
        run.wait(timeout=30)
        if at_start:
            assert "Beginning flow run" not in log.read_text()
        deadline = time.monotonic() + 30
        while running(servers[0]):
            assert time.monotonic() < deadline, "the temporary server outlived its run"
            time.sleep(0.2)
    finally:
        run.kill()
        for pid in servers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_watcher_stops_the_server_on_the_port_of_a_run_dead_before_it_looked() -> None:
    """A run killed so early that its watcher never saw its server as its child (here: gone
    before the watcher began): the watcher stops the Prefect server on the run's port, and
    leaves one on another port alone. Ports outside Prefect's range: no real server is hit."""
    ours, other = fake_server(65001), fake_server(65002)
    try:
        run = subprocess.run(
            [sys.executable, "-c", START_WATCHER, str(Path(server_watch.__file__)), "65001"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        watcher = int(run.stdout)
        deadline = time.monotonic() + 30
        while running(watcher) or running(ours.pid):
            assert time.monotonic() < deadline, "the watcher left the dead run's server running"
            time.sleep(0.1)
        assert ours.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None
    finally:
        ours.kill()
        other.kill()


def test_both_readings_of_the_process_table_know_a_server_and_its_parent() -> None:
    """The watcher's process table from /proc and from ps(1) (its reading where there is no
    /proc, as on macOS) agree on a server's parent and see it as a Prefect server on its port."""
    server = fake_server(65003)
    try:
        for table in (server_watch.table_from_proc(), server_watch.table_from_ps()):
            parent, args = table[server.pid]
            assert parent == os.getpid()
            assert server_watch.is_server(args, 65003)
            assert not server_watch.is_server(args, 65004)
            assert not server_watch.is_server(table[os.getpid()][1])
    finally:
        server.kill()


def fake_server(port: int) -> subprocess.Popen:
    """A process whose command line is that of a Prefect server on port: it only sleeps."""
    return subprocess.Popen([sys.executable, "-c", SLEEP, SERVER_APP, "--port", str(port)])


SLEEP = "import time; time.sleep(120)"
# A run that starts its watcher and dies at once.
START_WATCHER = """
import os, subprocess, sys
watcher = subprocess.Popen([sys.executable, sys.argv[1], str(os.getpid()), sys.argv[2]],
                           start_new_session=True)
print(watcher.pid)
"""


def uvicorn_children(pid: int) -> list[int]:
    """The process's children that are Prefect's temporary server (a child that ended in the
    meantime is none)."""
    found = []
    for child in child_pids(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if b"uvicorn" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def test_ctrl_c_stops_a_run_at_once_in_one_line_keeping_the_warehouse(tmp_path: Path) -> None:
    """Ctrl-C in the terminal (SIGINT to the run's process group, its temporary server with it)
    while the run is in flight, its flow begun and waiting for a warehouse that holds a load
    (its temporary server's database, the home's, holds the run and no concurrency limit): the
    run ends with exit status 130 and one line, no traceback, no server left behind, and the
    warehouse as it was."""
    db = tmp_path / "wh.duckdb"
    with transaction(DuckDBWarehouse(path=str(db)).get_engine()) as conn:
        create_tables(conn)
        conn.execute(
            model.users.insert().values(user_id=1, level="free", last_seen_at=datetime(2018, 11, 1))
        )
    before = snapshot(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout.readline().strip() == b"held"
    log = tmp_path / "run.log"
    home = migrated_home(tmp_path / "home")
    env = {**local_env(home), WAIT_VARIABLE: "300"}
    command = [sys.executable, "flows/etl.py", "--warehouse", str(db)]
    with log.open("w") as out:
        run = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while "is held by another process" not in log.read_text():
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        servers = uvicorn_children(run.pid)
        # The run is on its temporary server, whose database is the home's; it took no
        # concurrency limit there (a killed run could leave its slot taken in the shared
        # database): the warehouse hold guards it instead.
        assert len(servers) == 1, child_pids(run.pid)
        with sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True) as prefect_db:
            assert prefect_db.execute("select name from flow").fetchall() == [("sparkify-etl",)]
            assert prefect_db.execute("select count(*) from concurrency_limit_v2").fetchone() == (
                0,
            )
        assert "no concurrency limit; the warehouse hold guards" in log.read_text()
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 130, log.read_text()[-3000:]
        output = log.read_text()
        assert "Traceback" not in output, output[-3000:]
        assert output.rstrip().splitlines()[-1].startswith("etl: interrupted: the run stopped;")
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in servers):
            assert time.monotonic() < deadline, "the temporary server outlived its run"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        holder.stdin.close()
        holder.wait(timeout=30)
    assert servers
    assert snapshot(db) == before
