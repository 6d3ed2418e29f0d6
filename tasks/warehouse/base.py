"""What every warehouse is: the protocol the flows use, the stage report and the rejected record
it returns, and the pieces of the warehouse's tables all of them share (DDL, transactions,
staging resets, the load_rejects store).

A third warehouse is one module implementing `Warehouse`, named in `tasks/warehouse/resolve.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    column,
    delete,
    func,
    inspect,
    select,
)
from sqlalchemy import table as table_clause

from sql import model
from tasks.common.errors import UserError
from tasks.common.retry import RETRY_TRANSIENT
from tasks.source.files import RunFiles, Source

# Characters of a rejected line kept in load_rejects.raw_line.
MAX_RAW_LINE = 4096
# Files named by one statement: within Redshift's 32,767 bind parameters per statement and, with
# S3 URIs of up to 1,024 bytes, far below its 16 MB statement size.
FILES_PER_STATEMENT = 5_000
# Rejects a stage report carries for logs and artifacts (the rest stay in load_rejects).
REJECT_SAMPLES = 20
# Seconds a run waits for a warehouse another process holds (overrides the block's setting).
WAIT_VARIABLE = "SPARKIFY_WAREHOUSE_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Reject:
    """A record (or a whole file, line 0) that was not staged, and why."""

    source_file: str
    line_number: int
    reason: str
    raw_line: str | None = None

    def row(self, at: datetime) -> dict[str, Any]:
        """The record's row of load_rejects, stamped with the run's time."""
        return {
            "source_file": self.source_file,
            "line_number": self.line_number,
            "reason": self.reason,
            "raw_line": self.raw_line,
            "recorded_at": at,
        }

    def describe(self) -> str:
        """File, line and reason on one line, for logs and error messages."""
        return f"{self.source_file} line {self.line_number}: {self.reason}"


@dataclass
class StageReport:
    """What staging one table did."""

    table: str
    files: int
    rows: int
    rejects: int
    seconds: float
    reject_samples: list[Reject] = field(default_factory=list)
    # Records each file staged, where the warehouse counts them while staging (DuckDB's event
    # staging; Redshift's COPY reports rows per COPY, not per file).
    records_by_file: dict[str, int] | None = None


class Warehouse(Protocol):
    """What the flows need of a warehouse."""

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the warehouse."""
        ...

    def hold(self) -> AbstractContextManager[Connection]:
        """The run's one connection, in one transaction that commits when the block ends
        normally: from it on no other run writes to the warehouse until it ends. Another
        holder is waited for a bounded time (the block's lock_wait_seconds), then WarehouseBusy."""
        ...

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Load event files of the source into staging_events."""
        ...

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Load song files of the source into staging_songs."""
        ...

    def stage_files(
        self, conn: Connection, source: Source, files: RunFiles, at: datetime
    ) -> StageResult:
        """Load the run's event and song files into the staging tables (stage_in_turn where
        the warehouse does one after the other)."""
        ...

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows (each with every column of the table) in bulk, in the run's transaction."""
        ...

    def part_bytes(self) -> int | None:
        """Bytes of event files the warehouse stages and transforms in one part of a run at
        most (tasks/run/parts.py); None for a run in one part whatever its size."""
        ...

    def describe(self) -> str:
        """Where the warehouse is, for logs (never a secret)."""
        ...


class WarehouseWaitInvalid(UserError):
    """SPARKIFY_WAREHOUSE_WAIT is no number of seconds."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"{WAIT_VARIABLE}={value!r} is not a number of seconds: set it to e.g. 30, "
            "or unset it to use the warehouse block's lock_wait_seconds"
        )


def lock_wait_seconds(configured: float) -> float:
    """How long a run waits for a warehouse another process holds: SPARKIFY_WAREHOUSE_WAIT
    (seconds) when set, else the block's setting."""
    value = os.environ.get(WAIT_VARIABLE, "").strip()
    if not value:
        return configured
    try:
        seconds = float(value)
    except ValueError:
        raise WarehouseWaitInvalid(value) from None
    if seconds < 0:
        raise WarehouseWaitInvalid(value)
    return seconds


