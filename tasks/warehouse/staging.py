"""Staging shared by every warehouse: emptying the staging tables and the rejects of the files a
run stages again, the load_rejects store, bulk inserts, and the stage task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, select

from sql import model
from tasks.source.files import RunFiles, Source
from tasks.warehouse.protocol import REJECT_SAMPLES, Reject, StageResult, Warehouse
from tasks.warehouse.rejects import fit_reason

Item = TypeVar("Item")
# Bind parameters of one statement naming files: within Redshift's 32,767 per statement and,
# with S3 URIs of up to 1,024 bytes, far below its 16 MB statement size.
FILES_PER_STATEMENT = 5_000


def batches(items: list[str], size: int = FILES_PER_STATEMENT) -> Iterator[list[str]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Rows of one multi-row INSERT: at most 8 values a row within Redshift's 32,767 bound values.
ROWS_PER_INSERT = 4_000
# Bytes of text one multi-row INSERT carries at most: half Redshift's 16 MB statement size,
# leaving room for quoting where a driver writes the values into the statement.
BYTES_PER_INSERT = 8 * 2**20


@dataclass(frozen=True)
class StatementLimits:
    """What one statement carries at most on a warehouse: file names bound, rows inserted,
    bytes of bound text, each bound value counted with `value_overhead` bytes more (its
    placeholder and name, where a driver sends them beside the SQL)."""

    files: int = FILES_PER_STATEMENT
    rows: int = ROWS_PER_INSERT
    text_bytes: int = BYTES_PER_INSERT
    value_overhead: int = 0

    def value_bytes(self, value: Any) -> int:
        """Bytes a bound value costs a statement (text only, where there is no overhead)."""
        if isinstance(value, str):
            return len(value.encode()) + self.value_overhead
        return len(str(value)) + self.value_overhead if self.value_overhead else 0


def statement_limits(conn: Connection) -> StatementLimits:
    """The limits of one statement on the connection's warehouse: those its dialect declares
    (`statement_limits`: the Data API's), else Redshift's."""
    return getattr(conn.dialect, "statement_limits", None) or StatementLimits()


def bounded(
    items: list[Item], size_of: Callable[[Item], int], most_items: int, most_bytes: int
) -> Iterator[list[Item]]:
    """Consecutive slices of at most `most_items` items and `most_bytes` bytes (an item larger
    than that alone)."""
    batch: list[Item] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if batch and (len(batch) == most_items or size + item_size > most_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def name_batches(names: list[str], limits: StatementLimits) -> Iterator[list[str]]:
    """Consecutive slices of names within the limits' files and bytes."""
    return bounded(names, limits.value_bytes, limits.files, limits.text_bytes)


class FileSet(Protocol):
    """The run's files, as conditions on a column of file names."""

    def conditions(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """Conditions whose union selects the rows of these files."""
        ...


@dataclass(frozen=True)
class ListedFiles:
    """Files named by bind parameters, FILES_PER_STATEMENT at a time (any warehouse), each name
    matched exactly: Redshift ignores trailing blanks when comparing VARCHAR, so a name is
    matched with its length as well (LENGTH counts a VARCHAR's trailing blanks there)."""

    files: list[str]
    limits: StatementLimits = StatementLimits()

    def conditions(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """One condition per batch of names of one length: that length and an IN list."""
        by_length: dict[int, list[str]] = {}
        for name in self.files:
            by_length.setdefault(len(name), []).append(name)
        per_batch = replace(self.limits, files=self.limits.files - 1)  # the length is bound too
        return [
            and_(func.length(column) == length, column.in_(batch))
            for length, names in by_length.items()
            for batch in name_batches(names, per_batch)
        ]


def _file_set(files: list[str] | FileSet, conn: Connection) -> FileSet:
    return ListedFiles(files, statement_limits(conn)) if isinstance(files, list) else files


def reset_staging(
    conn: Connection, table: Table, files: list[str] | FileSet, *, recreate: bool = False
) -> None:
    """Empty a staging table and forget earlier rejects of the same files (reruns are clean).
    With `recreate`, the table is dropped and created again instead of emptied by DELETE:
    Redshift keeps deleted rows as ghost rows, scanned until a VACUUM, which no transaction
    may run; DROP and CREATE may (TRUNCATE would commit the transaction)."""
    if recreate:
        table.drop(conn)
        table.create(conn)
    else:
        conn.execute(delete(table))
    for condition in _file_set(files, conn).conditions(model.load_rejects.c.source_file):
        conn.execute(delete(model.load_rejects).where(condition))


def insert_values(
    conn: Connection, table: Table, rows: list[dict[str, Any]], most_bytes: int = BYTES_PER_INSERT
) -> None:
    """Insert rows (each with every column of the table) as multi-row INSERTs of at most
    ROWS_PER_INSERT rows and `most_bytes` of text (fewer where the connection's statements
    carry less: statement_limits): a warehouse's insert_rows where it has no faster way."""
    limits = statement_limits(conn)

    def row_bytes(row: dict[str, Any]) -> int:
        return sum(limits.value_bytes(v) for v in row.values())

    for batch in bounded(rows, row_bytes, limits.rows, min(most_bytes, limits.text_bytes)):
        conn.execute(table.insert().values(batch))


def insert_rejects(conn: Connection, rejects: list[Reject], at: datetime) -> None:
    """Keep rejected records in load_rejects, as multi-row INSERTs (an executemany is a
    statement per row on redshift_connector), each reason within the column's bytes."""
    rows = [{**r.row(at), "reason": fit_reason(r.reason)} for r in rejects]
    insert_values(conn, model.load_rejects, rows)


def reject_samples(conn: Connection, files: list[str] | FileSet) -> list[Reject]:
    """The first rejects of these files, in file and line order."""
    rejects = model.load_rejects
    samples = []
    for condition in _file_set(files, conn).conditions(rejects.c.source_file):
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
        for c in _file_set(files, conn).conditions(rejects.c.source_file)
    )


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
            "staged %s rows into %s from %s files in %.2fs (%s rejected)",
            f"{report.rows:,}",
            report.table,
            f"{report.files:,}",
            report.seconds,
            f"{report.rejects:,}",
        )
        for reject in report.reject_samples:
            logger.warning("rejected %s", reject.describe())
    return result
