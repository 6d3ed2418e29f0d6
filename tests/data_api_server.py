"""A local Redshift Data API endpoint (boto3's `redshift-data`, protocol awsJson1_1) that runs
each statement on the embedded PostgreSQL stand-in (tests/postgres_redshift.py), COPY emulated
(tests/redshift_copy.py), so that the Data API backend's tests go through boto3's real client:
its serialisation, the backend's polling, paging and session handling.

Shapes, field names and error codes follow botocore's service model (redshift-data 2019-12-20).
Modelled: ExecuteStatement (named :name parameters, string values; sessions by
SessionKeepAliveSeconds and SessionId), BatchExecuteStatement (the SQLs in one transaction, ids
`Id:n` for the sub-statements), DescribeStatement, GetStatementResult (typed fields, paged by a
small number of records), CancelStatement and ListStatements (one page). A statement runs in a
thread of its own: SUBMITTED, PICKED and STARTED come before FINISHED, FAILED or ABORTED. A
session is one PostgreSQL connection in autocommit, so the client's BEGIN, COMMIT and ROLLBACK
drive the transaction; it runs one statement at a time and ends after its keep-alive idle. The
documented size quotas (a statement's SQL, a result) answer with ValidationException. A COPY's
RedshiftQueryId is pg_last_copy_id(), as the load-error logs know it; other statements count
from 1 on the endpoint.

Chosen where the documentation is silent (the codes are the model's, the wording is ours): a
busy or ended session answers ValidationException; GetStatementResult without a result answers
ResourceNotFoundException; a failed statement's Error is `ERROR: ` and PostgreSQL's message.

Not modelled: authentication and the target (ClusterIdentifier, WorkgroupName, SecretArn, DbUser
are checked for presence, not resolved; every statement runs in the one database of
postgres_url whatever Database says), WaitTimeSeconds, ClientToken, ResultFormat CSV and
GetStatementResultV2, WithEvent, the 64 KB row limit, the number of active sessions and
statements (a test injects those errors: DataApiControls.fail_next), and ListStatements' paging.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import psycopg2
import psycopg2.extensions
from botocore.config import Config
from prefect_aws import AwsCredentials
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.postgres_redshift import REFUSED_IN_TRANSACTION
from tests.redshift_copy import emulate_copy

# The Data API's documented quotas: a statement's SQL text and a result fetched through
# GetStatementResult (counted here as the JSON of its records).
SQL_LIMIT_BYTES = 100 * 1024
RESULT_LIMIT_BYTES = 100 * 1024 * 1024
MAX_BATCH_SQLS = 40
MAX_KEEP_ALIVE_SECONDS = 24 * 60 * 60
ACTIVE = ("SUBMITTED", "PICKED", "STARTED")
TARGET = ("ClusterIdentifier", "Database", "DbUser", "SecretArn", "WorkgroupName")
# Error codes a test can inject, with the message each answers.
INJECTED = {
    "ThrottlingException": "Rate exceeded",
    "ActiveStatementsExceededException": "Active statements exceeded the allowed quota.",
    "ActiveSessionsExceededException": "Active sessions exceeded the allowed quota.",
    "InternalServerException": "Internal server error.",
}
# Types the Data API returns as text, kept as PostgreSQL writes them (not as Python objects).
TEXT_TYPES = psycopg2.extensions.new_type(
    (17, 114, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 3802),
    "DATA_API_TEXT",
    lambda value, _cursor: value,
)
TYPE_NAMES = {16: "bool", 20: "int8", 21: "int2", 23: "int4", 25: "text", 700: "float4"}
TYPE_NAMES |= {701: "float8", 1042: "bpchar", 1043: "varchar", 1082: "date", 1114: "timestamp"}
TYPE_NAMES |= {1184: "timestamptz", 1700: "numeric"}
SIGNED = {"int2", "int4", "int8", "float4", "float8", "numeric"}
_SQL_PIECE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|::|:(\w+)|%", re.S)


class DataApiError(Exception):
    """An error answer of the Data API: its code (`__type`), message and modelled members."""

    def __init__(self, code: str, message: str, **members: str) -> None:
        super().__init__(message)
        self.code, self.message, self.members = code, message, members


@dataclass
class DataApiControls:
    """What a test sets on a local endpoint (read on every call) and sees of it (`calls`)."""

    page_size: int = 3
    statement_delay: float = 0.0
    sql_limit_bytes: int = SQL_LIMIT_BYTES
    result_limit_bytes: int = RESULT_LIMIT_BYTES
    calls: list[str] = field(default_factory=list)
    _faults: list[tuple[str, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(
        self, count: int, error: str = "ThrottlingException", operation: str | None = None
    ) -> None:
        """Answer the next `count` calls (of `operation`, or of any operation) with `error`."""
        if error not in INJECTED:
            raise ValueError(f"{error} is not one of {sorted(INJECTED)}")
        with self._lock:
            self._faults.extend([(error, operation)] * count)

    def take_call(self, operation: str) -> str | None:
        """Note a call; the injected error it answers with, if one is due."""
        with self._lock:
            self.calls.append(operation)
            for index, (error, only) in enumerate(self._faults):
                if only in (None, operation):
                    del self._faults[index]
                    return error
        return None


@dataclass
class Session:
    """One PostgreSQL connection in autocommit; `id` None for a statement without a session."""

    id: str | None
    conn: Connection
    pid: int
    target: dict[str, str]
    keep_alive: int = 0
    busy: bool = False
    closed: bool = False
    last_used: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        """Close the connection; PostgreSQL rolls back what it left open."""
        self.closed = True
        with contextlib.suppress(Exception):
            self.conn.close()


@dataclass
class Statement:
    """One statement (or batch, with sub-statements) and what became of it."""

    id: str
    sqls: list[str]
    request: dict[str, Any]
    session: Session
    status: str = "SUBMITTED"
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    duration_ns: int = 0
    query_id: int = 0
    has_result_set: bool = False
    result_rows: int = -1
    result_size: int = 0
    records: list[list[dict[str, Any]]] = field(default_factory=list)
    columns: list[dict[str, Any]] = field(default_factory=list)
    subs: list[Statement] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    # A batch's statement (not one the caller sent itself, whose end ends the session's work).
    in_batch: bool = False
    started: float = field(default_factory=time.monotonic)

    def set(self, status: str, error: str | None = None) -> None:
        """Move to a status (after the fields it reports are set). A statement the caller sent
        that ends has its duration set and its session freed first, before anyone can see that
        it ended: the Data API's session is AVAILABLE again once its statement has ended, and
        the caller's next statement may come at once."""
        if status not in ACTIVE and not self.in_batch:
            self.duration_ns = int((time.monotonic() - self.started) * 1e9)
            self.session.busy, self.session.last_used = False, time.monotonic()
        self.error, self.updated_at, self.status = error, time.time(), status

    def describe(self) -> dict[str, Any]:
        """The fields DescribeStatement and SubStatementData share."""
        return _present(
            Id=self.id,
            Status=self.status,
            Error=self.error,
            CreatedAt=self.created_at,
            UpdatedAt=self.updated_at,
            Duration=self.duration_ns,
            QueryString="; ".join(self.sqls),
            HasResultSet=self.has_result_set,
            ResultRows=self.result_rows,
            ResultSize=self.result_size,
            RedshiftQueryId=self.query_id,
        )


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def to_pyformat(sql: str, names: set[str]) -> str:
    """Data API SQL with :name parameters as psycopg2's %(name)s (quotes and comments kept)."""

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is not None and name in names:
            return f"%({name})s"
        return match.group(0).replace("%", "%%")

    return _SQL_PIECE.sub(swap, sql)


