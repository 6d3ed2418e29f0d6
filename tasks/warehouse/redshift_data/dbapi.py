"""A DB-API 2.0 driver over the Redshift Data API (boto3's `redshift-data` client): what
SQLAlchemy's Redshift dialect needs to run the project's SQL, unchanged, with no database
driver and no open port.

A connection is one Data API session: its first statement names the cluster or workgroup and
keeps the session alive (SessionKeepAliveSeconds), every later one runs in it (SessionId), so
temporary tables, locks and the transaction carry from one statement to the next. The
transaction is explicit: BEGIN goes before the first statement of a transaction, COMMIT with
commit(), ROLLBACK with rollback(); with `autocommit` each statement commits alone. A statement
that fails raises ProgrammingError with Redshift's message (OperationalError when it was
cancelled or the Data API refused the call), and is never sent again by the driver.
"""

from __future__ import annotations

import re
import time as clock
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from tasks.warehouse.redshift_data.calls import (
    Polling,
    Sleep,
    call,
    error_code,
    error_message,
    result_pages,
    wait_for,
)
from tasks.warehouse.redshift_data.values import UnsupportedValue, bind, description, row_values

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not a connection (a session runs one statement)
paramstyle = "named"

# The Data API's limits: SQL text of one statement, and the result a statement may return.
MAX_SQL_BYTES = 100 * 1024
MAX_RESULT_BYTES = 100 * 2**20
DEFAULT_KEEP_ALIVE_SECONDS = 3600
# Statements that end or begin a transaction, kept in step with the connection's own state.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(?P<verb>begin|start\s+transaction|commit|end|rollback|abort)\b[\s\w]*;?\s*$",
    re.IGNORECASE,
)


class Warning(Exception):
    """PEP 249's warning."""


class Error(Exception):
    """PEP 249's base of the driver's errors."""


class InterfaceError(Error):
    """The driver was used wrongly (a closed connection or cursor)."""


class DatabaseError(Error):
    """An error of the database or the Data API."""


class DataError(DatabaseError):
    """A value could not be processed."""


class OperationalError(DatabaseError):
    """The Data API refused a call, or the statement was cancelled."""


class IntegrityError(DatabaseError):
    """A constraint was broken."""


class InternalError(DatabaseError):
    """The database's internal error."""


class ProgrammingError(DatabaseError):
    """The SQL failed: Redshift's message."""


class NotSupportedError(DatabaseError):
    """What the Data API cannot do (a parameter of an unsupported type)."""


STRING, BINARY, NUMBER, DATETIME, ROWID = "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID"


def Binary(value: bytes) -> bytes:
    """PEP 249's binary constructor."""
    return bytes(value)


def connect(
    client: Any,
    target: Mapping[str, str],
    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS,
    polling: Polling | None = None,
    sleep: Sleep = clock.sleep,
) -> Connection:
    """A connection over the Data API client: `target` names the database (Database, and
    ClusterIdentifier with DbUser or SecretArn, or WorkgroupName) for the session's first
    statement; the session is opened by that statement."""
    return Connection(client, dict(target), keep_alive_seconds, polling or Polling(), sleep)


