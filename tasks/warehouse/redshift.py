"""Amazon Redshift as the warehouse: a block that hands out engines, and staging by COPY.

Each run writes a manifest naming exactly its files, and the JSONPaths document generated from
the staging table's model, beside the data in S3; COPY loads through the manifest with the
block's IAM role. The rows Redshift rejected are read back from its load-error log and kept in
load_rejects like DuckDB's.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import orjson
from prefect.blocks.core import Block
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr, field_validator
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Table,
    and_,
    column,
    create_engine,
    delete,
    func,
    not_,
    select,
    table,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from sql import model
from sql.model import jsonpaths
from tasks.aws import DEFAULT_REGION, aws_client
from tasks.source.files import Source, is_gzipped
from tasks.source.s3 import S3Source
from tasks.warehouse.base import (
    MAX_RAW_LINE,
    REJECT_SAMPLES,
    Reject,
    StageReport,
    insert_rejects,
    reset_staging,
)
from tasks.warehouse.records import file_rejects

# Redshift's upper limit of COPY's MAXERROR.
MAX_COPY_ERRORS = 100_000
# Manifests and JSONPaths are written beside the data, where the COPY role may read.
CONTROL_PREFIX = "_sparkify"

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


class RedshiftWarehouse(Block):
    """An Amazon Redshift database holding the staging tables and the star schema."""

    _block_type_name = "Sparkify Redshift Warehouse"
    _block_type_slug = "sparkify-redshift-warehouse"
    _description = "Sparkify's production warehouse on Amazon Redshift, loaded by COPY from S3."

    host: str = Field(description="Cluster (or workgroup) endpoint host name.")
    port: int = Field(default=5439, description="Port of the endpoint.")
    database: str = Field(default="dev", description="Database holding Sparkify's tables.")
    user: str = Field(description="Database user the flows connect as.")
    password: SecretStr = Field(description="Password of the database user.")
    iam_role_arn: str = Field(
        description="ARN of the IAM role Redshift assumes to read the source bucket for COPY."
    )
    region: str = Field(default=DEFAULT_REGION, description="AWS region of the source bucket.")
    max_errors: int = Field(
        default=MAX_COPY_ERRORS,
        ge=0,
        le=MAX_COPY_ERRORS,
        description="COPY's MAXERROR: a staging table's COPY fails once it rejects this many "
        "records (so one fewer are tolerated, and kept in load_rejects); at most 100,000, "
        "Redshift's limit and the default, so that good records load as they do on DuckDB.",
    )
    load_errors_view: Literal["sys_load_error_detail", "stl_load_errors"] = Field(
        default="sys_load_error_detail",
        description="Where COPY's rejected records are read: SYS view (provisioned and "
        "serverless) or the STL table of older provisioned clusters.",
    )
    aws_credentials: AwsCredentials | None = Field(
        default=None,
        description="Credentials that write the run's manifests and JSONPaths to S3 "
        "(default: the source's).",
    )

    @field_validator("iam_role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not value.startswith("arn:") or ":role/" not in value:
            raise ValueError(f"not an IAM role ARN: {value!r}")
        return value

    def url(self) -> URL:
        """The SQLAlchemy URL of the database (the password stays inside the URL object)."""
        return URL.create(
            "redshift+redshift_connector",
            username=self.user,
            password=self.password.get_secret_value(),
            host=self.host,
            port=self.port,
            database=self.database,
        )

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on redshift_connector; dropped connections are detected.
        No socket timeout: redshift_connector applies `timeout` to every read for the
        connection's life, which would fail any statement quiet for that long (a big COPY, a
        queued query, a resuming workgroup); TCP keepalives detect a dead peer instead."""
        return create_engine(self.url(), pool_pre_ping=True, connect_args={"tcp_keepalive": True})

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """COPY the event files into staging_events."""
        return stage_by_copy(conn, self._s3(source), model.staging_events, files, at, self)

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """COPY the song files into staging_songs."""
        return stage_by_copy(conn, self._s3(source), model.staging_songs, files, at, self)

    def copy(self, conn: Connection, statement: str) -> None:
        """Run one COPY statement in the connection's transaction."""
        conn.exec_driver_sql(statement)

    def describe(self) -> str:
        """Endpoint and database (never the password)."""
        return f"redshift://{self.user}@{self.host}:{self.port}/{self.database}"

    def _s3(self, source: Source) -> S3Source:
        if not isinstance(source, S3Source):
            raise ValueError(
                f"Redshift loads by COPY from S3: the source must be s3://bucket/prefix or an "
                f"S3Bucket block, not {source.describe()}"
            )
        if self.aws_credentials is not None:
            return replace(source, credentials=self.aws_credentials)
        return source


