"""Which failures a retry can cure, and the task options that retry only those.

A failure is looked at link by link: the exception, its `__cause__`, sqlalchemy's `orig` (the
driver's exception) and any exception carried in `args` (redshift_connector raises
`InterfaceError("communication error", <socket error>)`). The first rule of `RULES` that any link
matches decides; a failure no rule matches is not retried.

retry  reason                                     what it matches
-----  -----------------------------------------  -----------------------------------------------
no     a user's mistake                           tasks.common.errors.UserError (any class so named)
no     credentials refused                        SQLSTATE 28xxx; "password authentication failed"
no     not a DuckDB file                          DuckDB "not a valid DuckDB database file"
yes    AWS throttling                             Throttling, SlowDown, RequestLimitExceeded, ...
yes    AWS briefly unavailable                    ServiceUnavailable, InternalError, HTTP 50x, ...
yes    cluster not available yet                  InvalidClusterState(Fault): creating, modifying
yes    DuckDB file locked by another process      DuckDB "Could not set lock on file"
yes    connection refused or dropped              ConnectionRefused/Reset/Aborted, BrokenPipe,
                                                  TimeoutError (socket errors)
yes    AWS endpoint unreachable                   botocore connection errors, SSLError excepted;
                                                  a response body cut short
yes    Redshift connection lost                   redshift_connector "communication error",
                                                  "connection is closed", "server socket closed"
yes    PostgreSQL connection lost                 psycopg2 "could not connect", "Connection
                                                  refused", "server closed the connection", ...
yes    server dropped or refused the connection   SQLSTATE 08xxx, 57P01-57P03, 53300
yes    connection invalidated                     sqlalchemy DBAPIError.connection_invalidated
yes    serializable isolation conflict            Redshift error 1023 ("Serializable isolation
                                                  violation on table"); SQLSTATE 40001

Everything else fails at once: bad SQL and other ProgrammingErrors, ValueError, a missing file, a
sqlalchemy OperationalError whose cause is none of the above.

RETRY_TRANSIENT is for tasks that call AWS or open their own warehouse connection (the source
listing and S3 tasks, the cluster, IAM and network tasks, row counts, digests); a whole load is
retried by tasks/run/pipeline.py with the same `is_transient`. Work inside the caller's
transaction (transform, checks) is never retried alone. The delays, about 2, 10 and 30 s
(jittered, at most +50%), about 40 s in all, outlast throttling and a dropped connection
(SPARKIFY_RETRY_DELAY_SCALE multiplies them: the test suite sets it near 0); a DuckDB
file another run holds is waited for by the DuckDB warehouse itself (then WarehouseBusy, a
UserError). Waits of minutes (a cluster starting) belong to the cluster waits in
tasks/cluster/lifecycle.py, not to retries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc

from tasks.common.logs import run_logger

AWS_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    }
)
AWS_UNAVAILABLE_CODES = frozenset(
    {"ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeoutException"}
)
AWS_UNAVAILABLE_STATUS = frozenset({500, 502, 503, 504})
CLUSTER_NOT_READY_CODES = frozenset({"InvalidClusterState", "InvalidClusterStateFault"})

AUTH_MESSAGES = ("password authentication failed", "authentication failed", "no pg_hba.conf entry")
REDSHIFT_CONNECTION_LOST = (
    "communication error",
    "connection is closed",
    "server socket closed",
    "connection time out",
)
POSTGRES_CONNECTION_LOST = (
    "could not connect to server",
    "connection refused",
    "server closed the connection",
    "terminating connection",
    "could not receive data from server",
    "could not send data to server",
    "ssl syscall error",
    "connection already closed",
    "no connection to the server",
    "timeout expired",
    "connection timed out",
    "the database system is starting up",
    "the database system is shutting down",
)
# 08: connection exception; 57P01-03: admin or crash shutdown, cannot connect now (starting up);
# 53300: too many connections.
CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

# Redshift's error (its message field) when a transaction would break serializable isolation:
# another transaction wrote what this one read, or the reverse. Redshift's advice is to run the
# transaction again; it has rolled back.
REDSHIFT_SERIALIZABLE_ERROR = "1023"
SERIALIZABLE_MESSAGES = ("serializable isolation violation",)
# PostgreSQL's serialization_failure.
SERIALIZATION_FAILURE_SQLSTATE = "40001"

# How many links of an exception chain are looked at (chains are short; cycles are cut).
MAX_CHAIN = 16

Matcher = Callable[[BaseException], bool]


@dataclass(frozen=True)
class Rule:
    """One row of the table: what it matches, whether a retry can cure it, and why."""

    reason: str
    retry: bool
    matches: Matcher


def driver_of(error: BaseException) -> str:
    """The top-level package of the exception's class (`_duckdb` counts as `duckdb`)."""
    return type(error).__module__.split(".", 1)[0].lstrip("_")


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE the database server sent with the error, if it sent one."""
    code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
    if code is None and driver_of(error) == "redshift_connector" and error.args:
        fields = error.args[0]
        code = fields.get("C") if isinstance(fields, dict) else None
    return code if isinstance(code, str) else None


def aws_code(error: BaseException) -> str | None:
    """The error code of a botocore ClientError (or anything with its `response`)."""
    response: Any = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    return response.get("Error", {}).get("Code")


def _aws_status(error: BaseException) -> int | None:
    response: Any = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _is_user_error(error: BaseException) -> bool:
    # Imported when first needed, so tasks.common.errors stays free to import anything.
    from tasks.common.errors import UserError

    return isinstance(error, UserError) or any(
        cls.__name__ == "UserError" for cls in type(error).__mro__
    )


def _code_in(codes: frozenset[str]) -> Matcher:
    return lambda error: aws_code(error) in codes


def _message(driver: str | None, fragments: tuple[str, ...]) -> Matcher:
    """Matches an exception of the driver (any when None) whose message holds a fragment."""

    def matches(error: BaseException) -> bool:
        if driver is not None and driver_of(error) != driver:
            return False
        text = str(error).lower()
        return any(fragment in text for fragment in fragments)

    return matches


def _sqlstate_in(prefixes: tuple[str, ...]) -> Matcher:
    return lambda error: (sqlstate(error) or "~").startswith(prefixes)


def _authentication_failed(error: BaseException) -> bool:
    return _sqlstate_in(("28",))(error) or (
        driver_of(error) in {"psycopg2", "psycopg", "redshift_connector"}
        and _message(None, AUTH_MESSAGES)(error)
    )


def _aws_unavailable(error: BaseException) -> bool:
    return aws_code(error) in AWS_UNAVAILABLE_CODES or _aws_status(error) in AWS_UNAVAILABLE_STATUS


def _socket_failure(error: BaseException) -> bool:
    return isinstance(error, ConnectionError | TimeoutError)


def _aws_unreachable(error: BaseException) -> bool:
    from botocore import exceptions as boto

    # A certificate that does not verify stays unverified: SSLError is not retried.
    dropped = boto.ConnectionError | boto.ConnectionClosedError | boto.ReadTimeoutError
    cut_short = boto.IncompleteReadError | boto.ResponseStreamingError
    return isinstance(error, dropped | cut_short) and not isinstance(error, boto.SSLError)


def _postgres_connection_lost(error: BaseException) -> bool:
    return driver_of(error) in {"psycopg2", "psycopg"} and _message(None, POSTGRES_CONNECTION_LOST)(
        error
    )


def _serialization_conflict(error: BaseException) -> bool:
    fields = error.args[0] if driver_of(error) == "redshift_connector" and error.args else None
    redshift_code = fields.get("M") if isinstance(fields, dict) else None
    return (
        redshift_code == REDSHIFT_SERIALIZABLE_ERROR
        or sqlstate(error) == SERIALIZATION_FAILURE_SQLSTATE
        or _message(None, SERIALIZABLE_MESSAGES)(error)
    )


def _connection_invalidated(error: BaseException) -> bool:
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


RULES: tuple[Rule, ...] = (
    Rule("a user's mistake", False, _is_user_error),
    Rule("credentials refused", False, _authentication_failed),
    Rule("not a DuckDB file", False, _message("duckdb", ("not a valid duckdb database file",))),
    Rule("AWS throttling", True, _code_in(AWS_THROTTLING_CODES)),
    Rule("AWS briefly unavailable", True, _aws_unavailable),
    Rule("cluster not available yet", True, _code_in(CLUSTER_NOT_READY_CODES)),
    Rule(
        "DuckDB file locked by another process",
        True,
        _message("duckdb", ("could not set lock on file",)),
    ),
    Rule("connection refused or dropped", True, _socket_failure),
    Rule("AWS endpoint unreachable", True, _aws_unreachable),
    Rule(
        "Redshift connection lost",
        True,
        _message("redshift_connector", REDSHIFT_CONNECTION_LOST),
    ),
    Rule("PostgreSQL connection lost", True, _postgres_connection_lost),
    Rule("server dropped or refused the connection", True, _sqlstate_in(CONNECTION_SQLSTATES)),
    Rule("connection invalidated", True, _connection_invalidated),
    Rule("serializable isolation conflict", True, _serialization_conflict),
)


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes: `__cause__`, sqlalchemy's `orig`, exceptions in `args`."""
    pending, seen = [error], set()
    while pending and len(seen) < MAX_CHAIN:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        causes = [link.__cause__, getattr(link, "orig", None), *link.args]
        pending += [c for c in causes if isinstance(c, BaseException)]