class Connection:
    """One Data API session, in one transaction at a time."""

    def __init__(
        self,
        client: Any,
        target: dict[str, str],
        keep_alive_seconds: int,
        polling: Polling,
        sleep: Sleep,
    ) -> None:
        self.client, self.target, self.keep_alive = client, target, keep_alive_seconds
        self.polling, self.sleep = polling, sleep
        self.session_id: str | None = None
        self.autocommit = False
        self.in_transaction = False
        self.closed = False

    def cursor(self) -> Cursor:
        """A new cursor of the session."""
        self._check_open()
        return Cursor(self)

    def commit(self) -> None:
        """Commit the transaction, if one is open."""
        self._end_transaction("COMMIT")

    def rollback(self) -> None:
        """Roll the transaction back, if one is open."""
        self._end_transaction("ROLLBACK")

    def close(self) -> None:
        """Roll back an open transaction; the session ends when its keep-alive runs out (a
        session already gone has rolled back by itself)."""
        if self.closed:
            return
        try:
            self.rollback()
        except Error:
            pass
        finally:
            self.closed = True

    def run(self, sql: str, parameters: list[dict[str, str]]) -> dict[str, Any]:
        """Send one statement in the session, after BEGIN where a transaction starts, and wait
        for it: DescribeStatement's answer of the finished statement."""
        self.begin()
        return self._send(sql, parameters)

    def begin(self) -> None:
        """Open a transaction (BEGIN) unless one is open or the connection autocommits."""
        self._check_open()
        if not self.autocommit and not self.in_transaction:
            self._send("BEGIN", [])
            self.in_transaction = True

    def _end_transaction(self, verb: str) -> None:
        self._check_open()
        if self.in_transaction:
            self.in_transaction = False
            self._send(verb, [])

    def _send(self, sql: str, parameters: list[dict[str, str]]) -> dict[str, Any]:
        size = len(sql.encode())
        if size > MAX_SQL_BYTES:
            raise ProgrammingError(
                f"a statement of {size:,} bytes is over the Data API's {MAX_SQL_BYTES // 1024} KB "
                f"limit: send it in smaller batches ({' '.join(sql.split())[:60]}…)"
            )
        request: dict[str, Any] = {"Sql": sql}
        if parameters:
            request["Parameters"] = parameters
        if self.session_id:
            request["SessionId"] = self.session_id
        else:
            request.update(self.target, SessionKeepAliveSeconds=self.keep_alive)
        try:
            started = call(self.client.execute_statement, self.sleep, **request)
            self.session_id = self.session_id or started.get("SessionId")
            answer = wait_for(self.client, started["Id"], sql, self.polling, self.sleep)
        except ClientError as error:
            raise OperationalError(
                f"Data API {error_code(error)}: {error_message(error)}"
            ) from error
        if answer["Status"] == "ABORTED":
            raise OperationalError(f"statement cancelled: {' '.join(sql.split())[:60]}…")
        if answer["Status"] == "FAILED":
            raise ProgrammingError(" ".join(str(answer.get("Error", "failed")).split()))
        return answer

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("connection is closed")


class Cursor:
    """A cursor of a Data API session: its last statement's rows, read in whole."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None) -> None:
        """Run one statement (named parameters, `:name`) and read its whole result."""
        if control := _TRANSACTION_CONTROL.match(operation):
            self._transaction_control(control["verb"].lower())
            return
        try:
            sql, bound = bind(operation, parameters)
        except UnsupportedValue as error:
            raise NotSupportedError(str(error)) from error
        except KeyError as error:
            raise ProgrammingError(f"no value for parameter {error.args[0]}") from error
        answer = self.connection.run(sql, bound)
        self.description, self._rows = None, []
        if answer.get("HasResultSet"):
            self._read_result(answer)
        else:
            self.rowcount = int(answer.get("ResultRows", -1))

    def executemany(self, operation: str, seq_of_parameters: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per set of parameters; rowcount is their sum."""
        total = 0
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)
            total += max(self.rowcount, 0)
        self.rowcount = total

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """The next `size` rows (arraysize by default)."""
        count = size or self.arraysize
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row left."""
        taken, self._rows = self._rows, []
        return taken

    def close(self) -> None:
        """Forget the rows left."""
        self._rows = []

    def setinputsizes(self, sizes: Any) -> None:
        """PEP 249: nothing to do."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """PEP 249: nothing to do."""

    def _transaction_control(self, verb: str) -> None:
        if verb.startswith(("begin", "start")):
            self.connection.begin()
        elif verb in ("commit", "end"):
            self.connection.commit()
        else:
            self.connection.rollback()
        self.description, self._rows, self.rowcount = None, [], -1

    def _read_result(self, answer: dict[str, Any]) -> None:
        size = int(answer.get("ResultSize", -1))
        if size > MAX_RESULT_BYTES:
            raise ProgrammingError(
                f"a result of {size / 2**20:,.0f} MB is over the Data API's "
                f"{MAX_RESULT_BYTES // 2**20} MB limit: select fewer rows or columns"
            )
        columns: list[Mapping[str, Any]] = []
        rows: list[tuple[Any, ...]] = []
        try:
            for page in result_pages(self.connection.client, answer["Id"], self.connection.sleep):
                columns = columns or page.get("ColumnMetadata", [])
                rows += [row_values(record, columns) for record in page.get("Records", [])]
        except ClientError as error:
            raise OperationalError(
                f"Data API {error_code(error)}: {error_message(error)}"
            ) from error
        self.description = description(columns)
        self._rows, self.rowcount = rows, len(rows)
