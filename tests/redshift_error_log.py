"""The load-error logs of Redshift's COPY as tests/redshift_copy.py writes them on PostgreSQL:
sys_load_error_detail and stl_load_errors (tests/postgres_redshift.py creates both), each under
query ids of its own space (SYS views log ids other than pg_last_copy_id()'s, STL's are
those), with file names cut to their CHAR(256) and reasons to their width."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, column, create_engine, table
from sqlalchemy.pool import NullPool

# The load-error logs: columns (query, session, start time, file, line, column, code,
# reason), the offset of their query ids from pg_last_copy_id()'s (SYS views log ids of their
# own, STL's are pg_last_copy_id()'s) and the width of their reason column.
ERROR_LOGS = {
    "sys_load_error_detail": (
        *("query_id", "session_id", "start_time", "file_name", "line_number"),
        *("column_name", "error_code", "error_message", 1_000_000, 512),
    ),
    "stl_load_errors": (
        *("query", "session", "starttime", "filename", "line_number"),
        *("colname", "err_code", "err_reason", 0, 100),
    ),
}
# Bytes of a file name the load-error log keeps (its CHAR(256) column).
LOGGED_FILE_NAME = 256


def _logged_name(uri: str) -> str:
    """A file name as the log's CHAR(256) keeps it: its first 256 bytes, whole characters."""
    return uri.encode()[:LOGGED_FILE_NAME].decode("utf-8", "ignore")


def log_errors(conn: Connection, copy: tuple[int, int, Any], rejects: list) -> None:
    """Write rejects to both load-error logs on a connection of its own, committed at once,
    with the COPY's (query id, session id, start time)."""
    if not rejects:
        return
    query_id, session_id, started = copy
    engine = create_engine(conn.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as log_conn:
        for view, (*names, offset, width) in ERROR_LOGS.items():
            copy_values = (query_id + offset, session_id, started)
            rows = [
                dict(zip(names, values, strict=True))
                for values in (
                    (*copy_values, _logged_name(u), n, e.column, e.code, e.message()[:width])
                    for u, n, e in rejects
                )
            ]
            log_conn.execute(table(view, *(column(n) for n in names)).insert(), rows)
    engine.dispose()
