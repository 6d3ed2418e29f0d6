"""Which failures are retried: a table of failures, real ones wherever they can be made here (a
DuckDB file another process holds, a refused or dropped connection, a file that is not a
database, a terminated PostgreSQL backend), and the retry options at work in a real task."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.config
import botocore.session
import duckdb
import psycopg2
import pytest
import redshift_connector
from botocore.exceptions import ClientError
from prefect import flow, task
from prefect.states import Failed
from redshift_connector.error import InterfaceError as RedshiftInterfaceError
from redshift_connector.error import ProgrammingError as RedshiftProgrammingError
from sqlalchemy import create_engine, make_url, text

import tasks.common.retry as retry
from tasks.cluster.lifecycle import ClusterWaitTimeout
from tasks.common.errors import UserError, WarehouseBusy
from tasks.common.retry import (
    DELAY_SCALE_VARIABLE,
    RETRY_TRANSIENT,
    RULES,
    TRANSIENT_RETRY_DELAYS,
    classify,
    is_transient,
    retry_if_transient,
    scaled_delays,
)
from tests.redshift_wire import COPY_FAILED, SERIALIZABLE_VIOLATION, connect_error
from tests.shared_servers import free_port


@dataclass
class Maker:
    """What a case needs to make its failure: the test's request (for fixtures) and a folder."""

    request: pytest.FixtureRequest
    tmp_path: Path

    def fixture(self, name: str):
        """A fixture's value, only for the cases that need it."""
        return self.request.getfixturevalue(name)


def raised(action: Callable[[], object]) -> BaseException:
    """The exception the action raises (the test fails if it raises none)."""
    try:
        action()
    except Exception as error:
        return error
    raise AssertionError("the action raised nothing")


@pytest.fixture(scope="module")
def locked_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A DuckDB file another process holds open for writing until the module's tests end."""
    path = tmp_path_factory.mktemp("lock") / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "open"
    yield path
    holder.stdin.close()
    holder.wait(timeout=30)


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on."""
    return free_port()


def hanging_up_server() -> int:
    """A server that reads what the client sends, then closes the connection: a dropped line."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def junk_duckdb(m: Maker) -> Path:
    """A .duckdb file that is not a database."""
    path = m.tmp_path / "junk.duckdb"
    path.write_bytes(b"not a database, only junk\n" * 400)
    return path


def duckdb_locked(m: Maker) -> BaseException:
    path = str(m.fixture("locked_duckdb"))
    return raised(lambda: duckdb.connect(path))


def duckdb_locked_via_sqlalchemy(m: Maker) -> BaseException:
    engine = create_engine(f"duckdb:///{m.fixture('locked_duckdb')}")
    return raised(engine.connect)


def redshift_refused(m: Maker) -> BaseException:
    return raised(
        lambda: redshift_connector.connect(
            host="127.0.0.1", port=closed_port(), user="u", password="p", database="d"
        )
    )


def redshift_refused_via_sqlalchemy(m: Maker) -> BaseException:
    url = f"redshift+redshift_connector://u:p@127.0.0.1:{closed_port()}/d"
    return raised(lambda: create_engine(url).connect())


def redshift_hung_up(m: Maker) -> BaseException:
    url = f"redshift+redshift_connector://u:p@127.0.0.1:{hanging_up_server()}/d"
    return raised(lambda: create_engine(url, connect_args={"ssl": False}).connect())


def psycopg2_refused(m: Maker) -> BaseException:
    return raised(lambda: psycopg2.connect(host="127.0.0.1", port=closed_port(), dbname="d"))


def postgres_refused_via_sqlalchemy(m: Maker) -> BaseException:
    url = f"postgresql+psycopg2://u:p@127.0.0.1:{closed_port()}/d"
    return raised(lambda: create_engine(url).connect())