@contextmanager
def held_transaction(conn: Connection) -> Iterator[Connection]:
    """The connection's transaction for the block: committed when it ends normally, rolled
    back on any exception; the connection is closed either way."""
    with conn, conn.begin():
        yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed when the block ends normally, rolled back on any exception."""
    with engine.begin() as conn:
        yield conn


def create_tables(conn: Connection, drop: bool = False) -> list[str]:
    """Create every table of the model that is missing (dropping them all first if asked), and
    bring existing ones to the model: staging tables hold nothing between runs, so one whose
    columns differ is recreated; a text column narrower than the model's is widened."""
    if drop:
        model.metadata.drop_all(conn)
    existing = set(inspect(conn).get_table_names())
    for table in model.STAGING_TABLES:
        if table.name in existing and list(_stored_columns(conn, table)) != table.columns.keys():
            table.drop(conn)
    model.metadata.create_all(conn, checkfirst=True)
    for table in model.ALL_TABLES:
        if table.name in existing:
            _widen_text_columns(conn, table)
    return [t.name for t in model.ALL_TABLES]


_INFO_COLUMNS = table_clause(
    "columns",
    column("table_name"),
    column("column_name"),
    column("ordinal_position"),
    column("character_maximum_length"),
    schema="information_schema",
)


def _stored_columns(conn: Connection, table: Table) -> dict[str, int | None]:
    """The stored table's columns in order, with their text length where bounded (from
    information_schema, which DuckDB, PostgreSQL and Redshift all have)."""
    info = _INFO_COLUMNS.c
    query = (
        select(info.column_name, info.character_maximum_length)
        .where(info.table_name == table.name)
        .order_by(info.ordinal_position)
    )
    return {name: length for name, length in conn.execute(query)}


def _widen_text_columns(conn: Connection, table: Table) -> None:
    """ALTER a bounded text column shorter than the model's to the model's length (Redshift
    widens a VARCHAR in place; DuckDB's VARCHAR has no length to widen)."""
    stored = _stored_columns(conn, table)
    preparer = conn.dialect.identifier_preparer
    for col in table.columns:
        wanted = getattr(col.type, "length", None)
        length = stored.get(col.name)
        if wanted and length and length < wanted:
            conn.exec_driver_sql(
                f"alter table {preparer.format_table(table)} alter column "
                f"{preparer.quote(col.name)} type {col.type.compile(dialect=conn.dialect)}"
            )


