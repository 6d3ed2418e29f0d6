"""What a Redshift COPY rejected: read from SYS_LOAD_ERROR_DETAIL (provisioned clusters and
Serverless) or STL_LOAD_ERRORS (provisioned only), for the committed COPY and the failed one.

A COPY's errors are told from others by session, time and file, never by query id: SYS views
record query ids differently from STL's, and pg_last_copy_id() names the COPY in STL's. They
are this session's errors logged since the server's clock read just before the COPY (GETDATE(),
the start of that statement, in UTC as the logs' start times), of the files of its manifest.
The views keep a file's name in a CHAR(256): a longer URI is logged cut short, and is mapped
back to the manifest's full URI."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    TIMESTAMP,
    Connection,
    DateTime,
    Select,
    String,
    and_,
    cast,
    column,
    func,
    literal,
    select,
    table,
)
from sqlalchemy.sql import Executable

from tasks.warehouse.protocol import MAX_RAW_LINE, Reject

LOAD_ERROR_VIEWS = {
    # view: (file, line, column, reason, raw line or None); SYS_ works on provisioned clusters
    # and Serverless, STL_ only on provisioned clusters.
    "sys_load_error_detail": ("file_name", "line_number", "column_name", "error_message", None),
    "stl_load_errors": ("filename", "line_number", "colname", "err_reason", "raw_line"),
}
# The session (pg_backend_pid()) and start time (UTC) columns of each view.
LOAD_ERROR_KEYS = {
    "sys_load_error_detail": ("session_id", "start_time"),
    "stl_load_errors": ("session", "starttime"),
}
# Bytes of a file's name the views keep (their file column is a CHAR(256)).
LOGGED_NAME_BYTES = 256
# The server's clock as text: ISO 8601, read the same whatever the session's DATESTYLE.
CLOCK_FORMAT = "YYYY-MM-DD HH24:MI:SS.US"

Fetch = Callable[[Executable], list[dict[str, Any]]]


def load_errors_query(view: str, since: str) -> Select[Any]:
    """The rejected records this session's COPYs logged since `since` (the server's clock, as
    text of CLOCK_FORMAT)."""
    file_col, line_col, column_col, reason_col, raw_col = LOAD_ERROR_VIEWS[view]
    session_col, start_col = LOAD_ERROR_KEYS[view]
    names = [file_col, line_col, column_col, reason_col] + ([raw_col] if raw_col else [])
    log = table(view, *(column(n) for n in [session_col, start_col, *names]))
    return (
        select(*(func.trim(log.c[n]).label(n) if n != line_col else log.c[n] for n in names))
        .where(
            and_(
                log.c[session_col] == func.pg_backend_pid(),
                log.c[start_col] >= cast(literal(since, String()), DateTime),
            )
        )
        .order_by(log.c[file_col], log.c[line_col])
    )


def parse_load_errors(view: str, rows: list[Any]) -> list[Reject]:
    """Load-error rows as rejects: file, line, and a reason naming the column."""
    file_col, line_col, column_col, reason_col, raw_col = LOAD_ERROR_VIEWS[view]
    rejects = []
    for row in rows:
        values = row._mapping if hasattr(row, "_mapping") else row
        reason = str(values[reason_col]).strip()
        col = (values[column_col] or "").strip()
        raw = values[raw_col] if raw_col else None
        rejects.append(
            Reject(
                str(values[file_col]).strip(),
                int(values[line_col]),
                f"{col}: {reason}" if col else reason,
                raw.strip()[:MAX_RAW_LINE] if raw else None,
            )
        )
    return rejects


# Where the lines of combined objects came from (song_bundles.py beside this module): an
# object's URI → the (file, line number) of each of its lines, line 1 first.
Origins = Mapping[str, Sequence[tuple[str, int]]]


def traced_to_origins(rejects: list[Reject], origins: Origins) -> list[Reject]:
    """Rejects as the run's own files name them: a reject of line n of a combined object is a
    reject of the file and line that line came from; any other reject is as COPY logged it.
    In file and line order, as the load-error query gives them."""
    traced = []
    for reject in rejects:
        lines = origins.get(reject.source_file, ())
        if 1 <= reject.line_number <= len(lines):
            file, line = lines[reject.line_number - 1]
            reject = replace(reject, source_file=file, line_number=line)
        traced.append(reject)
    return sorted(traced, key=lambda r: (r.source_file, r.line_number)) if origins else traced


class LoadFailed(Exception):
    """A COPY failed; carries the records Redshift logged as rejected."""

    def __init__(self, table_name: str, rejects: list[Reject], cause: Exception) -> None:
        shown = "; ".join(r.describe() for r in rejects[:10])
        super().__init__(
            f"COPY into {table_name} failed with {len(rejects)} rejected records"
            + (f" ({shown})" if shown else f": {cause}")
        )
        self.rejects = rejects


def logged_name(uri: str) -> str:
    """A file's name as the load-error views log it: its first 256 bytes (whole characters),
    trailing blanks trimmed as the query trims the CHAR column."""
    return uri.encode()[:LOGGED_NAME_BYTES].decode("utf-8", "ignore").rstrip(" ")


def named_as_logged(files: Sequence[str]) -> dict[str, str]:
    """The manifest's files by their logged names; a name two files share (URIs alike in their
    first 256 bytes, which song_bundles.apart_as_logged keeps out of one COPY) maps to itself,
    as no file can be told from it."""
    by_name: dict[str, set[str]] = {}
    for uri in files:
        by_name.setdefault(logged_name(uri), set()).add(uri)
    return {name: uris.pop() if len(uris) == 1 else name for name, uris in by_name.items()}


def copy_started(fetch: Fetch) -> str:
    """The server's clock in UTC, read just before a COPY (GETDATE(): that statement's start):
    the COPY's errors are those logged since. GETDATE() is in the session's time zone and the
    logs' start times in UTC, so it is converted; and it is read as text of CLOCK_FORMAT, which
    any DATESTYLE reads back, not as a timestamp, which a driver parses in the DATESTYLE."""
    local = cast(func.getdate(), TIMESTAMP(timezone=True))  # the session's time zone's
    clock = select(func.to_char(func.timezone("UTC", local), CLOCK_FORMAT))
    return str(next(iter(fetch(clock)[0].values())))


def copy_errors(fetch: Fetch, view: str, since: str, files: Sequence[str]) -> list[Reject]:
    """The records a COPY of these files (its manifest's) rejected: this session's load errors
    logged since `since`, of these files, each under its file's full URI (`fetch`: a query's
    rows). Valid for a committed COPY and a failed one alike (logged errors survive a rollback)."""
    names = named_as_logged(files)
    return [
        replace(r, source_file=names[r.source_file])
        for r in parse_load_errors(view, fetch(load_errors_query(view, since)))
        if r.source_file in names
    ]


def fetch_sqlalchemy(conn: Connection) -> Fetch:
    """Rows of a query run in the connection's transaction."""
    return lambda query: [dict(row._mapping) for row in conn.execute(query)]


def fetch_dbapi(conn: Connection) -> Fetch:
    """Rows of a query run straight on the DB-API connection (after SQLAlchemy's transaction
    has ended); values are compiled in, as the query's only value is a server timestamp."""

    def fetch(query: Executable) -> list[dict[str, Any]]:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(str(compiled))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    return fetch
