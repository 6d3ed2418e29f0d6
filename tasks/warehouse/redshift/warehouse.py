"""Amazon Redshift as the warehouse: a block that hands out engines and holds the run's one
transaction; its staging is by COPY from S3 (staging_copy.py beside this)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr, field_validator, model_validator
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Table,
    create_engine,
)

from sql import model
from tasks.common.aws import DEFAULT_REGION
from tasks.common.blocks import SchemaOnce
from tasks.common.logs import run_logger
from tasks.source.files import RunFiles, Source
from tasks.source.s3 import S3Source
from tasks.warehouse.hold import DEFAULT_LOCK_WAIT_SECONDS, held_transaction, lock_wait_seconds
from tasks.warehouse.protocol import StageReport, StageResult
from tasks.warehouse.redshift.lock_table import ensure_lock_table, take_run_lock
from tasks.warehouse.redshift.sign_in import sign_in_per_connection, sign_in_problem
from tasks.warehouse.redshift.staging_copy import DEFAULT_IAM_ROLE, stage_by_copy
from tasks.warehouse.staging import insert_values, stage_in_turn
from tasks.warehouse.tables import widen_text_columns

# Redshift's upper limit of COPY's MAXERROR.
MAX_COPY_ERRORS = 100_000
# TCP keepalive of each connection: probes after this much silence, this far apart, and the peer
# given up after this many unanswered. A long COPY sends nothing until it ends; NAT gateways and
# firewalls drop a flow idle for minutes (AWS NAT: 350 s), and the operating system's default
# idle time (two hours on Linux) would let the run hang on a connection already gone.
KEEPALIVE_IDLE_SECONDS = 60
KEEPALIVE_INTERVAL_SECONDS = 10
KEEPALIVE_PROBES = 6


class RedshiftWarehouse(SchemaOnce, Block):
    """An Amazon Redshift database holding the staging tables and the star schema."""

    _block_type_name = "Sparkify Redshift Warehouse"
    _block_type_slug = "sparkify-redshift-warehouse"
    _description = "Sparkify's production warehouse on Amazon Redshift, loaded by COPY from S3."

    host: str = Field(description="Cluster (or workgroup) endpoint host name.")
    port: int = Field(default=5439, description="Port of the endpoint.")
    database: str = Field(default="dev", description="Database holding Sparkify's tables.")
    user: str | None = Field(
        default=None,
        description="Database user the flows connect as (IAM sign-in: the cluster's user that "
        "GetClusterCredentials signs in as; none on Serverless, where the IAM identity is it).",
    )
    password: SecretStr | None = Field(
        default=None, description="Password of the database user (password sign-in only)."
    )
    sign_in: Literal["password", "iam"] = Field(
        default="password",
        description="'password', or 'iam': temporary credentials from GetClusterCredentials "
        "(cluster_identifier) or Serverless GetCredentials (workgroup) for each new connection, "
        "fetched with aws_credentials; no password is stored.",
    )
    cluster_identifier: str | None = Field(default=None, description="IAM sign-in: the cluster.")
    workgroup: str | None = Field(default=None, description="IAM sign-in: the workgroup.")
    iam_role_arn: str = Field(
        description="ARN of the IAM role Redshift assumes to read the source bucket for COPY, "
        "or 'default' for the IAM role set as the cluster's default (COPY's IAM_ROLE default)."
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
        "(default: the source's), and fetch IAM sign-in's credentials (default: boto3's chain).",
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
        if value.strip().lower() == DEFAULT_IAM_ROLE:
            return DEFAULT_IAM_ROLE
        if not value.startswith("arn:") or ":role/" not in value:
            raise ValueError(f"not an IAM role ARN, nor {DEFAULT_IAM_ROLE!r}: {value!r}")
        return value

    @model_validator(mode="after")
    def _sign_in_fields(self) -> RedshiftWarehouse:
        fields = (self.user, self.password is not None, self.cluster_identifier, self.workgroup)
        if problem := sign_in_problem(self.sign_in, *fields):
            raise ValueError(problem)
        return self

    def url(self) -> URL:
        """The SQLAlchemy URL of the database (the password stays inside the URL object)."""
        return URL.create(
            "redshift+redshift_connector",
            username=self.user,
            password=self.password.get_secret_value() if self.password else None,
            host=self.host,
            port=self.port,
            database=self.database,
        )

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on redshift_connector; dropped connections are detected.
        No socket timeout: redshift_connector applies `timeout` to every read for the
        connection's life, which would fail any statement quiet for that long (a big COPY, a
        queued query, a resuming workgroup); TCP keepalives, probing a quiet connection after a
        minute, keep it through NAT gateways and detect a dead peer instead.
        IAM sign-in fetches temporary credentials for each new connection."""
        keepalive = {
            "tcp_keepalive": True,
            "tcp_keepalive_idle": KEEPALIVE_IDLE_SECONDS,
            "tcp_keepalive_interval": KEEPALIVE_INTERVAL_SECONDS,
            "tcp_keepalive_count": KEEPALIVE_PROBES,
        }
        engine = create_engine(self.url(), pool_pre_ping=True, connect_args=keepalive)
        if self.sign_in == "iam":
            sign_in_per_connection(engine, self)
        return engine

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        """One connection and one transaction for the whole run, begun by locking the run lock
        table (tasks/warehouse/redshift/lock_table.py): runs from any Prefect server take turns.
        The engine is the hold's own and is disposed when the hold ends, so none of its
        connections (the lock table's, the run's, the wait's) outlives it."""
        wait = lock_wait_seconds(self.lock_wait_seconds)
        engine = self.get_engine()
        try:
            ensure_lock_table(engine)
            if widened := widen_text_columns(engine):  # refused inside the run's transaction
                run_logger().info("widened %s to the model's width", ", ".join(widened))
            with held_transaction(engine.connect()) as conn:
                take_run_lock(conn, wait, self.describe())
                yield conn
        finally:
            engine.dispose()

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """COPY the event files into staging_events."""
        return stage_by_copy(conn, self._s3(source), model.staging_events, files, at, self)

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """COPY the song files into staging_songs, combined into few objects (gzipped ones
        decompressed), each record with its file's name for staging_songs.source_file."""
        s3 = self._s3(source)
        return stage_by_copy(conn, s3, model.staging_songs, files, at, self, combine=True)

    def stage_files(
        self, conn: Connection, source: Source, files: RunFiles, at: datetime
    ) -> StageResult:
        """COPY the event files, then the song files (each COPY uses the whole cluster)."""
        return stage_in_turn(self, conn, source, files, at)

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Multi-row INSERTs (COPY is for files)."""
        insert_values(conn, table, rows)

    def part_bytes(self) -> None:
        """None: a run is one part, whose COPY spreads over the nodes (tasks/run/parts.py)."""

    def copy(self, conn: Connection, statement: str) -> None:
        """Run one COPY statement in the connection's transaction."""
        conn.exec_driver_sql(statement)

    def describe(self) -> str:
        """Endpoint and database (never the password)."""
        user = f"{self.user}@" if self.user else ""  # none on Serverless with IAM sign-in
        return f"redshift://{user}{self.host}:{self.port}/{self.database}"

    def _s3(self, source: Source) -> S3Source:
        if not isinstance(source, S3Source):
            raise ValueError(
                f"Redshift loads by COPY from S3: the source must be s3://bucket/prefix or an "
                f"S3Bucket block, not {source.describe()}"
            )
        if self.aws_credentials is not None:
            return replace(source, credentials=self.aws_credentials)
        return source
