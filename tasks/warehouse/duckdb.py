"""The embedded warehouse: a DuckDB file, and staging that reads the raw JSON inside DuckDB.

DuckDB reads the event files itself (bulk, typed by the table model). Each line is validated
before it is typed, so a malformed line, a missing field or a wrong type becomes a row in
load_rejects with its file, line number and reason, while every good line loads.
Song files are small and many: reading them in Python (orjson) into one Arrow table is an order
of magnitude faster than DuckDB's per-file overhead.
"""

from __future__ import annotations

import time as clock
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import Connection, Engine, Table, bindparam, create_engine, func, select
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
from tasks.warehouse.records import (
    EXPECTED,
    INTEGER_KINDS,
    INTEGER_TEXT,
    MALFORMED,
    column_kind,
    file_rejects,
    parse_json_records,
    text_width,
    too_long,
)

DEFAULT_DUCKDB_FILE = "sparkify.duckdb"
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

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the DuckDB file (each connection opens and releases the file)."""
        file = Path(self.path).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        return create_engine(f"duckdb:///{file}", poolclass=NullPool)

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
        return f"epoch_ms(try_cast({text} as bigint))", []
    if kind in INTEGER_KINDS:
        # Digits only, as Redshift's COPY reads an INTEGER: try_cast would round 1.5 to 2.
        cast = f"try_cast({text} as {DUCKDB_TYPES[kind]})"
        return f"case when regexp_full_match({text}, ?) then {cast} end", [INTEGER_TEXT]
    return f"try_cast({text} as {DUCKDB_TYPES[kind]})", []


def _field_ok_sql(f: JsonField) -> tuple[list[str], list[Any]]:
    """Conditions a parsed line meets when this field can fill its column, and their values."""
    text = f's."{f.field}"'
    conditions, params = [], []
    if column_kind(f.sql_type) != "text":
        cast, cast_params = _cast_sql(f)
        conditions.append(f"({text} is null or {cast} is not null)")
        params += cast_params
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
        if f.required:
            whens.append(f"when {text} is null then ?")
            params.append(f"missing required field {f.field}")
        if column_kind(f.sql_type) != "text":
            cast, cast_params = _cast_sql(f)
            whens.append(f"when {text} is not null and {cast} is null then ?")
            params += cast_params
            params.append(f"wrong type for {f.field}: expected {EXPECTED[column_kind(f.sql_type)]}")
        if f.pattern is not None:
            whens.append(f"when {text} is not null and not regexp_full_match({text}, ?) then ?")
            params += [f.pattern, f"bad value for {f.field}: does not match {f.pattern}"]
        if (width := text_width(f)) is not None:
            whens.append(f"when strlen({text}) > ? then ?")
            params += [width, too_long(f, width)]
    return "case " + " ".join(whens) + " else ? end", [*params, "invalid record"]


# Each non-blank line, parsed once into text fields when it is a JSON object (a valid JSON text
# starting with "{"; the cheap first-character test spares a second parse).
_PARSED_LINES = (
    "select rowid as line_id, case when (line[1] = '{' or starts_with(ltrim(line), '{')) "
    "and json_valid(line) then json_transform(line, ?) end as s "
    "from raw_lines where not regexp_full_match(line, '\\s*')"
)


def events_staging_sql(table: Table, at: datetime) -> dict[str, tuple[str, list[Any]]]:
    """DuckDB statements and their bind values that read, validate and stage newline-delimited
    JSON. Each line is parsed once into text fields (json_transform) and cast with try_cast, so
    a bad line is flagged instead of failing the load; only flagged lines get a detailed reason
    and a line number (from their position in the split file). `at` stamps the rejects."""
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
    return {
        "files": (
            "create or replace temp table raw_files as "
            "select filename as source_file, content from read_text(?)",
            [],
        ),
        "digests": (
            "select source_file, case when length(content) > 0 "
            "then cast(hash(content) as varchar) end from raw_files",
            [],
        ),
        "split": (
            # rowid follows the split order: a line's number is its rowid less its file's first.
            "create or replace temp table raw_lines as "
            "select source_file, unnest(string_split(content, chr(10))) as line from raw_files "
            "where source_file in (select unnest(?::varchar[]))",
            [],
        ),
        "parse": (
            "create or replace temp table raw_parsed as "
            f"select line_id, s is not null and {' and '.join(ok_conditions)} as ok, {typed} "
            f"from ({_PARSED_LINES}) as parsed",
            [*ok_params, *typed_params, shape],
        ),
        "stage": (
            f"insert into {table.name} ({columns}) select {columns} from raw_parsed where ok",
            [],
        ),
        "rejects": (
            # Only the flagged lines are parsed again, to name their first problem.
            "insert into load_rejects (source_file, line_number, reason, raw_line, recorded_at) "
            f"select source_file, line_id - first_id + 1, {reason}, left(line, ?), ? from ("
            "  select lines.source_file, parsed.line_id, rtrim(lines.line, chr(13)) as line,"
            "  firsts.first_id, case when starts_with(ltrim(lines.line), '{') "
            "  and json_valid(lines.line) then json_transform(lines.line, ?) end as s"
            "  from (select line_id from raw_parsed where not ok) as parsed"
            "  join raw_lines as lines on lines.rowid = parsed.line_id"
            "  join (select source_file, min(rowid) as first_id from raw_lines"
            "  group by source_file) as firsts on firsts.source_file = lines.source_file"
            ") as flagged",
            [*reason_params, MAX_RAW_LINE, at, shape],
        ),
    }


def _rename_rejects(conn: Connection, local: dict[str, str]) -> None:
    """Name rejects by the file's source name (an s3:// URI) instead of its local copy."""
    renames = [{"name": name, "path": path} for name, path in local.items() if name != path]
    if renames:
        rejects = model.load_rejects
        conn.execute(
            rejects.update()
            .where(rejects.c.source_file == bindparam("path"))
            .values(source_file=bindparam("name")),
            renames,
        )


