"""The embedded warehouse: a DuckDB file, and staging that reads the raw JSON inside DuckDB.

Event files of plain JSON text are staged whole by DuckDB's read_json, its fields read as text
and typed and checked by rules drawn from the table model; a file where a line does not load
is staged again, like gzipped and binary files, a batch of lines at a time
(tasks/warehouse/lines.py: bounded memory, gzip by name, byte-level faults kept as the lines'
reasons), each batch parsed, validated and typed by DuckDB in bulk by the same rules: a
malformed line, a missing field, a wrong type or a value out of range becomes a row in
load_rejects with its file, line number and reason, while every good line loads.
Song files are small and many: reading them in Python (orjson) into one Arrow table is an order
of magnitude faster than DuckDB's per-file overhead.
"""

from __future__ import annotations

import re
import time as clock
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb_engine  # noqa: F401 - the SQLAlchemy dialect, imported with its module, not at a run's first connection
import pyarrow as pa
import pyarrow.compute as pc
from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from sql import model
from tasks.errors import WarehouseBusy
from tasks.logs import run_logger
from tasks.run.progress import Progress
from tasks.source.files import Source
from tasks.warehouse.base import (
    DEFAULT_LOCK_WAIT_SECONDS,
    Reject,
    StageReport,
    count_rejects,
    held_transaction,
    lock_wait_seconds,
    reject_samples,
    reset_staging,
)
from tasks.warehouse.duckdb_sql import (
    WHOLE_FILE_COLUMNS,
    events_read_json_sql,
    events_staging_sql,
    whole_file_checks_sql,
)
from tasks.warehouse.lines import (
    BATCH_LINES,
    FileToRead,
    line_batches,
    read_ahead,
    readable_whole,
)
from tasks.warehouse.records import (
    file_digests,
    file_rejects,
    parse_json_records,
    read_stored,
)

DEFAULT_DUCKDB_FILE = "sparkify.duckdb"
# With DuckDB's memory bounded, a run's peak memory stays flat whatever its size (issue 10).
DEFAULT_MEMORY_LIMIT = "768MB"


class DuckDBWarehouse(Block):
    """An embedded DuckDB file holding the staging tables and the star schema."""

    _block_type_name = "Sparkify DuckDB Warehouse"
    _block_type_slug = "sparkify-duckdb-warehouse"
    _description = "A local DuckDB file used as Sparkify's warehouse (laptops, CI, demos)."

    path: str = Field(
        default=DEFAULT_DUCKDB_FILE,
        description="Path of the DuckDB database file; created on first use.",
    )
    memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory_limit (e.g. '1GB'): beyond it DuckDB spills to temporary "
        "files beside the database instead of growing (its own default is 80% of the RAM).",
    )
    lock_wait_seconds: float = Field(
        default=DEFAULT_LOCK_WAIT_SECONDS,
        ge=0,
        description="Seconds a run waits while another process holds the file open (another "
        "run, an analyst's session) before it gives up; SPARKIFY_WAREHOUSE_WAIT overrides it.",
    )

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the DuckDB file (each connection opens and releases the file)."""
        file = Path(self.path).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": self.memory_limit}
        engine = create_engine(
            f"duckdb:///{file}", poolclass=NullPool, connect_args={"config": config}
        )
        event.listen(engine, "connect", _quiet)
        return engine

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        """One connection for the whole run: while it is open no other process can open the
        file, so nothing comes between the run's first write and its commit."""
        wait = lock_wait_seconds(self.lock_wait_seconds)
        conn = connect_when_free(self.get_engine(), wait, self.describe())
        with held_transaction(conn):
            yield conn

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Read, validate and stage event files with DuckDB (from local copies of the files)."""
        return stage_events_duckdb(conn, files, at, source.local_copies(files))

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Parse and stage song files through Arrow (from local copies of the files)."""
        return stage_songs_duckdb(conn, files, at, source.local_copies(files))

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows as one Arrow table (DuckDB parses each bound value of a VALUES list:
        20k rows would take seconds)."""
        if rows:
            insert_arrow(conn, table, pa.Table.from_pylist(rows))

    def describe(self) -> str:
        """The DuckDB file's path."""
        return f"duckdb:{Path(self.path).expanduser().resolve()}"


# How DuckDB says another process has the file open (and, where it knows, which one).
_LOCKED = re.compile(
    r"Could not set lock on file .*?(?:Conflicting lock is held in (?P<holder>.+?)"
    r"(?:\. See also|$)|$)",
    re.DOTALL,
)


def _quiet(dbapi_connection: Any, _record: Any) -> None:
    """No progress bar of DuckDB's own on the terminal: runs report their own progress."""
    dbapi_connection.execute("set enable_progress_bar = false")
    dbapi_connection.execute("set preserve_insertion_order = false")


