"""What a Redshift COPY rejected: read from SYS_LOAD_ERROR_DETAIL (provisioned clusters and
Serverless) or STL_LOAD_ERRORS (provisioned only), for the committed COPY and the failed one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, column, func, select, table
from sqlalchemy.sql import Executable

from tasks.warehouse.protocol import MAX_RAW_LINE, Reject

LOAD_ERROR_VIEWS = {
    # view: (file, line, column, reason, raw line or None); SYS_ works on provisioned clusters
    # and Serverless, STL_ only on provisioned clusters.
    "sys_load_error_detail": ("file_name", "line_number", "column_name", "error_message", None),
    "stl_load_errors": ("filename", "line_number", "colname", "err_reason", "raw_line"),
}
# The query id and session columns of each view.
LOAD_ERROR_IDS = {
    "sys_load_error_detail": ("query_id", "session_id"),
    "stl_load_errors": ("query", "session"),
}


def load_errors_query(view: str, copy_id: int, *, after: bool = False) -> Any:
    """The rejected records of one COPY, from Redshift's load-error log: the COPY with this
    query id, or with `after`, this session's COPYs whose query id is greater (query ids grow)."""
    file_col, line_col, column_col, reason_col, raw_col = LOAD_ERROR_VIEWS[view]
    id_col, session_col = LOAD_ERROR_IDS[view]
    names = [file_col, line_col, column_col, reason_col] + ([raw_col] if raw_col else [])
    log = table(view, *(column(n) for n in [id_col, session_col, *names]))
    which = (
        and_(log.c[session_col] == func.pg_backend_pid(), log.c[id_col] > copy_id)
        if after
        else log.c[id_col] == copy_id
    )
    return (
        select(*(func.trim(log.c[n]).label(n) if n != line_col else log.c[n] for n in names))
        .where(which)
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


def last_copy_id(fetch: Callable[[Executable], list[dict[str, Any]]]) -> int:
    """The query id of the session's last COPY (-1 before any)."""
    return int(next(iter(fetch(select(func.pg_last_copy_id()))[0].values())))


def copy_errors(fetch: Callable[[Executable], list[dict[str, Any]]], view: str) -> list[Reject]:
    """The records the session's last, committed-so-far COPY rejected (`fetch`: a query's rows)."""
    return parse_load_errors(view, fetch(load_errors_query(view, last_copy_id(fetch))))


def failed_copy_errors(
    fetch: Callable[[Executable], list[dict[str, Any]]], view: str, before: int
) -> list[Reject]:
    """The records a failed COPY rejected. Its transaction was rolled back, and a rolled-back
    COPY does not update pg_last_copy_id(), which may still name the COPY before it: the errors
    are those this session logged after `before`, the last COPY id seen before the failed one."""
    return parse_load_errors(view, fetch(load_errors_query(view, before, after=True)))


def fetch_sqlalchemy(conn: Connection) -> Callable[[Executable], list[dict[str, Any]]]:
    """Rows of a query run in the connection's transaction."""
    return lambda query: [dict(row._mapping) for row in conn.execute(query)]


def fetch_dbapi(conn: Connection) -> Callable[[Executable], list[dict[str, Any]]]:
    """Rows of a query run straight on the DB-API connection (after SQLAlchemy's transaction
    has ended); values are compiled in, as the query's only values are the view's ids."""

    def fetch(query: Executable) -> list[dict[str, Any]]:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(str(compiled))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    return fetch