def field_of(value: Any) -> dict[str, Any]:
    """A value as the Data API's Field union."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, memoryview | bytes):
        return {"stringValue": bytes(value).hex()}
    return {"stringValue": str(value)}


class LocalDataApi:
    """The Data API's state and operations over one PostgreSQL database."""

    def __init__(self, postgres_url: str, s3: Any, controls: DataApiControls) -> None:
        self.engine: Engine = create_engine(postgres_url, poolclass=NullPool)
        self.s3, self.controls = s3, controls
        self.statements: dict[str, Statement] = {}
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
        self.query_ids = itertools.count(1)
        self.url = ""

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one call, or raise DataApiError."""
        injected = self.controls.take_call(operation)
        if injected is not None:
            raise DataApiError(injected, INJECTED[injected])
        handler = getattr(self, f"op_{operation}", None)
        if handler is None:
            raise DataApiError("UnknownOperationException", f"{operation} is not modelled")
        return handler(body)

    # ExecuteStatement, BatchExecuteStatement

    def op_ExecuteStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start one statement; its Id (and SessionId, in a session)."""
        return self._submit(body, [body.get("Sql", "")])

    def op_BatchExecuteStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start the SQLs as one transaction; the batch's Id (its statements are Id:1, Id:2…)."""
        return self._submit(body, body.get("Sqls") or [])

    def _submit(self, body: dict[str, Any], sqls: list[str]) -> dict[str, Any]:
        # The model's bounds botocore does not check on the client.
        if len(sqls) > MAX_BATCH_SQLS:
            raise DataApiError("ValidationException", f"Sqls holds at most {MAX_BATCH_SQLS}")
        if body.get("SessionKeepAliveSeconds", 0) > MAX_KEEP_ALIVE_SECONDS:
            raise DataApiError(
                "ValidationException",
                f"SessionKeepAliveSeconds is at most {MAX_KEEP_ALIVE_SECONDS}",
            )
        for sql in sqls:
            if len(sql.encode()) > self.controls.sql_limit_bytes:
                limit = self.controls.sql_limit_bytes // 1024
                raise DataApiError(
                    "ValidationException", f"Cannot process query string larger than {limit}kB"
                )
        if body.get("ResultFormat", "JSON") != "JSON":
            raise DataApiError("ValidationException", "only ResultFormat JSON is modelled")
        session = self._session_for(body)
        statement = Statement(str(uuid.uuid4()), sqls, body, session)
        if "Sqls" in body:
            statement.subs = [
                Statement(f"{statement.id}:{n}", [sql], body, session, in_batch=True)
                for n, sql in enumerate(sqls, start=1)
            ]
        with self.lock:
            self.statements[statement.id] = statement
            self.statements.update((sub.id, sub) for sub in statement.subs)
        threading.Thread(target=self._run, args=(statement,), daemon=True).start()
        return _present(
            Id=statement.id, CreatedAt=statement.created_at, SessionId=session.id, **session.target
        )

    def _session_for(self, body: dict[str, Any]) -> Session:
        """The session named, a new one, or a connection of the statement's own."""
        session_id = body.get("SessionId")
        if session_id is None:
            if not (body.get("ClusterIdentifier") or body.get("WorkgroupName")):
                raise DataApiError(
                    "ValidationException",
                    "Either ClusterIdentifier or WorkgroupName is required without a SessionId",
                )
            if not body.get("Database"):
                raise DataApiError("ValidationException", "Database is required")
            keep_alive = body.get("SessionKeepAliveSeconds") or 0
            new_id = str(uuid.uuid4()) if keep_alive > 0 else None
            conn = self._connect()
            pid = conn.connection.dbapi_connection.info.backend_pid
            target = {k: body[k] for k in TARGET if k in body}
            session = Session(new_id, conn, pid, target, keep_alive, busy=True)
            if new_id is not None:
                with self.lock:
                    self.sessions[new_id] = session
            return session
        with self.lock:
            self._end_idle_sessions()
            session = self.sessions.get(session_id)
            if session is None or session.closed:
                raise DataApiError("ValidationException", f"Session {session_id} is not available")
            if session.busy:
                raise DataApiError(
                    "ValidationException",
                    f"Session {session_id} is busy running another statement",
                )
            session.busy = True
            return session

    def _connect(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with conn.connection.dbapi_connection.cursor() as cursor:
            cursor.execute("select set_config('timezone', 'UTC', false)")
        return conn

    def _end_idle_sessions(self) -> None:
        now = time.monotonic()
        for session in self.sessions.values():
            idle = now - session.last_used
            if not session.busy and not session.closed and idle > session.keep_alive:
                session.close()

    def reap(self, stop: threading.Event) -> None:
        """End the sessions idle for longer than their keep-alive, until stopped."""
        while not stop.wait(0.2):
            with self.lock:
                self._end_idle_sessions()

    # Running a statement

    def _run(self, statement: Statement) -> None:
        session, statement.started = statement.session, time.monotonic()
        try:
            statement.set("PICKED")
            statement.set("STARTED")
            if statement.cancel.wait(self.controls.statement_delay):
                statement.set("ABORTED")
                return
            if statement.subs:
                self._run_batch(statement)
            else:
                self._run_one(statement, statement.sqls[0])
        except Exception as error:  # the connection itself failed
            statement.set("FAILED", f"ERROR: {error}")
        finally:
            if session.id is None:
                session.close()

    def _run_batch(self, batch: Statement) -> None:
        dbapi = batch.session.conn.connection.dbapi_connection
        own_transaction = _idle(dbapi)
        if own_transaction:
            _execute(dbapi, "begin")
        for index, sub in enumerate(batch.subs):
            sub.set("STARTED")
            self._run_one(sub, sub.sqls[0])
            if sub.status != "FINISHED":
                for later in batch.subs[index + 1 :]:
                    later.set("ABORTED")
                if own_transaction:
                    _execute(dbapi, "rollback")
                batch.set(sub.status, sub.error)
                return
        if own_transaction:
            _execute(dbapi, "commit")
        batch.has_result_set = any(sub.has_result_set for sub in batch.subs)
        batch.query_id = batch.subs[-1].query_id
        batch.set("FINISHED")

    def _run_one(self, statement: Statement, sql: str) -> None:
        conn = statement.session.conn
        dbapi = conn.connection.dbapi_connection
        statement.query_id = next(self.query_ids)
        watcher = threading.Thread(target=_cancel_on, args=(statement, dbapi), daemon=True)
        watcher.start()
        try:
            if re.match(r"\s*copy\b", sql, re.IGNORECASE):
                self._copy(conn, sql, statement)
            else:
                self._query(dbapi, sql, statement)
        except (DBAPIError, psycopg2.Error) as error:
            cause = error.orig if isinstance(error, DBAPIError) else error
            if isinstance(cause, psycopg2.extensions.QueryCanceledError):
                statement.set("ABORTED")
            else:
                statement.set("FAILED", _error_text(cause))
        except Exception as error:  # the emulated COPY refusing what it does not model
            statement.set("FAILED", f"ERROR: {error}")
        else:
            statement.set("FINISHED")
        finally:
            statement.cancel.set()  # ends the watcher
            watcher.join()

    def _query(self, dbapi: Any, sql: str, statement: Statement) -> None:
        given = statement.request.get("Parameters")
        parameters = {p["name"]: p["value"] for p in given} if given else None
        refused = REFUSED_IN_TRANSACTION.match(sql)
        if refused and not _idle(dbapi):  # as Redshift refuses it there
            says = f"{refused.group(1).split()[0].upper()} cannot run inside a transaction block"
            sql, parameters = "select redshift_refuses(%(says)s)", {"says": says}
        elif parameters is not None:
            sql = to_pyformat(sql, set(parameters))
        with dbapi.cursor() as cursor:
            psycopg2.extensions.register_type(TEXT_TYPES, cursor)
            cursor.execute(sql, parameters)
            statement.result_rows = cursor.rowcount
            if cursor.description is None:
                return
            statement.records = [[field_of(v) for v in row] for row in cursor.fetchall()]
            statement.columns = self._columns(dbapi, cursor.description)
        statement.result_rows = len(statement.records)
        statement.result_size = len(json.dumps(statement.records).encode())
        statement.has_result_set = True

    def _copy(self, conn: Connection, sql: str, statement: Statement) -> None:
        """COPY through the emulation, in a transaction of its own outside the client's."""
        dbapi = conn.connection.dbapi_connection
        own_transaction = _idle(dbapi)
        if own_transaction:
            _execute(dbapi, "begin")
        try:
            emulate_copy(conn, sql, self.s3)
            count = conn.exec_driver_sql("select pg_last_copy_id(), pg_last_copy_count()").one()
        except BaseException:
            if own_transaction:
                _execute(dbapi, "rollback")
            raise
        finally:
            conn.commit()  # SQLAlchemy's own bookkeeping: in autocommit it sends nothing
        if own_transaction:
            _execute(dbapi, "commit")
        statement.query_id, statement.result_rows = count

    def _columns(self, dbapi: Any, description: Any) -> list[dict[str, Any]]:
        unknown = [c.type_code for c in description if c.type_code not in TYPE_NAMES]
        if unknown:
            with dbapi.cursor() as cursor:
                cursor.execute("select oid, typname from pg_type where oid = any(%s)", (unknown,))
                TYPE_NAMES.update(cursor.fetchall())
        columns = []
        for c in description:
            type_name = TYPE_NAMES.get(c.type_code, "unknown")
            columns.append(
                {
                    "name": c.name,
                    "label": c.name,
                    "typeName": type_name,
                    "nullable": 1,
                    "isSigned": type_name in SIGNED,
                    "isCaseSensitive": type_name in ("text", "varchar", "bpchar"),
                    "isCurrency": False,
                    "length": max(c.internal_size or 0, 0),
                    "precision": c.precision or 0,
                    "scale": c.scale or 0,
                    "schemaName": "",
                    "tableName": "",
                }
            )
        return columns

    # DescribeStatement, GetStatementResult, CancelStatement, ListStatements

    def _statement(self, statement_id: str) -> Statement:
        with self.lock:
            statement = self.statements.get(statement_id)
        if statement is None:
            raise DataApiError(
                "ResourceNotFoundException", "Query does not exist.", ResourceId=statement_id
            )
        return statement

    def op_DescribeStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        """What became of a statement (a batch's with its SubStatements)."""
        statement = self._statement(body["Id"])
        request = statement.request
        answer = statement.describe() | statement.session.target
        answer |= _present(
            SessionId=statement.session.id,
            RedshiftPid=statement.session.pid,
            QueryParameters=request.get("Parameters") or None,
            ResultFormat="JSON",
        )
        if statement.subs:
            answer["SubStatements"] = [sub.describe() for sub in statement.subs]
        return answer

    def op_GetStatementResult(self, body: dict[str, Any]) -> dict[str, Any]:
        """One page of a finished statement's records (controls.page_size of them)."""
        statement = self._statement(body["Id"])
        if statement.status != "FINISHED" or not statement.has_result_set or statement.subs:
            raise DataApiError(
                "ResourceNotFoundException",
                "Query does not have result. Please check query status with DescribeStatement.",
                ResourceId=statement.id,
            )
        if statement.result_size > self.controls.result_limit_bytes:
            limit = self.controls.result_limit_bytes // (1024 * 1024)
            raise DataApiError(
                "ValidationException",
                f"Database response exceeded size limit of {limit} MB: "
                "fetch fewer rows at a time (LIMIT)",
            )
        start = _offset(body.get("NextToken"), statement.id)
        end = start + self.controls.page_size
        answer = {
            "Records": statement.records[start:end],
            "ColumnMetadata": statement.columns,
            "TotalNumRows": len(statement.records),
        }
        if end < len(statement.records):
            token = f"{statement.id}/{end}".encode()
            answer["NextToken"] = base64.urlsafe_b64encode(token).decode()
        return answer

    def op_CancelStatement(self, body: dict[str, Any]) -> dict[str, Any]:
        """Cancel a statement still running: it ends ABORTED."""
        statement = self._statement(body["Id"])
        if statement.status not in ACTIVE:
            raise DataApiError(
                "ValidationException",
                f"Could not cancel a query that is already in {statement.status} state.",
            )
        for each in (statement, *statement.subs):
            each.cancel.set()
        return {"Status": True}

    def op_ListStatements(self, body: dict[str, Any]) -> dict[str, Any]:
        """The statements, newest first, by Status and StatementName (one page)."""
        with self.lock:
            statements = [s for s in self.statements.values() if ":" not in s.id]
        wanted = body.get("Status", "ALL")
        name = body.get("StatementName")
        chosen = [
            s
            for s in reversed(statements)
            if wanted in ("ALL", s.status) and name in (None, s.request.get("StatementName"))
        ][: body.get("MaxResults", 100)]
        return {
            "Statements": [
                _present(
                    Id=s.id,
                    Status=s.status,
                    CreatedAt=s.created_at,
                    UpdatedAt=s.updated_at,
                    StatementName=s.request.get("StatementName"),
                    IsBatchStatement=bool(s.subs),
                    QueryString=None if s.subs else s.sqls[0],
                    QueryStrings=s.sqls if s.subs else None,
                    SessionId=s.session.id,
                )
                for s in chosen
            ]
        }

    def close(self) -> None:
        """End every session and connection."""
        with self.lock:
            for statement in self.statements.values():
                statement.cancel.set()
            for session in self.sessions.values():
                session.close()
        self.engine.dispose()


def _idle(dbapi: Any) -> bool:
    """Whether the connection is outside any transaction block."""
    return dbapi.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def _execute(dbapi: Any, sql: str) -> None:
    with dbapi.cursor() as cursor:
        cursor.execute(sql)


def _cancel_on(statement: Statement, dbapi: Any) -> None:
    """Cancel the statement's query on the server if CancelStatement asks for it."""
    statement.cancel.wait()
    if statement.status in ACTIVE:
        with contextlib.suppress(psycopg2.Error):
            dbapi.cancel()


def _error_text(error: BaseException) -> str:
    """A database error as the Data API's Error reports it: `ERROR: ` and the message."""
    diag = getattr(error, "diag", None)
    message = diag.message_primary if diag is not None and diag.message_primary else str(error)
    return f"ERROR: {message.strip()}"


def _offset(token: str | None, statement_id: str) -> int:
    if token is None:
        return 0
    try:
        owner, offset = base64.urlsafe_b64decode(token.encode()).decode().rsplit("/", 1)
        if owner == statement_id:
            return int(offset)
    except ValueError:
        pass
    raise DataApiError("ValidationException", "NextToken is not valid for this statement")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer goes out in two writes (headers, then body) on a kept-alive connection: with
    # Nagle's algorithm the body waits for the client's delayed ACK of the headers, some 40 ms
    # per call, where the Data API itself answers at once.
    disable_nagle_algorithm = True
    api: LocalDataApi

    def do_POST(self) -> None:
        """One awsJson1_1 call: X-Amz-Target names the operation, the body is JSON."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        status, answer = 200, {}
        try:
            prefix, _, operation = target.partition(".")
            if prefix != "RedshiftData":
                raise DataApiError("UnknownOperationException", f"unknown target {target!r}")
            answer = self.api.call(operation, json.loads(body or b"{}"))
        except DataApiError as error:
            # botocore reads `message` or `Message`; the modelled member is `Message`.
            status = 500 if error.code == "InternalServerException" else 400
            answer = {"__type": error.code, "message": error.message, "Message": error.message}
            answer |= error.members
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read calls from DataApiControls.calls."""


@contextlib.contextmanager
def serve_data_api(
    postgres_url: str,
    s3_endpoint: str,
    credentials: AwsCredentials,
    controls: DataApiControls | None = None,
) -> Iterator[LocalDataApi]:
    """A local Data API on 127.0.0.1 (a free port) over the database; its state and `url`."""
    s3 = credentials.get_boto3_session().client("s3", endpoint_url=s3_endpoint)
    api = LocalDataApi(postgres_url, s3, controls or DataApiControls())
    handler = type("DataApiHandler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=api.reap, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield api
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        api.close()


@contextlib.contextmanager
def data_api_endpoint(
    postgres_url: str,
    s3_endpoint: str,
    credentials: AwsCredentials,
    controls: DataApiControls | None = None,
) -> Iterator[str]:
    """A local Data API endpoint over the database, as its URL (endpoint_url for boto3)."""
    with serve_data_api(postgres_url, s3_endpoint, credentials, controls) as api:
        yield api.url


def data_api_client(url: str, retries: int = 0) -> Any:
    """boto3's real redshift-data client on a local endpoint (botocore's own retries off by
    default, so an injected ThrottlingException reaches the caller)."""
    return boto3.client(
        "redshift-data",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}),
    )