def connect_when_free(engine: Engine, wait: float, warehouse: str) -> Connection:
    """A connection to the DuckDB file, waiting up to `wait` seconds while another process
    holds it; WarehouseBusy, naming the holder, when it is still held then."""
    started = clock.monotonic()
    pause = 0.2
    while True:
        try:
            return engine.connect()
        except DBAPIError as error:
            locked = _LOCKED.search(str(error.orig))
            if locked is None:
                raise
            waited = clock.monotonic() - started
            if waited >= wait:
                raise WarehouseBusy(warehouse, locked.group("holder"), waited) from None
            if pause == 0.2:
                run_logger().info(
                    "%s is held by another process (%s): waiting up to %.0fs",
                    warehouse,
                    locked.group("holder") or "unknown",
                    wait,
                )
            clock.sleep(min(pause, max(wait - waited, 0.0)))
            pause = min(pause * 2, 2.0)


def insert_arrow(conn: Connection, table: Table, data: pa.Table) -> None:
    """Insert an Arrow table holding columns of the table's names into the table."""
    raw = conn.connection.driver_connection
    columns = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in data.column_names)
    with _registered(raw, "arrow_rows", data):
        raw.execute(f"insert into {table.name} ({columns}) select {columns} from arrow_rows")


def _keep_rejects(conn: Connection, rejects: list[Reject], at: datetime) -> None:
    """Keep rejected records in load_rejects, as one Arrow table (an executemany of the rejects
    of 20k song files would take seconds on DuckDB)."""
    if rejects:
        insert_arrow(conn, model.load_rejects, pa.Table.from_pylist([r.row(at) for r in rejects]))


@contextmanager
def _registered(raw: Any, name: str, data: pa.Table) -> Iterator[None]:
    """An Arrow table visible to DuckDB's SQL under a name, for the block's duration."""
    raw.register(name, data)
    try:
        yield
    finally:
        raw.unregister(name)


class RegisteredFiles:
    """The run's files as the Arrow table `stage_files` (file: index, source_file), registered
    on the connection: statements about them join it instead of binding every name."""

    def __init__(self, conn: Connection, files: list[str]) -> None:
        self.raw = conn.connection.driver_connection
        self.table = pa.table(
            {"file": pa.array(range(len(files)), pa.int32()), "source_file": pa.array(files)}
        )

    def __enter__(self) -> RegisteredFiles:
        self.raw.register("stage_files", self.table)
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.unregister("stage_files")

    def conditions(self, column: ColumnElement[str]) -> list[ColumnElement[bool]]:
        """The names joined from the registered table, in one condition."""
        names = table_clause("stage_files", column_clause("source_file"))
        return [column.in_(select(names.c.source_file))]


def _run_own(conn: Connection, table: Table, extra: dict[str, str] | None = None) -> None:
    """Shadow a staging table with a temp table of the same columns (and the `extra` ones, by
    name and type) for the rest of the run's session: DuckDB resolves an unqualified name to
    the temp table first, so staging and the transforms use it unchanged, and its rows, which
    only this run reads, are never written to the database file (a commit would otherwise write
    a million staged events)."""
    raw = conn.connection.driver_connection
    quote = conn.dialect.identifier_preparer.quote
    database = raw.execute("select current_database()").fetchone()[0]
    more = "".join(f", cast(null as {kind}) as {name}" for name, kind in (extra or {}).items())
    raw.execute(
        f"create temp table if not exists {quote(table.name)} as "
        f"select *{more} from {quote(database)}.main.{quote(table.name)} limit 0"
    )


def _stage_lines(
    raw: Any, statements: dict[str, tuple[str, list[Any]]], lines: pa.Table
) -> Counter[int]:
    """Validate and stage one batch of lines; the records staged from each file (by index).
    DuckDB reads the Arrow table from this function's variable `event_lines` (a replacement
    scan): a view registered for each batch would hold the batch in memory until the
    transaction ends."""
    event_lines = lines  # noqa: F841 - read by DuckDB's SQL by this name
    staged = raw.execute(*statements["stage"]).fetchone()[0]
    if staged == lines.num_rows:  # every line loaded: each file staged all its lines
        counts = pc.value_counts(lines.column("file")).to_pylist()
        return Counter({c["values"]: c["counts"] for c in counts})
    # A line that did not load (a reject, or blank): count by file, keep the rejects.
    by_file = Counter(dict(raw.execute(*statements["staged_by_file"]).fetchall()))
    raw.execute(*statements["rejects"])
    return by_file


# Bytes of event files that read_json stages in one statement at most.
WHOLE_FILE_BYTES = 512 * 2**20