def redshift_literal(value: str) -> str:
    """A Redshift string literal: backslashes and single quotes doubled, since Redshift treats
    a backslash in a literal as an escape (as its QUOTE_LITERAL function does)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def copy_statement(
    target: Table,
    manifest_uri: str,
    jsonpaths_uri: str,
    warehouse: RedshiftWarehouse,
    *,
    gzip: bool = False,
) -> str:
    """The exact COPY text for a staging table. Redshift refuses bind parameters inside COPY,
    so values are written as literals (`redshift_literal`), the table and columns as quoted
    identifiers of the model. IAM_ROLE is the documented form of role authorisation; STATUPDATE
    OFF needs no table ownership (ON would); MAXERROR is the block's. No TRUNCATECOLUMNS: a
    value longer than its column is a rejected record, as on DuckDB, not a value cut short.
    GZIP says every file of the manifest is gzipped (it applies to all of a COPY's files)."""
    quote = RedshiftDialect_redshift_connector().identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in target.columns)
    return "\n".join(
        [
            f"COPY {quote(target.name)} ({columns})",
            f"FROM {redshift_literal(manifest_uri)}",
            f"IAM_ROLE {redshift_literal(warehouse.iam_role_arn)}",
            f"FORMAT AS JSON {redshift_literal(jsonpaths_uri)}",
            "MANIFEST",
            *(["GZIP"] if gzip else []),
            "TIMEFORMAT 'epochmillisecs'",
            "COMPUPDATE OFF",
            "STATUPDATE OFF",
            f"MAXERROR {int(warehouse.max_errors)}",
            f"REGION {redshift_literal(warehouse.region)}",
        ]
    )


def put_json(source: S3Source, key: str, document: Any) -> str:
    """Write a JSON document (a manifest, JSONPaths) to a key of the source's bucket; its URI."""
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    aws_client(source.credentials, "s3").put_object(
        Bucket=source.bucket, Key=key, Body=body, ContentType="application/json"
    )
    return source.uri(key)


def manifest(files: list[str]) -> dict[str, Any]:
    """A COPY manifest naming exactly these files; a missing one fails the COPY."""
    return {"entries": [{"url": uri, "mandatory": True} for uri in files]}


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


class LoadFailed(Exception):
    """A COPY failed; carries the records Redshift logged as rejected."""

    def __init__(self, table_name: str, rejects: list[Reject], cause: Exception) -> None:
        shown = "; ".join(r.describe() for r in rejects[:10])
        super().__init__(
            f"COPY into {table_name} failed with {len(rejects)} rejected records"
            + (f" ({shown})" if shown else f": {cause}")
        )
        self.rejects = rejects


def _last_copy_id(fetch: Callable[[Executable], list[dict[str, Any]]]) -> int:
    """The query id of the session's last COPY (-1 before any)."""
    return int(next(iter(fetch(select(func.pg_last_copy_id()))[0].values())))


def _copy_errors(fetch: Callable[[Executable], list[dict[str, Any]]], view: str) -> list[Reject]:
    """The records the session's last, committed-so-far COPY rejected (`fetch`: a query's rows)."""
    return parse_load_errors(view, fetch(load_errors_query(view, _last_copy_id(fetch))))


def _failed_copy_errors(
    fetch: Callable[[Executable], list[dict[str, Any]]], view: str, before: int
) -> list[Reject]:
    """The records a failed COPY rejected. Its transaction was rolled back, and a rolled-back
    COPY does not update pg_last_copy_id(), which may still name the COPY before it: the errors
    are those this session logged after `before`, the last COPY id seen before the failed one."""
    return parse_load_errors(view, fetch(load_errors_query(view, before, after=True)))


def _fetch_sqlalchemy(conn: Connection) -> Callable[[Executable], list[dict[str, Any]]]:
    """Rows of a query run in the connection's transaction."""
    return lambda query: [dict(row._mapping) for row in conn.execute(query)]


def _fetch_dbapi(conn: Connection) -> Callable[[Executable], list[dict[str, Any]]]:
    """Rows of a query run straight on the DB-API connection (after SQLAlchemy's transaction
    has ended); values are compiled in, as the query's only values are the view's ids."""

    def fetch(query: Executable) -> list[dict[str, Any]]:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(str(compiled))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    return fetch


