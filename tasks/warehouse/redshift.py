"""Amazon Redshift as the warehouse: a block that hands out engines, and staging by COPY.

Each run writes a manifest naming exactly its files, and the JSONPaths document generated from
the staging table's model, beside the data in S3; COPY loads through the manifest with the
block's IAM role. The rows Redshift rejected are read back from its load-error log and kept in
load_rejects like DuckDB's.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
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
    create_engine,
    delete,
    func,
    not_,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from sql import model
from sql.model import jsonpaths
from tasks.aws import DEFAULT_REGION, aws_client
from tasks.run.progress import Progress
from tasks.source.files import Source, is_gzipped
from tasks.source.s3 import S3Source
from tasks.warehouse.base import (
    DEFAULT_LOCK_WAIT_SECONDS,
    REJECT_SAMPLES,
    Reject,
    StageReport,
    held_transaction,
    insert_rejects,
    lock_wait_seconds,
    reset_staging,
)
from tasks.warehouse.load_errors import (
    LoadFailed,
    copy_errors,
    failed_copy_errors,
    fetch_dbapi,
    fetch_sqlalchemy,
    last_copy_id,
)
from tasks.warehouse.records import file_rejects
from tasks.warehouse.run_lock import ensure_lock_table, take_run_lock

# Redshift's upper limit of COPY's MAXERROR.
MAX_COPY_ERRORS = 100_000
# Manifests and JSONPaths are written beside the data, where the COPY role may read.
CONTROL_PREFIX = "_sparkify"


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
    lock_wait_seconds: float = Field(
        default=DEFAULT_LOCK_WAIT_SECONDS,
        ge=0,
        description="Seconds a run waits while another run holds the warehouse (its lock "
        "table, sparkify_run_lock) before it gives up; SPARKIFY_WAREHOUSE_WAIT overrides it.",
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

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        """One connection and one transaction for the whole run, begun by locking the run lock
        table (tasks/warehouse/run_lock.py): runs from any Prefect server take turns."""
        wait = lock_wait_seconds(self.lock_wait_seconds)
        engine = self.get_engine()
        ensure_lock_table(engine)
        with held_transaction(engine.connect()) as conn:
            take_run_lock(conn, wait, self.describe())
            yield conn

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
    title = f"staging {target.name.removeprefix('staging_')}"
    with Progress(title, len(files), "files") as progress:
        progress.advance(len(skipped))
        for gzip in (False, True):
            group = [uri for uri in loadable if is_gzipped(uri) == gzip]
            if not group:
                continue
            manifest_key = manifests + (".gzip.manifest" if gzip else ".manifest")
            manifest_uri = put_json(source, manifest_key, manifest(group))
            loaded, copy_rejects = _copy_files(
                conn, target, manifest_uri, paths_uri, warehouse, gzip
            )
            removed, pattern_rejects = _reject_bad_patterns(conn, target, manifest_uri)
            rows += loaded - removed
            counted += len(copy_rejects) + removed
            rejects += copy_rejects + pattern_rejects
            progress.advance(len(group), note=f"{len(group)} files by one COPY")
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
    before = last_copy_id(fetch_sqlalchemy(conn))
    try:
        statement = copy_statement(target, manifest_uri, paths_uri, warehouse, gzip=gzip)
        warehouse.copy(conn, statement)
    except DBAPIError as error:
        # More rejects than MAXERROR (or an unreadable file) fail the COPY. Roll the session back
        # and read what the failed load logged in it, so the run says which records and why;
        # SQLAlchemy's transaction is over, so this goes through the DB-API connection.
        conn.connection.dbapi_connection.rollback()
        rejects = failed_copy_errors(fetch_dbapi(conn), view, before)
        raise LoadFailed(target.name, rejects, error) from error
    rows = int(conn.execute(select(func.pg_last_copy_count())).scalar_one())
    return rows, copy_errors(fetch_sqlalchemy(conn), view)