def stage_events_duckdb(
    conn: Connection, files: list[str], at: datetime, local: dict[str, str] | None = None
) -> StageReport:
    """Load the event files into staging_events on DuckDB; bad lines go to load_rejects.
    `local` maps a file's name to the local copy DuckDB reads (files are local when omitted)."""
    started = clock.perf_counter()
    table = model.staging_events
    paths = local or {name: name for name in files}
    reset_staging(conn, table, files)
    raw = conn.connection.driver_connection
    statements = events_staging_sql(table, at)
    if files:
        sql, _ = statements["files"]
        raw.execute(sql, [[paths[name] for name in files]])
        digests = dict(raw.execute(statements["digests"][0]).fetchall())
        whole_file = file_rejects(files, {name: digests.get(paths[name]) for name in files})
        skipped = {r.source_file for r in whole_file}
        keep = [paths[name] for name in files if name not in skipped]
        sql, _ = statements["split"]
        raw.execute(sql, [keep])
        for step in ("parse", "stage"):
            sql, params = statements[step]
            raw.execute(sql, params)
        sql, params = statements["rejects"]
        raw.execute(sql, params)
        _rename_rejects(conn, paths)
        insert_rejects(conn, whole_file, at)
        for temp in ("raw_files", "raw_lines", "raw_parsed"):
            raw.execute(f"drop table if exists {temp}")
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
        table, files, lambda name: Path(paths.get(name, name)).read_bytes()
    )
    raw = conn.connection.driver_connection
    raw.register("songs_arrow", arrow)
    try:
        columns = ", ".join(c.name for c in table.columns)
        raw.execute(f"insert into {table.name} ({columns}) select {columns} from songs_arrow")
    finally:
        raw.unregister("songs_arrow")
    insert_rejects(conn, rejects, at)
    return StageReport(
        table.name,
        len(files),
        arrow.num_rows,
        len(rejects),
        clock.perf_counter() - started,
        reject_samples(conn, files),
    )
