"""DuckDB's SQL that validates, types and stages a batch of event lines, drawn from the table
model: a malformed line, a missing field, a wrong type or a value out of range becomes a reject
with its reason, and every good line loads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Table

from sql.fields import JsonField, json_fields
from tasks.warehouse.duckdb.records import (
    EXPECTED,
    INTEGER_KINDS,
    INTEGER_TEXT,
    TIMESTAMP_MS,
    column_kind,
    out_of_range,
    text_width,
    too_long,
)
from tasks.warehouse.json_text import MALFORMED
from tasks.warehouse.protocol import MAX_RAW_LINE

# DuckDB type of each kind of staging column, as read from JSON (timestamps as epoch ms).
DUCKDB_TYPES = {
    "integer": "integer",
    "bigint": "bigint",
    "double": "double",
    "timestamp": "bigint",
    "text": "varchar",
}


def _texts(fields: list[JsonField]) -> list[str]:
    """Each field's text in a parsed line: an item of the list `s` of the fields' texts."""
    return [f"s[{n}]" for n in range(1, len(fields) + 1)]


def _cast_sql(f: JsonField, text: str) -> tuple[str, list[Any]]:
    """The staging column's value from the field's text (None when it does not convert), and
    its bind values."""
    kind = column_kind(f.sql_type)
    if kind == "text":
        # userId '' marks a logged-out event: staged as null.
        return (f"nullif({text}, '')" if f.pattern is not None else text), []
    if kind == "timestamp":
        ms = f"try_cast({text} as bigint)"
        return f"case when {ms} between ? and ? then epoch_ms({ms}) end", list(TIMESTAMP_MS)
    if kind in INTEGER_KINDS:
        # Digits only, as Redshift's COPY reads an INTEGER: try_cast would round 1.5 to 2 and
        # read ' 7', '1e3' or '0x1F'. A text that is the integer's own spelling (a JSON integer
        # reads so) needs no pattern; only the others are matched against it.
        cast = f"try_cast({text} as {DUCKDB_TYPES[kind]})"
        digits = f"{text} = cast({cast} as varchar) or regexp_full_match({text}, ?)"
        return f"case when {digits} then {cast} end", [INTEGER_TEXT]
    return f"try_cast({text} as {DUCKDB_TYPES[kind]})", []


def _field_ok_sql(f: JsonField, text: str) -> tuple[list[str], list[Any]]:
    """Conditions a parsed line meets when this field can fill its column (whose value, typed
    once, is selected beside the parsed text fields), and their values."""
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


def _needed_sql(fields: list[JsonField], texts: list[str]) -> list[tuple[str, JsonField, str]]:
    """For each field needed where another column holds a value (trailing blanks aside, as the
    transforms compare): the SQL that is true when the record lacks it there, the field, and
    that value (bound)."""
    text_of = {f.column: text for f, text in zip(fields, texts, strict=True)}
    return [
        (
            f"(rtrim({text_of[f.needed_when[0]]}, ' ') = ? and coalesce({text}, '') = '')",
            f,
            f.needed_when[1],
        )
        for f, text in zip(fields, texts, strict=True)
        if f.needed_when is not None
    ]


def _reason_sql(fields: list[JsonField]) -> tuple[str, list[Any]]:
    """A CASE expression naming the first problem of a parsed line, and its bind values."""
    whens = ["when s is null then ?"]
    params: list[Any] = [MALFORMED]
    for f, text in zip(fields, _texts(fields), strict=True):
        kind = column_kind(f.sql_type)
        if f.required:
            whens.append(f"when {text} is null then ?")
            params.append(f"missing required field {f.field}")
        if kind == "timestamp":
            whens.append(f"when try_cast({text} as bigint) not between ? and ? then ?")
            params += [*TIMESTAMP_MS, out_of_range(f)]
        if kind != "text":
            cast, cast_params = _cast_sql(f, text)
            whens.append(f"when {text} is not null and {cast} is null then ?")
            params += cast_params
            params.append(f"wrong type for {f.field}: expected {EXPECTED[kind]}")
        if f.pattern is not None:
            whens.append(f"when {text} is not null and not regexp_full_match({text}, ?) then ?")
            params += [f.pattern, f"bad value for {f.field}: {f.pattern_says}"]
        if (width := text_width(f)) is not None:
            whens.append(f"when strlen({text}) > ? then ?")
            params += [width, too_long(f, width)]
    for lacking, f, value in _needed_sql(fields, _texts(fields)):
        whens.append(f"when {lacking} then ?")
        params += [value, f.needed_says]
    return "case " + " ".join(whens) + " else ? end", [*params, "invalid record"]


def _parsed_sql(where: str) -> str:
    """Lines of a relation with the texts of their fields (the list `s`, in field order) when
    the line is a JSON object: a JSON text starting with "{" after JSON's white space, parsed
    once (try() makes a parse error null; json_valid first would parse every line twice).
    json_extract_string reads a value as json_transform to VARCHAR does, with the same reader,
    in three quarters of its time."""
    return (
        "select file, line_number, line, fault, case when fault is null "
        "and (line[1] = '{' or starts_with(ltrim(line, ' ' || chr(9) || chr(13)), '{')) "
        f"then try(json_extract_string(line, ?)) end as s from {where}"
    )


def _typed_and_ok(fields: list[JsonField], texts: list[str]) -> tuple[str, str, list[Any]]:
    """From the fields' texts: the typed staging columns (a select list), and the condition
    that a row of them meets when every field can fill its column (over those columns and the
    texts), with the bind values of the condition and then of the select list."""
    casts = [_cast_sql(f, text) for f, text in zip(fields, texts, strict=True)]
    typed = ", ".join(f"{sql} as {f.column}" for f, (sql, _) in zip(fields, casts, strict=True))
    checks = [_field_ok_sql(f, text) for f, text in zip(fields, texts, strict=True)]
    checks += [([f"not coalesce({sql}, false)"], [v]) for sql, _, v in _needed_sql(fields, texts)]
    ok = " and ".join(c for conditions, _ in checks for c in conditions)
    params = [p for _, params in checks for p in params] + [p for _, ps in casts for p in ps]
    return typed, ok, params


def events_staging_sql(table: Table, at: datetime) -> dict[str, tuple[str, list[Any]]]:
    """DuckDB statements and their bind values that validate and stage one batch of lines (the
    Arrow table `event_lines`, LINES_SCHEMA): "stage" inserts the good lines, typed, and
    "rejects" keeps the others with their reason ("staged_by_file" counts the lines each file
    staged). Each line is parsed once into text fields
    (json_extract_string) and typed once with try_cast, so a bad line is flagged instead of failing
    the load; "rejects" parses again, and only a batch where some line did not load runs it.
    Rejects name their file from the registered Arrow table `stage_files` (file, source_file);
    `at` stamps them."""
    fields = json_fields(table)
    paths = [f"$.{orjson.dumps(f.field).decode()}" for f in fields]
    texts = _texts(fields)
    columns = ", ".join(f.column for f in fields)
    typed, ok, typed_params = _typed_and_ok(fields, texts)
    reason, reason_params = _reason_sql(fields)
    # Blank lines hold no record and no reject.
    blank = "regexp_full_match(line, '\\s*')"
    lines = f"event_lines where fault is not null or line[1] = '{{' or not {blank}"
    parsed = (
        f"select file, line_number, ok, {columns}, case when not ok then line end as line, "
        f"fault from (select *, fault is null and s is not null and {ok} as ok from ("
        f"select file, line_number, line, fault, s, {typed} from ({_parsed_sql(lines)})))"
    )
    parsed_params = [*typed_params, paths]
    # Materialized: a filter on `ok` pushed into the projection would parse every line again
    # for each condition that reads its fields.
    parsed = f"with parsed as materialized ({parsed}) "
    return {
        "stage": (
            f"insert into {table.name} ({columns}) {parsed}select {columns} from parsed where ok",
            parsed_params,
        ),
        # Records each file of the batch staged, for a batch where some line did not load.
        "staged_by_file": (
            f"{parsed}select file, count(*) from parsed where ok group by file",
            parsed_params,
        ),
        "rejects": (
            "insert into load_rejects (source_file, line_number, reason, raw_line, recorded_at) "
            f"{parsed}select files.source_file, flagged.line_number, coalesce(fault, {reason}), "
            "left(rtrim(line, chr(10) || chr(13)), ?), ? "
            f"from ({_parsed_sql('parsed where not ok')}) as flagged "
            "join stage_files as files on files.file = flagged.file",
            [*parsed_params, *reason_params, MAX_RAW_LINE, at, paths],
        ),
    }


# Columns that the run's own staging_events has beyond the model's, for files staged whole by
# DuckDB's read_json: the file a row came from (its index) and whether the row loads.
FILE_COLUMN, OK_COLUMN = "_file", "_ok"
WHOLE_FILE_COLUMNS = {FILE_COLUMN: "integer", OK_COLUMN: "boolean"}


def whole_file_checks_sql(table: Table) -> dict[str, str]:
    """DuckDB's statements after read_json staged a group of files: "by_file" gives each file
    of the group (bound: its lowest and highest index) with its rows and whether every one
    loads; "redo" takes out the rows of the files bound as a list, to be staged line by line."""
    return {
        "by_file": f"select {FILE_COLUMN}, count(*), bool_and({OK_COLUMN}) from {table.name} "
        f"where {FILE_COLUMN} between ? and ? group by {FILE_COLUMN}",
        "redo": f"delete from {table.name} where list_contains(?, {FILE_COLUMN})",
    }


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def events_read_json_sql(table: Table, paths: list[str]) -> tuple[str, list[Any]]:
    """DuckDB's statement that stages whole event files (`paths`) read by read_json, one JSON
    text a line, and its bind values. read_json reads each field as text as json_extract_string
    does (its VARCHAR columns), through the same reader, and is typed and checked by the same
    rules as lines are; a line that is not a JSON object (malformed, invalid UTF-8) reads as a
    row of nulls, and blank lines as no row. Every row goes in with its file (`_file`, from the
    registered Arrow table `json_files` (file, path)) and whether it loads (`_ok`): a row with
    no field at all (which may be such a line) is not taken as good, so its file is staged
    again line by line, where it gets its line number and reason."""
    fields = json_fields(table)
    texts = [f"t{n}" for n in range(len(fields))]
    typed, ok, params = _typed_and_ok(fields, texts)
    columns = ", ".join(f.column for f in fields)
    renames = ", ".join(f"{_quoted(f.field)} as {t}" for f, t in zip(fields, texts, strict=True))
    read = (
        "read_json(?, columns = ?, format = 'newline_delimited', records = true, "
        "ignore_errors = true, filename = true)"
    )
    return (
        f"insert into {table.name} ({columns}, {', '.join(WHOLE_FILE_COLUMNS)}) "
        f"select {columns}, file, coalesce({', '.join(texts)}) is not null and {ok} "
        f"from (select files.file, {', '.join(texts)}, {typed} "
        f"from (select filename, {renames} from {read}) as lines "
        "join json_files as files on files.path = lines.filename)",
        [*params, paths, {f.field: "varchar" for f in fields}],
    )
