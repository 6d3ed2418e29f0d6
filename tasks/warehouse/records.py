"""Rejected before staging: whole-file problems (empty or duplicate files) and JSON records that
cannot fill their staging columns, checked against the table model's JSON fields.

The same rules, as SQL, validate event lines inside DuckDB (`tasks/warehouse/duckdb.py`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import BigInteger, DateTime, Double, Integer, Table
from sqlalchemy.types import TypeEngine

from sql.model import JsonField, json_fields
from tasks.warehouse.base import MAX_RAW_LINE, Reject

EXPECTED = {
    "integer": "an integer",
    "bigint": "an integer",
    "double": "a number",
    "timestamp": "epoch milliseconds",
    "text": "a string",
}
MALFORMED = "malformed JSON: not a valid JSON object"
INTEGER_KINDS = ("integer", "bigint")
# An integer as Redshift's COPY reads one from JSON: a number or a string of digits, no fraction.
INTEGER_TEXT = "[+-]?[0-9]+"


def column_kind(sql_type: TypeEngine) -> str:
    """The validation kind of a staging column's SQL type."""
    if isinstance(sql_type, BigInteger):
        return "bigint"
    if isinstance(sql_type, Integer):
        return "integer"
    if isinstance(sql_type, Double):
        return "double"
    if isinstance(sql_type, DateTime):
        return "timestamp"
    return "text"


def file_rejects(files: list[str], digests: dict[str, str | None]) -> list[Reject]:
    """Whole-file problems: empty files (digest None: no bytes at all, what an S3 listing shows
    as size 0; a file of blank lines holds no record and no reject, as blank lines anywhere),
    and files with the same content as an earlier one; their records are not staged (a
    duplicate's would be loaded twice)."""
    rejects = []
    seen: dict[str, str] = {}
    for name in files:
        digest = digests.get(name)
        if digest is None:
            rejects.append(Reject(name, 0, "empty file"))
            continue
        first = seen.setdefault(digest, name)
        if first != name:
            rejects.append(Reject(name, 0, f"duplicate file: same content as {first}"))
    return rejects


def text_width(f: JsonField) -> int | None:
    """The bytes a text field's column holds (Redshift's VARCHAR(n) counts UTF-8 bytes), or None."""
    return getattr(f.sql_type, "length", None) if column_kind(f.sql_type) == "text" else None


def too_long(f: JsonField, width: int) -> str:
    """The reason for a text value longer than its column: rejected on both warehouses (COPY
    runs without TRUNCATECOLUMNS), never cut short on one of them only."""
    return f"value too long for {f.field}: more than {width} bytes"


def json_value(f: JsonField, value: Any) -> Any:
    """A parsed JSON value as its staging column takes it: text for text columns, and a string
    of digits as the integer it spells for integer columns (COPY converts those too)."""
    kind = column_kind(f.sql_type)
    if isinstance(value, str) and kind in INTEGER_KINDS and re.fullmatch(INTEGER_TEXT, value):
        return int(value)
    if value is not None and kind == "text":
        return str(value)
    return value


def check_value(f: JsonField, value: Any) -> str | None:
    """Why a parsed JSON value cannot fill its staging column, or None when it can."""
    value = json_value(f, value)
    if value is None:
        return f"missing required field {f.field}" if f.required else None
    kind = column_kind(f.sql_type)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "bigint": isinstance(value, int) and not isinstance(value, bool),
        "double": is_number,
        "timestamp": isinstance(value, int) and not isinstance(value, bool),
        "text": isinstance(value, str) or is_number,
    }[kind]
    if not ok:
        return f"wrong type for {f.field}: expected {EXPECTED[kind]}"
    bits = {"integer": 32, "bigint": 64, "timestamp": 64}.get(kind)
    if bits and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        return f"wrong type for {f.field}: integer out of range"
    if f.pattern is not None and not re.fullmatch(f.pattern, str(value)):
        return f"bad value for {f.field}: does not match {f.pattern}"
    width = text_width(f)
    if width is not None and len(str(value).encode()) > width:
        return too_long(f, width)
    return None


def _arrow_type(f: JsonField) -> pa.DataType:
    return {
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "timestamp": pa.int64(),
        "text": pa.string(),
    }[column_kind(f.sql_type)]


def parse_json_records(
    table: Table, files: list[str], read: Callable[[str], bytes] | None = None
) -> tuple[pa.Table, list[Reject]]:
    """Parse JSON files (one or more objects per file, one per line) into an Arrow table typed by
    the staging table's model, and the rejected records with file, line and reason."""
    fields = json_fields(table)
    columns: dict[str, list[Any]] = {f.column: [] for f in fields}
    rejects: list[Reject] = []
    reader = read or (lambda name: Path(name).read_bytes())
    contents = {name: reader(name) for name in files}
    digests = {
        name: hashlib.sha256(content).hexdigest() if content else None
        for name, content in contents.items()
    }
    rejects += file_rejects(files, digests)
    skipped = {r.source_file for r in rejects}
    for name in files:
        if name in skipped:
            continue
        for number, line in enumerate(contents[name].splitlines(), start=1):
            if not line.strip():
                continue
            reason, record = None, None
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                reason = MALFORMED
            if reason is None and not isinstance(record, dict):
                reason = MALFORMED
            if reason is None:
                reason = next(
                    (r for f in fields if (r := check_value(f, record.get(f.field)))), None
                )
            if reason is not None:
                raw = line[:MAX_RAW_LINE].decode("utf-8", "replace")
                rejects.append(Reject(name, number, reason, raw))
                continue
            for f in fields:
                columns[f.column].append(json_value(f, record.get(f.field)))
    schema = pa.schema([pa.field(f.column, _arrow_type(f)) for f in fields])
    return pa.table(columns, schema=schema), rejects