def postgres_terminated(m: Maker) -> BaseException:
    """A statement on a connection whose backend the server terminated."""
    engine = create_engine(m.fixture("postgres_server"))
    try:
        with engine.connect() as victim, engine.connect() as admin:
            pid = victim.exec_driver_sql("select pg_backend_pid()").scalar_one()
            admin.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
            alive = text("select count(*) from pg_stat_activity where pid = :pid")
            deadline = time.monotonic() + 10
            while admin.execute(alive, {"pid": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.05)
            return raised(lambda: victim.exec_driver_sql("select 1"))
    finally:
        engine.dispose()


def postgres_statement(m: Maker, *statements: str) -> BaseException:
    """The error of the last statement on a real PostgreSQL connection."""
    engine = create_engine(m.fixture("postgres_server"))
    try:
        with engine.connect() as conn:
            for statement in statements[:-1]:
                conn.exec_driver_sql(statement)
            return raised(lambda: conn.exec_driver_sql(statements[-1]))
    finally:
        engine.dispose()


def postgres_unknown_database(m: Maker) -> BaseException:
    url = make_url(m.fixture("postgres_server")).set(database="no_such_database")
    engine = create_engine(url)
    try:
        return raised(engine.connect)
    finally:
        engine.dispose()


def s3_client_trying_once(endpoint: str):
    """A botocore S3 client for an endpoint, with no retry of its own."""
    return botocore.session.get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def s3_unreachable(m: Maker) -> BaseException:
    return raised(s3_client_trying_once(f"http://127.0.0.1:{closed_port()}").list_buckets)


def s3_body_cut_short(m: Maker) -> BaseException:
    """An object's body that ends before its Content-Length: the connection closes mid-read."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)

        threading.Thread(target=answer, daemon=True).start()
        client = s3_client_trying_once(f"http://127.0.0.1:{server.getsockname()[1]}")
        body = client.get_object(Bucket="b", Key="k")["Body"]
        return raised(body.read)


def moto_cluster_not_found(m: Maker) -> BaseException:
    client = botocore.session.get_session().create_client(
        "redshift",
        region_name="us-east-1",
        endpoint_url=m.fixture("moto_endpoint"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return raised(lambda: client.describe_clusters(ClusterIdentifier="no-such-cluster"))


def aws_error(code: str, status: int = 400) -> ClientError:
    """A ClientError as botocore builds it from an AWS error response."""
    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "CreateCluster")  # type: ignore[arg-type]


def server_error(code: str, message: str) -> RedshiftProgrammingError:
    """An error response from a Redshift server, as redshift_connector raises it."""
    return RedshiftProgrammingError({"S": "FATAL", "C": code, "M": message})


SERIALIZATION_FAILURE = (
    "do $$ begin raise exception 'could not serialize access due to read/write dependencies "
    "among transactions' using errcode = 'serialization_failure'; end $$"
)


def user_error_caused_by_a_refused_connection(m: Maker) -> BaseException:
    class NoWarehouse(UserError):
        pass

    try:
        try:
            socket.create_connection(("127.0.0.1", closed_port()), timeout=5)
        except ConnectionRefusedError as refused:
            raise NoWarehouse("no warehouse at 127.0.0.1: start it or name another") from refused
    except NoWarehouse as error:
        return error
    raise AssertionError("the connection was not refused")


CASES = [
    # retried: a held DuckDB file, for a bounded wait
    ("duckdb-locked", duckdb_locked, True),
    ("duckdb-locked-via-sqlalchemy", duckdb_locked_via_sqlalchemy, True),
    # retried: refused and dropped connections
    (
        "socket-refused",
        lambda m: raised(lambda: socket.create_connection(("127.0.0.1", closed_port()))),
        True,
    ),
    ("redshift-connector-refused", redshift_refused, True),
    ("redshift-refused-via-sqlalchemy", redshift_refused_via_sqlalchemy, True),
    ("redshift-server-hung-up", redshift_hung_up, True),
    ("psycopg2-refused", psycopg2_refused, True),
    ("postgres-refused-via-sqlalchemy", postgres_refused_via_sqlalchemy, True),
    ("postgres-backend-terminated", postgres_terminated, True),
    ("s3-endpoint-unreachable", s3_unreachable, True),
    ("s3-body-cut-short", s3_body_cut_short, True),
    ("connection-reset", lambda m: ConnectionResetError(104, "Connection reset by peer"), True),
    ("broken-pipe", lambda m: BrokenPipeError(32, "Broken pipe"), True),
    ("socket-timeout", lambda m: TimeoutError("timed out"), True),
    ("redshift-connection-closed", lambda m: RedshiftInterfaceError("connection is closed"), True),
    ("redshift-admin-shutdown", lambda m: server_error("57P01", "terminating connection"), True),
    (
        "redshift-starting-up",
        lambda m: server_error("57P03", "the database system is starting up"),
        True,
    ),
    # retried: a transaction that conflicted with another (run again, it commits)
    ("redshift-serializable-violation", lambda m: connect_error(SERIALIZABLE_VIOLATION), True),
    (
        "redshift-serializable-violation-via-sqlalchemy",
        lambda m: connect_error(SERIALIZABLE_VIOLATION, through_sqlalchemy=True),
        True,
    ),
    ("postgres-serialization", lambda m: postgres_statement(m, SERIALIZATION_FAILURE), True),
    # retried: AWS throttling and a cluster that is not available yet
    ("aws-throttling", lambda m: aws_error("Throttling"), True),
    ("aws-ec2-request-limit", lambda m: aws_error("RequestLimitExceeded", 503), True),
    ("aws-s3-slow-down", lambda m: aws_error("SlowDown", 503), True),
    ("aws-service-unavailable", lambda m: aws_error("ServiceUnavailable", 503), True),
    ("aws-cluster-state", lambda m: aws_error("InvalidClusterState"), True),
    ("aws-cluster-state-fault", lambda m: aws_error("InvalidClusterStateFault"), True),
    # never retried
    ("duckdb-not-a-database", lambda m: raised(lambda: duckdb.connect(str(junk_duckdb(m)))), False),
    (
        "duckdb-not-a-database-via-sqlalchemy",
        lambda m: raised(lambda: create_engine(f"duckdb:///{junk_duckdb(m)}").connect()),
        False,
    ),
    ("duckdb-bad-sql", lambda m: raised(lambda: duckdb.connect().execute("selec 1")), False),
    ("postgres-bad-sql", lambda m: postgres_statement(m, "selec 1"), False),
    (
        "postgres-statement-timeout",
        lambda m: postgres_statement(m, "set statement_timeout = 10", "select pg_sleep(1)"),
        False,
    ),
    ("postgres-unknown-database", postgres_unknown_database, False),
    ("redshift-copy-failed", lambda m: connect_error(COPY_FAILED), False),
    ("moto-cluster-not-found", moto_cluster_not_found, False),
    ("aws-access-denied", lambda m: aws_error("AccessDenied", 403), False),
    ("aws-invalid-parameter", lambda m: aws_error("InvalidParameterValue"), False),
    ("aws-quota", lambda m: aws_error("ClusterQuotaExceeded"), False),
    (
        "redshift-password-refused",
        lambda m: server_error("28000", 'password authentication failed for user "sparkify"'),
        False,
    ),
    (
        "psycopg2-password-refused",
        lambda m: psycopg2.OperationalError(
            'connection to server at "127.0.0.1", port 5439 failed: FATAL:  password '
            'authentication failed for user "sparkify"'
        ),
        False,
    ),
    ("redshift-ssl-refused", lambda m: RedshiftInterfaceError("Server refuses SSL"), False),
    ("value-error", lambda m: raised(lambda: int("twelve")), False),
    ("missing-file", lambda m: raised(lambda: (m.tmp_path / "absent.json").read_text()), False),
    ("cluster-wait-timeout", lambda m: ClusterWaitTimeout("still creating after 1800 s"), False),
    ("user-error-caused-by-refusal", user_error_caused_by_a_refused_connection, False),
    ("warehouse-busy", lambda m: WarehouseBusy("wh.duckdb", "PID 12", 60.0), False),
    # named UserError though it is a ConnectionError: the user's mistake wins
    ("a-class-named-user-error", lambda m: type("UserError", (ConnectionError,), {})("x"), False),
]


@pytest.mark.parametrize(("make", "transient"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_only_what_a_retry_can_cure_is_retried(
    make: Callable[[Maker], BaseException],
    transient: bool,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    error = make(Maker(request, tmp_path))
    assert isinstance(error, BaseException)
    rule = classify(error)
    assert is_transient(error) is transient, f"{error!r} classified as {rule}"
    assert retry_if_transient(None, None, Failed(data=error)) is transient


def test_every_rule_is_in_the_documented_table() -> None:
    table = retry.__doc__ or ""
    assert [rule.reason for rule in RULES if rule.reason not in table] == []
    assert RULES[0].reason == "a user's mistake"
    assert not RULES[0].retry


def test_the_retry_delays_are_a_bounded_backoff() -> None:
    delays = list(TRANSIENT_RETRY_DELAYS)
    assert delays == sorted(delays)
    assert delays[0] <= 5
    most = sum(delays) * (1 + RETRY_TRANSIENT["retry_jitter_factor"])
    assert most <= 120  # a lock or a throttle is waited out in about a minute, never for long
    assert RETRY_TRANSIENT["retry_condition_fn"] is retry_if_transient


def test_the_delay_scale_shortens_every_wait_and_refuses_nonsense(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(DELAY_SCALE_VARIABLE, raising=False)
    assert scaled_delays([2, 10]) == [2, 10]
    monkeypatch.setenv(DELAY_SCALE_VARIABLE, "0.5")
    assert scaled_delays([2, 10]) == [1, 5]
    monkeypatch.setenv(DELAY_SCALE_VARIABLE, "0")
    assert scaled_delays([2, 10]) == [0, 0]
    for nonsense in ("soon", "-1", "inf"):
        monkeypatch.setenv(DELAY_SCALE_VARIABLE, nonsense)
        with caplog.at_level(logging.WARNING, logger="prefect.sparkify"):
            assert scaled_delays([2, 10]) == [2, 10]
        assert f"{DELAY_SCALE_VARIABLE}={nonsense!r} is not a factor >= 0" in caplog.text


def test_a_task_retries_a_dropped_connection_and_never_bad_sql(prefect_server) -> None:
    attempts: dict[str, int] = {}

    @task(**{**RETRY_TRANSIENT, "retry_delay_seconds": 0})
    def flaky(kind: str) -> str:
        attempts[kind] = attempts.get(kind, 0) + 1
        if kind == "dropped" and attempts[kind] < 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        if kind == "bad sql":
            raise RedshiftProgrammingError({"S": "ERROR", "C": "42601", "M": "syntax error"})
        return "done"

    @flow
    def run(kind: str) -> str:
        return flaky(kind, return_state=True).type.value

    assert run("dropped") == "COMPLETED"
    assert attempts["dropped"] == 3
    assert run("bad sql") == "FAILED"
    assert attempts["bad sql"] == 1
