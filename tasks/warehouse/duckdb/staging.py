"""Staging on the embedded warehouse: the raw JSON read inside DuckDB and in Python.

Event files of plain JSON text are staged whole by DuckDB's read_json, its fields read as text
and typed and checked by rules drawn from the table model; a file where a line does not load
is staged again, like gzipped and binary files, a batch of lines at a time
(tasks/warehouse/duckdb/lines.py: bounded memory, gzip by name, byte-level faults kept as the lines'
reasons), each batch parsed, validated and typed by DuckDB in bulk by the same rules: a
malformed line, a missing field, a wrong type or a value out of range becomes a row in
load_rejects with its file, line number and reason, while every good line loads.
Song files are small and many: reading them in Python (orjson) into one Arrow table is an order
of magnitude faster than DuckDB's per-file overhead. A run parses them in a thread of its own
while DuckDB reads the event files (DuckDB's statements leave Python's interpreter free), and
inserts them once the events are staged: the run's one connection does one thing at a time.
"""

from __future__ import annotations

import contextvars
import time as clock
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import ColumnElement, Connection, Table, func, select
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause

from sql import model
from tasks.common.progress import Progress
from tasks.source.files import RunFiles, Source
from tasks.warehouse.duckdb.lines import (
    BATCH_LINES,
    FileToRead,
    line_batches,
    read_ahead,
    readable_whole,
)
from tasks.warehouse.duckdb.records import (
    file_digests,
    parse_json_records,
    read_stored,
)
from tasks.warehouse.duckdb.sql import (
    WHOLE_FILE_COLUMNS,
    events_read_json_sql,
    events_staging_sql,
    whole_file_checks_sql,
)
from tasks.warehouse.protocol import Reject, StageReport, StageResult
from tasks.warehouse.rejects import file_rejects, unreadable_files
from tasks.warehouse.staging import bounded, count_rejects, reject_samples, reset_staging


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
    """Shadow a staging table with a new, empty temp table of the same columns (and the `extra`
    ones, by name and type) for the rest of the run's session: DuckDB resolves an unqualified
    name to the temp table first, so staging and the transforms use it unchanged, and its rows,
    which only this run reads, are never written to the database file (a commit would otherwise
    write a million staged events). Each staging replaces the table of the one before (a run
    in parts stages again for each part): deleting the rows instead would keep their memory
    until the session ends."""
    raw = conn.connection.driver_connection
    quote = conn.dialect.identifier_preparer.quote
    database = raw.execute("select current_database()").fetchone()[0]
    more = "".join(f", cast(null as {kind}) as {name}" for name, kind in (extra or {}).items())
    raw.execute(
        f"create or replace temp table {quote(table.name)} as "
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
    whole = [file for file in files if readable_whole(file)]
    return bounded(whole, lambda f: Path(f.path).stat().st_size, len(whole), WHOLE_FILE_BYTES)


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
        whole_file = unreadable_files(files, paths)
        readable = [name for name in files if name not in {r.source_file for r in whole_file}]
        whole_file += file_rejects(readable, file_digests(readable, paths))
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


@dataclass
class ParsedSongs:
    """Song files parsed into staging_songs' columns, their rejects, and the seconds it took."""

    records: pa.Table
    rejects: list[Reject]
    seconds: float


def parse_songs(files: list[str], local: dict[str, str] | None = None) -> ParsedSongs:
    """Read and parse the song files (`local` maps a file's name to the local copy that is
    read); no warehouse needed, so it may run beside the staging of the events."""
    started = clock.perf_counter()
    copies = local or {}
    # Progress counted in steps of a hundredth of the files: 20k calls would cost more than
    # the lines and artifact updates they give.
    step = max(len(files) // 100, 1)
    with Progress("staging songs", len(files), "files") as progress:
        read_so_far = 0

        def read(name: str) -> bytes:
            nonlocal read_so_far
            read_so_far += 1
            if read_so_far % step == 0:
                progress.advance(step)
            return read_stored(copies.get(name, name))

        records, rejects = parse_json_records(model.staging_songs, files, read)
        progress.advance(read_so_far % step)
    return ParsedSongs(records, rejects, clock.perf_counter() - started)


def stage_songs_duckdb(
    conn: Connection, files: list[str], at: datetime, songs: ParsedSongs
) -> StageReport:
    """Load the song files, parsed by parse_songs, into staging_songs on DuckDB; bad records go
    to load_rejects. The report's seconds are the parse's and the insert's."""
    started = clock.perf_counter()
    table = model.staging_songs
    with RegisteredFiles(conn, files) as named:
        _run_own(conn, table)
        reset_staging(conn, table, named)
        insert_arrow(conn, table, songs.records)
        _keep_rejects(conn, songs.rejects, at)
        samples = reject_samples(conn, named)
    seconds = songs.seconds + clock.perf_counter() - started
    return StageReport(
        table.name, len(files), songs.records.num_rows, len(songs.rejects), seconds, samples
    )


def stage_files_duckdb(
    conn: Connection, source: Source, files: RunFiles, at: datetime
) -> StageResult:
    """Stage the run's event and song files: the song files are fetched and parsed in a thread
    of their own while DuckDB stages the events, then inserted. The thread runs in a copy of
    the caller's context (its Prefect run: progress and logs go to it)."""
    songs = files.song_files
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-songs") as pool:
        parsing = pool.submit(context.run, lambda: parse_songs(songs, source.local_copies(songs)))
        events = stage_events_duckdb(
            conn, files.event_files, at, source.local_copies(files.event_files)
        )
        return StageResult(events, stage_songs_duckdb(conn, songs, at, parsing.result()))
