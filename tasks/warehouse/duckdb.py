"""The embedded warehouse: a DuckDB file, and staging that reads the raw JSON inside DuckDB.

Event files are read a batch of lines at a time (tasks/warehouse/lines.py: bounded memory,
gzip by name, byte-level faults kept as the lines' reasons) and each batch is parsed, validated
and typed by DuckDB in bulk, by rules drawn from the table model: a malformed line, a missing
field, a wrong type or a value out of range becomes a row in load_rejects with its file, line
number and reason, while every good line loads.
Song files are small and many: reading them in Python (orjson) into one Arrow table is an order
of magnitude faster than DuckDB's per-file overhead.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import Connection, Engine, Table, create_engine, func, select
from sqlalchemy.pool import NullPool

from sql import model
from sql.model import JsonField, json_fields
from tasks.source.files import Source
from tasks.warehouse.base import (
    MAX_RAW_LINE,
    StageReport,
    count_rejects,
    insert_rejects,
    reject_samples,
    reset_staging,
)
from tasks.warehouse.lines import BATCH_LINES, FileToRead, line_batches
from tasks.warehouse.records import (
    EXPECTED,
    INTEGER_KINDS,
    INTEGER_TEXT,
    MALFORMED,
    TIMESTAMP_MS,
    column_kind,
    file_digests,
    file_rejects,
    out_of_range,
    parse_json_records,
    read_stored,
    text_width,
    too_long,
)

DEFAULT_DUCKDB_FILE = "sparkify.duckdb"
# With DuckDB's memory bounded, a run's peak memory stays flat whatever its size (issue 10).
DEFAULT_MEMORY_LIMIT = "768MB"
# DuckDB type of each kind of staging column, as read from JSON (timestamps as epoch ms).
DUCKDB_TYPES = {
    "integer": "integer",
    "bigint": "bigint",
    "double": "double",
    "timestamp": "bigint",
    "text": "varchar",
}


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

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the DuckDB file (each connection opens and releases the file)."""
        file = Path(self.path).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": self.memory_limit}
        return create_engine(
            f"duckdb:///{file}", poolclass=NullPool, connect_args={"config": config}
        )

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

    def describe(self) -> str:
        """The DuckDB file's path."""
        return f"duckdb:{Path(self.path).expanduser().resolve()}"


def _cast_sql(f: JsonField) -> tuple[str, list[Any]]:
    """The staging column's value from the field's text (None when it does not convert), and
    its bind values."""
    text = f's."{f.field}"'
    kind = column_kind(f.sql_type)
    if kind == "text":
        # userId '' marks a logged-out event: staged as null.
        return (f"nullif({text}, '')" if f.pattern is not None else text), []
    if kind == "timestamp":
        ms = f"try_cast({text} as bigint)"
        return f"case when {ms} between ? and ? then epoch_ms({ms}) end", list(TIMESTAMP_MS)
    if kind in INTEGER_KINDS:
        # Digits only, as Redshift's COPY reads an INTEGER: try_cast would round 1.5 to 2.
        cast = f"try_cast({text} as {DUCKDB_TYPES[kind]})"
        return f"case when regexp_full_match({text}, ?) then {cast} end", [INTEGER_TEXT]
    return f"try_cast({text} as {DUCKDB_TYPES[kind]})", []


def _field_ok_sql(f: JsonField) -> tuple[list[str], list[Any]]:
    """Conditions a parsed line meets when this field can fill its column (whose value, typed
    once, is selected beside the parsed text fields), and their values."""
    text = f's."{f.field}"'
    conditions, params = [], []
    if column_kind(f.sql_type) != "text":
        conditions.append(f"({text} is null or {f.column} is not null)")
    if f.required:
        conditions.append(f"{text} is not null")
    if f.pattern is not None:
        conditions.append(f"({text} is null or regexp_full_match({text}, ?))")
        params.append(f.pattern)
    if (width := text_width(f)) is not None:
        conditions.append(f"({text} is null or strlen({text}) <= ?)")
        params.append(width)
    return conditions, params


