"""A DB-API module that records every statement and answers like Redshift would, so the
Redshift pipeline can be driven through a real SQLAlchemy engine with the Redshift dialect
without a cluster. Used only by tests; nothing here pretends to run SQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

paramstyle = "format"
# The process id of every fake session.
SESSION_PID = 4321
apilevel = "2.0"
threadsafety = 1


class Warning(Exception):
    pass


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


VERSION = (
    "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017, "
    "Redshift 1.0.77467"
)

Answer = tuple[list[str], list[tuple[Any, ...]]]


@dataclass
class Recorder:
    """The statements a fake connection saw, COMMIT and ROLLBACK included, and canned answers."""

    statements: list[str] = field(default_factory=list)
    answers: list[tuple[str, Callable[[], Answer]]] = field(default_factory=list)
    fail_on: str | None = None

    def answer(self, pattern: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Answer statements matching a regex with these rows (first match wins)."""
        self.answers.append((pattern, lambda: (columns, rows)))

    def respond(self, sql: str) -> Answer:
        normal = " ".join(sql.split()).lower()
        if self.fail_on and re.search(self.fail_on, normal):
            raise ProgrammingError(f"injected failure on: {normal[:60]}")
        for pattern, reply in self.answers:
            if re.search(pattern, normal):
                return reply()
        if normal.startswith("select cast(sum(case when (length("):  # values cut: none
            count = normal.count("sum(case")
            return [f"cut_{n}" for n in range(count)], [(0,) * count]
        if normal.startswith("select to_char(timezone("):  # the server's clock, as a COPY begins
            return ["to_char"], [("2024-01-01 12:00:00.000000",)]
        if normal.startswith("select pg_backend_pid()"):  # the session's, before the run lock
            return ["pg_backend_pid"], [(SESSION_PID,)]
        if "version()" in normal:
            return ["version"], [(VERSION,)]
        if normal.startswith("select current_schema"):
            return ["current_schema"], [("public",)]
        if normal.startswith("show standard_conforming_strings"):
            return ["standard_conforming_strings"], [("on",)]
        if normal.startswith("show transaction isolation level"):
            return ["transaction_isolation"], [("serializable",)]
        checks = re.findall(r"\bas check_\d+\b", normal)
        if normal.startswith("select") and checks:  # the quality checks, one count each
            return [f"check_{n}" for n in range(len(checks))], [(0,) * len(checks)]
        if normal.startswith("select") and "count(" in normal:
            return ["count"], [(0,)]
        if normal.startswith("select"):
            return ["value"], []  # e.g. catalog look-ups: no such table yet
        return [], []

    def executed(self) -> list[str]:
        """Statements sent by the pipeline, whitespace normalised (dialect probes left out)."""
        probes = (
            "select pg_catalog.version",
            "select version",
            "select current_schema",
            "show ",
            "select relname",
            "select c.relname",
            "select n.nspname",
        )
        normal = [" ".join(s.split()) for s in self.statements]
        return [s for s in normal if not s.lower().startswith(probes)]


class Cursor:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []
        self.arraysize = 1

    def execute(self, sql: str, params: Any = None) -> None:
        self.recorder.statements.append(sql)
        columns, rows = self.recorder.respond(sql)
        self.description = [(c, None, None, None, None, None, None) for c in columns] or None
        self._rows = list(rows)
        self.rowcount = len(rows) if columns else 0

    def executemany(self, sql: str, seq: Any) -> None:
        for params in seq:
            self.execute(sql, params)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        count = size or self.arraysize
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        taken, self._rows = self._rows, []
        return taken

    def close(self) -> None:
        pass


class Connection:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.autocommit = False
        # redshift_connector's type map, which the dialect extends on connect.
        self.py_types: dict[type, Any] = {str: "varchar"}

    def cursor(self) -> Cursor:
        return Cursor(self.recorder)

    def commit(self) -> None:
        self.recorder.statements.append("COMMIT")

    def rollback(self) -> None:
        self.recorder.statements.append("ROLLBACK")

    def close(self) -> None:
        pass


RECORDER = Recorder()


def connect(*args: Any, **kwargs: Any) -> Connection:
    """A connection recording into the module's current recorder."""
    return Connection(RECORDER)