def _reject_bad_patterns(
    conn: Connection, target: Table, manifest_uri: str
) -> tuple[int, list[Reject]]:
    """Remove staged rows whose text breaks a column's pattern (a userId that is not digits would
    fail the transform's cast); COPY cannot check this. Recorded per column against the manifest,
    since COPY keeps no file or line for loaded rows. Returns the rows removed and the rejects."""
    removed, rejects = 0, list[Reject]()
    for col in target.columns:
        pattern = col.info.get("pattern")
        if not pattern:
            continue
        bad = and_(col.is_not(None), not_(col.regexp_match(f"^({pattern})$")))
        count = int(conn.execute(select(func.count()).select_from(target).where(bad)).scalar_one())
        if count:
            conn.execute(delete(target).where(bad))
            reason = f"bad value for {col.info['json']}: does not match {pattern} ({count} records)"
            rejects.append(Reject(manifest_uri, 0, reason))
            removed += count
    return removed, rejects


def stage_by_copy(
    conn: Connection,
    source: S3Source,
    target: Table,
    files: list[str],
    at: datetime,
    warehouse: RedshiftWarehouse,
) -> StageReport:
    """Reset a staging table (DELETE: TRUNCATE would commit the transaction), COPY the run's
    files through a manifest, plain files and gzipped ones apart (GZIP holds for all of a COPY's
    files), in the connection's transaction, and keep the rejected records in load_rejects."""
    started = clock.perf_counter()
    reset_staging(conn, target, files)
    # Whole-file problems, as DuckDB's staging finds them: an empty file, or one with the same
    # content as an earlier one (whose records COPY would load twice) is a reject, not loaded.
    rejects = file_rejects(files, source.content_digests(files))
    skipped = {r.source_file for r in rejects}
    loadable = [uri for uri in files if uri not in skipped]
    rows, counted = 0, len(rejects)
    control = source.key(CONTROL_PREFIX)
    if loadable:
        paths_uri = put_json(source, f"{control}/jsonpaths/{target.name}.json", jsonpaths(target))
    manifests = f"{control}/manifests/{at.strftime('%Y%m%dT%H%M%S%f')}/{target.name}"
    for gzip in (False, True):
        group = [uri for uri in loadable if is_gzipped(uri) == gzip]
        if not group:
            continue
        manifest_key = manifests + (".gzip.manifest" if gzip else ".manifest")
        manifest_uri = put_json(source, manifest_key, manifest(group))
        loaded, copy_rejects = _copy_files(conn, target, manifest_uri, paths_uri, warehouse, gzip)
        removed, pattern_rejects = _reject_bad_patterns(conn, target, manifest_uri)
        rows += loaded - removed
        counted += len(copy_rejects) + removed
        rejects += copy_rejects + pattern_rejects
    insert_rejects(conn, rejects, at)
    return StageReport(
        target.name,
        len(files),
        rows,
        counted,
        clock.perf_counter() - started,
        [replace(r, raw_line=None) for r in rejects[:REJECT_SAMPLES]],
    )


def _copy_files(
    conn: Connection,
    target: Table,
    manifest_uri: str,
    paths_uri: str,
    warehouse: RedshiftWarehouse,
    gzip: bool,
) -> tuple[int, list[Reject]]:
    """One COPY of a manifest's files (all gzipped, or none): the rows it loaded and the records
    it rejected. A failed COPY rolls the session back and raises LoadFailed with its rejects."""
    view = warehouse.load_errors_view
    before = _last_copy_id(_fetch_sqlalchemy(conn))
    try:
        statement = copy_statement(target, manifest_uri, paths_uri, warehouse, gzip=gzip)
        warehouse.copy(conn, statement)
    except DBAPIError as error:
        # More rejects than MAXERROR (or an unreadable file) fail the COPY. Roll the session back
        # and read what the failed load logged in it, so the run says which records and why;
        # SQLAlchemy's transaction is over, so this goes through the DB-API connection.
        conn.connection.dbapi_connection.rollback()
        rejects = _failed_copy_errors(_fetch_dbapi(conn), view, before)
        raise LoadFailed(target.name, rejects, error) from error
    rows = int(conn.execute(select(func.pg_last_copy_count())).scalar_one())
    return rows, _copy_errors(_fetch_sqlalchemy(conn), view)