def _reason_sql(fields: list[JsonField]) -> tuple[str, list[Any]]:
    """A CASE expression naming the first problem of a parsed line, and its bind values."""
    whens = ["when s is null then ?"]
    params: list[Any] = [MALFORMED]
    for f in fields:
        text = f's."{f.field}"'
        kind = column_kind(f.sql_type)
        if f.required:
            whens.append(f"when {text} is null then ?")
            params.append(f"missing required field {f.field}")
        if kind == "timestamp":
            whens.append(f"when try_cast({text} as bigint) not between ? and ? then ?")
            params += [*TIMESTAMP_MS, out_of_range(f)]
        if kind != "text":
            cast, cast_params = _cast_sql(f)
            whens.append(f"when {text} is not null and {cast} is null then ?")
            params += cast_params
            params.append(f"wrong type for {f.field}: expected {EXPECTED[kind]}")
        if f.pattern is not None:
            whens.append(f"when {text} is not null and not regexp_full_match({text}, ?) then ?")
            params += [f.pattern, f"bad value for {f.field}: does not match {f.pattern}"]
        if (width := text_width(f)) is not None:
            whens.append(f"when strlen({text}) > ? then ?")
            params += [width, too_long(f, width)]
    return "case " + " ".join(whens) + " else ? end", [*params, "invalid record"]


def _parsed_sql(where: str) -> str:
    """Lines of a relation with their text fields (`s`) when the line is a JSON object: a JSON
    text starting with "{", parsed once (try() makes a parse error null; json_valid first
    would parse every line twice)."""
    return (
        "select file, line_number, line, fault, case when fault is null "
        "and (line[1] = '{' or starts_with(ltrim(line), '{')) "
        f"then try(json_transform(line, ?)) end as s from {where}"
    )


def events_staging_sql(table: Table, at: datetime) -> dict[str, tuple[str, list[Any]]]:
    """DuckDB statements and their bind values that validate and stage one batch of lines (the
    Arrow table `event_lines`, LINES_SCHEMA): "parse" selects them typed and flagged `ok`, and
    the others read that result as `raw_parsed`. Each line is parsed once into text fields
    (json_transform) and typed once with try_cast, so a bad line is flagged instead of failing
    the load; only flagged lines are parsed again, for their reason. Rejects name their file
    from the Arrow table `run_files` (file, source_file); `at` stamps them."""
    fields = json_fields(table)
    shape = orjson.dumps({f.field: "VARCHAR" for f in fields}).decode()
    columns = ", ".join(f.column for f in fields)
    casts = [_cast_sql(f) for f in fields]
    typed = ", ".join(f"{sql} as {f.column}" for f, (sql, _) in zip(fields, casts, strict=True))
    typed_params = [p for _, params in casts for p in params]
    checks = [_field_ok_sql(f) for f in fields]
    ok_conditions = [c for conditions, _ in checks for c in conditions]
    ok_params = [p for _, params in checks for p in params]
    reason, reason_params = _reason_sql(fields)
    # Blank lines hold no record and no reject.
    blank = "regexp_full_match(line, '\\s*')"
    lines = f"event_lines where fault is not null or line[1] = '{{' or not {blank}"
    return {
        "parse": (
            f"select file, line_number, ok, {columns}, case when not ok then line end as line, "
            f"fault from (select *, fault is null and s is not null and "
            f"{' and '.join(ok_conditions)} as ok from ("
            f"select file, line_number, line, fault, s, {typed} from ({_parsed_sql(lines)})))",
            [*ok_params, *typed_params, shape],
        ),
        "stage": (
            f"insert into {table.name} ({columns}) select {columns} from raw_parsed where ok",
            [],
        ),
        "rejects": (
            "insert into load_rejects (source_file, line_number, reason, raw_line, recorded_at) "
            f"select files.source_file, flagged.line_number, coalesce(fault, {reason}), "
            "left(rtrim(line, chr(10) || chr(13)), ?), ? "
            f"from ({_parsed_sql('raw_parsed where not ok')}) as flagged "
            "join run_files as files on files.file = flagged.file",
            [*reason_params, MAX_RAW_LINE, at, shape],
        ),
    }