def _whole_file_groups(files: list[FileToRead]) -> Iterator[list[FileToRead]]:
    """The files read_json may stage whole, in groups of WHOLE_FILE_BYTES at most (or one
    larger file)."""
    group: list[FileToRead] = []
    size = 0
    for file in files:
        if readable_whole(file):
            length = Path(file.path).stat().st_size
            if group and size + length > WHOLE_FILE_BYTES:
                yield group
                group, size = [], 0
            group.append(file)
            size += length
    if group:
        yield group


def _stage_whole_files(raw: Any, table: Table, files: list[FileToRead]) -> Counter[int]:
    """Stage whole files with read_json: the records each file staged whose every line loaded.
    A file with a line that did not load has its rows taken out again, to be staged line by
    line (where a reject gets its line number); it is not in the counter, nor is a file that
    read_json found no record in."""
    json_files = pa.table(
        {
            "file": pa.array([f.index for f in files], pa.int32()),
            "path": pa.array([f.path for f in files]),
        }
    )
    with _registered(raw, "json_files", json_files):
        raw.execute(*events_read_json_sql(table, [f.path for f in files]))
    checks = whole_file_checks_sql(table)
    indexes = [f.index for f in files]
    counts = raw.execute(checks["by_file"], [min(indexes), max(indexes)]).fetchall()
    redo = [file for file, _, ok in counts if not ok]
    if redo:
        raw.execute(checks["redo"], [redo])
    # A file with no row at all (blank lines only) is left to be read line by line as well.
    return Counter({file: count for file, count, ok in counts if ok})


def stage_events_duckdb(
    conn: Connection,
    files: list[str],
    at: datetime,
    local: dict[str, str] | None = None,
    batch_lines: int = BATCH_LINES,
    whole_files: bool = True,
) -> StageReport:
    """Load the event files into staging_events on DuckDB; bad lines go to load_rejects.
    Files of JSON text are staged whole by DuckDB's read_json (`whole_files`), and those where
    a line did not load, with the others (gzipped, binary), `batch_lines` lines at a time, where
    each bad line gets its number and reason; memory stays flat whatever the files' size.
    `local` maps a file's name to the local copy that is read (files are local when omitted)."""
    started = clock.perf_counter()
    table = model.staging_events
    paths = local or {name: name for name in files}
    with RegisteredFiles(conn, files) as named:
        _run_own(conn, table, WHOLE_FILE_COLUMNS)
        reset_staging(conn, table, named)
        whole_file = file_rejects(files, file_digests(files, paths))
        _keep_rejects(conn, whole_file, at)
        skipped = {r.source_file for r in whole_file}
        to_read = [
            FileToRead(n, name, paths[name]) for n, name in enumerate(files) if name not in skipped
        ]
        raw = conn.connection.driver_connection
        statements = events_staging_sql(table, at)
        staged: Counter[int] = Counter()
        with Progress("staging events", len(files), "files") as progress:
            progress.advance(len(skipped))
            for group in _whole_file_groups(to_read) if whole_files else []:
                whole = _stage_whole_files(raw, table, group)
                staged.update(whole)
                progress.advance(len(whole), note=group[-1].name)
            to_read = [file for file in to_read if file.index not in staged]
            # A batch's last file may go on in the next batch: the files before it are done.
            position = {file.index: n for n, file in enumerate(to_read)}
            done = 0
            for lines in read_ahead(line_batches(to_read, batch_lines)):
                staged += _stage_lines(raw, statements, lines)
                last = position[lines.column("file")[-1].as_py()]
                progress.advance(last - done, note=to_read[last].name)
                done = last
            progress.advance(len(to_read) - done)
        rows = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        return StageReport(
            table.name,
            len(files),
            rows,
            count_rejects(conn, named),
            clock.perf_counter() - started,
            reject_samples(conn, named),
            {name: staged[n] for n, name in enumerate(files)},
        )


def stage_songs_duckdb(
    conn: Connection, files: list[str], at: datetime, local: dict[str, str] | None = None
) -> StageReport:
    """Load the song files into staging_songs on DuckDB; bad records go to load_rejects.
    `local` maps a file's name to the local copy that is read (files are local when omitted)."""
    started = clock.perf_counter()
    table = model.staging_songs
    with RegisteredFiles(conn, files) as named:
        _run_own(conn, table)
        reset_staging(conn, table, named)
        with Progress("staging songs", len(files), "files") as progress:

            def read(name: str) -> bytes:
                progress.advance()
                return read_stored((local or {}).get(name, name))

            records, rejects = parse_json_records(table, files, read)
        insert_arrow(conn, table, records)
        _keep_rejects(conn, rejects, at)
        samples = reject_samples(conn, named)
    seconds = clock.perf_counter() - started
    return StageReport(table.name, len(files), records.num_rows, len(rejects), seconds, samples)