def classify(error: BaseException) -> Rule | None:
    """The first rule any link of the failure's chain matches; None when no rule does."""
    links = list(error_chain(error))
    return next((rule for rule in RULES for link in links if rule.matches(link)), None)


def is_transient(error: BaseException) -> bool:
    """True for failures a retry may cure (see the table in this module's docstring)."""
    rule = classify(error)
    return rule is not None and rule.retry


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry only when the failure is transient, saying why."""
    try:
        state.result()
    except Exception as error:
        rule = classify(error)
        if rule is not None:
            verdict = "retrying" if rule.retry else "not retried"
            run_logger().info("%s: %s (%s)", verdict, rule.reason, type(error).__name__)
        return rule is not None and rule.retry
    return False


DELAY_SCALE_VARIABLE = "SPARKIFY_RETRY_DELAY_SCALE"
TRANSIENT_RETRY_DELAYS = (2.0, 10.0, 30.0)


def scaled_delays(delays: Sequence[float]) -> list[float]:
    """The retry delays times SPARKIFY_RETRY_DELAY_SCALE (a factor >= 0, default 1): a test
    suite or an impatient operator can shorten every wait between tries without removing one."""
    text = os.environ.get(DELAY_SCALE_VARIABLE, "").strip()
    try:
        scale = float(text) if text else 1.0
    except ValueError:
        scale = -1.0
    if not 0 <= scale < float("inf"):
        logging.getLogger("prefect.sparkify").warning(
            "%s=%r is not a factor >= 0: the retry delays stay as they are",
            DELAY_SCALE_VARIABLE,
            text,
        )
        scale = 1.0
    return [delay * scale for delay in delays]


# Task options for work that may meet a transient failure: three tries more, with backoff and
# jitter, only when a retry can succeed.
RETRY_TRANSIENT: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": scaled_delays(TRANSIENT_RETRY_DELAYS),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}