@contextmanager
def _registered(raw: Any, name: str, data: pa.Table) -> Iterator[None]:
    """An Arrow table visible to DuckDB's SQL under a name, for the block's duration."""
    raw.register(name, data)
    try:
        yield
    finally:
        raw.unregister(name)


def _stage_lines(
    raw: Any,
    statements: dict[str, tuple[str, list[Any]]],
    event_lines: pa.Table,
    run_files: pa.Table,
) -> None:
    """Validate and stage one batch of lines. DuckDB reads the Arrow tables from this function's
    variables of the same names (a replacement scan): a view registered for each batch would
    hold the batch in memory until the transaction ends."""
    sql, params = statements["parse"]
    raw_parsed = raw.sql(sql, params=params).to_arrow_table()
    if raw_parsed.num_rows:
        # One thread appends: appends made in parallel, batch after batch, leave partly filled
        # row groups that the checkpoint after the commit rewrites, which takes longer.
        raw.execute("set threads = 1")
        try:
            raw.execute(*statements["stage"])
        finally:
            raw.execute("reset threads")
        raw.execute(*statements["rejects"])


def stage_events_duckdb(
    conn: Connection,
    files: list[str],
    at: datetime,
    local: dict[str, str] | None = None,
    batch_lines: int = BATCH_LINES,
) -> StageReport:
    """Load the event files into staging_events on DuckDB, `batch_lines` lines at a time
    (memory stays flat whatever the files' size); bad lines go to load_rejects. `local` maps a
    file's name to the local copy that is read (files are local when omitted)."""
    started = clock.perf_counter()
    table = model.staging_events
    paths = local or {name: name for name in files}
    reset_staging(conn, table, files)
    whole_file = file_rejects(files, file_digests(files, paths))
    insert_rejects(conn, whole_file, at)
    skipped = {r.source_file for r in whole_file}
    to_read = [
        FileToRead(n, name, paths[name]) for n, name in enumerate(files) if name not in skipped
    ]
    raw = conn.connection.driver_connection
    statements = events_staging_sql(table, at)
    names = pa.table({"file": pa.array(range(len(files)), pa.int32()), "source_file": files})
    for lines in line_batches(to_read, batch_lines):
        _stage_lines(raw, statements, lines, names)
    rows = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    return StageReport(
        table.name,
        len(files),
        rows,
        count_rejects(conn, files),
        clock.perf_counter() - started,
        reject_samples(conn, files),
    )


def stage_songs_duckdb(
    conn: Connection, files: list[str], at: datetime, local: dict[str, str] | None = None
) -> StageReport:
    """Load the song files into staging_songs on DuckDB; bad records go to load_rejects.
    `local` maps a file's name to the local copy that is read (files are local when omitted)."""
    started = clock.perf_counter()
    table = model.staging_songs
    reset_staging(conn, table, files)
    paths = local or {}
    arrow, rejects = parse_json_records(
        table, files, lambda name: read_stored(paths.get(name, name))
    )
    raw = conn.connection.driver_connection
    columns = ", ".join(c.name for c in table.columns)
    with _registered(raw, "songs_arrow", arrow):
        raw.execute(f"insert into {table.name} ({columns}) select {columns} from songs_arrow")
    insert_rejects(conn, rejects, at)
    return StageReport(
        table.name,
        len(files),
        arrow.num_rows,
        len(rejects),
        clock.perf_counter() - started,
        reject_samples(conn, files),
    )