def batches(items: list[str], size: int = FILES_PER_STATEMENT) -> Iterator[list[str]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FileSet(Protocol):
    """The run's files, as conditions on a column of file names."""

    def conditions(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """Conditions whose union selects the rows of these files."""
        ...


@dataclass(frozen=True)
class ListedFiles:
    """Files named by bind parameters, FILES_PER_STATEMENT at a time (any warehouse)."""

    files: list[str]

    def conditions(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """One IN list per batch of names."""
        return [column.in_(batch) for batch in batches(self.files)]


def _file_set(files: list[str] | FileSet) -> FileSet:
    return ListedFiles(files) if isinstance(files, list) else files


def reset_staging(conn: Connection, table: Table, files: list[str] | FileSet) -> None:
    """Empty a staging table and forget earlier rejects of the same files (reruns are clean)."""
    conn.execute(delete(table))
    for condition in _file_set(files).conditions(model.load_rejects.c.source_file):
        conn.execute(delete(model.load_rejects).where(condition))


# Rows of one multi-row INSERT: at most 8 values a row within Redshift's 32,767 bound values.
ROWS_PER_INSERT = 4_000


def insert_values(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (each with every column of the table) as multi-row INSERTs of
    ROWS_PER_INSERT rows: a warehouse's insert_rows where it has no faster way."""
    for start in range(0, len(rows), ROWS_PER_INSERT):
        conn.execute(table.insert().values(rows[start : start + ROWS_PER_INSERT]))


def insert_rejects(conn: Connection, rejects: list[Reject], at: datetime) -> None:
    """Keep rejected records in load_rejects."""
    if rejects:
        conn.execute(model.load_rejects.insert(), [r.row(at) for r in rejects])


def reject_samples(conn: Connection, files: list[str] | FileSet) -> list[Reject]:
    """The first rejects of these files, in file and line order."""
    rejects = model.load_rejects
    samples = []
    for condition in _file_set(files).conditions(rejects.c.source_file):
        query = (
            select(rejects.c.source_file, rejects.c.line_number, rejects.c.reason)
            .where(condition)
            .order_by(rejects.c.source_file, rejects.c.line_number)
            .limit(REJECT_SAMPLES)
        )
        samples += [Reject(**row._mapping) for row in conn.execute(query)]
    samples.sort(key=lambda r: (r.source_file, r.line_number))
    return samples[:REJECT_SAMPLES]


def count_rejects(conn: Connection, files: list[str] | FileSet) -> int:
    """How many records of these files load_rejects holds."""
    rejects = model.load_rejects
    return sum(
        int(conn.execute(select(func.count()).select_from(rejects).where(c)).scalar_one())
        for c in _file_set(files).conditions(rejects.c.source_file)
    )


class RefusedToDrop(Exception):
    """Dropping tables that exist was not confirmed."""


@task(name="recreate-tables", cache_policy=NO_CACHE)
def recreate_tables(warehouse: Warehouse, confirm_drop: bool) -> list[str]:
    """Drop (when confirmed) and create all tables in one transaction."""
    engine = warehouse.get_engine()
    with transaction(engine) as conn:
        existing = sorted(set(inspect(conn).get_table_names()) & set(model.metadata.tables))
        if existing and not confirm_drop:
            raise RefusedToDrop(
                f"{len(existing)} tables exist ({', '.join(existing)}); dropping them deletes "
                "their data: run again with --yes to confirm"
            )
        return create_tables(conn, drop=True)


@task(name="ensure-tables", cache_policy=NO_CACHE)
def ensure_tables(conn: Connection) -> list[str]:
    """Create the model's tables where missing, in the run's transaction."""
    return create_tables(conn)


@dataclass
class StageResult:
    """Both staging tables' reports."""

    events: StageReport
    songs: StageReport


def stage_in_turn(
    warehouse: Warehouse, conn: Connection, source: Source, files: RunFiles, at: datetime
) -> StageResult:
    """Stage the event files, then the song files."""
    return StageResult(
        warehouse.stage_events(conn, source, files.event_files, at),
        warehouse.stage_songs(conn, source, files.song_files, at),
    )


@task(name="stage", cache_policy=NO_CACHE)
def stage(warehouse: Warehouse, conn: Connection, source: Source, files: RunFiles) -> StageResult:
    """Load the run's files into the staging tables, in the run's transaction."""
    logger = get_run_logger()
    at = datetime.now(UTC).replace(tzinfo=None)
    result = warehouse.stage_files(conn, source, files, at)
    for report in (result.events, result.songs):
        logger.info(
            "staged %d rows into %s from %d files in %.2fs (%d rejected)",
            report.rows,
            report.table,
            report.files,
            report.seconds,
            report.rejects,
        )
        for reject in report.reject_samples:
            logger.warning("rejected %s", reject.describe())
    return result


def count_rows(conn: Connection) -> dict[str, int]:
    """Row counts of the star tables and the rejects table."""
    tables = (*model.STAR_TABLES, model.load_rejects)
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
    }


@task(
    name="row-counts",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def table_counts(warehouse: Warehouse) -> dict[str, int]:
    """Row counts of every star table after the run."""
    with warehouse.get_engine().connect() as conn:
        return count_rows(conn)
