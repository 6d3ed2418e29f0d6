"""Rejected before staging: whole-file problems (empty, duplicate or binary files), bytes that
are not UTF-8, and JSON records that cannot fill their staging columns, checked against the table
model's JSON fields.

The same rules, as SQL, validate event lines inside DuckDB (`tasks/warehouse/duckdb/sql.py`,
run by `tasks/warehouse/duckdb/staging.py`).
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import BigInteger, DateTime, Double, Integer, Table
from sqlalchemy.types import TypeEngine

from sql.fields import JsonField, json_fields
from sql.model import SOURCE_FILE_FIELD
from tasks.source.files import is_gzipped
from tasks.warehouse.gzipped import GZIP_ERRORS, corrupt_gzip_reason
from tasks.warehouse.json_text import MALFORMED, first_values, json_fault, suspect
from tasks.warehouse.protocol import MAX_RAW_LINE, Reject
from tasks.warehouse.rejects import file_rejects, unreadable_reason

EXPECTED = {
    "integer": "an integer",
    "bigint": "an integer",
    "double": "a number",
    "timestamp": "epoch milliseconds",
    "text": "a string",
}
INTEGER_KINDS = ("integer", "bigint")
# An integer as Redshift's COPY reads one from JSON: a number or a string of digits, no fraction.
INTEGER_TEXT = "[+-]?[0-9]+"
# Epoch milliseconds of the timestamps every engine here holds, years 1 to 9999 (Python's
# datetime ends there; DuckDB, PostgreSQL and Redshift go further).
TIMESTAMP_MS = (-62_135_596_800_000, 253_402_300_799_999)
# Bytes of a file's head looked at to tell a binary file from JSON text.
SNIFF_BYTES = 8192


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


def file_digests(files: list[str], paths: dict[str, str]) -> dict[str, str | None]:
    """Each file's digest for `file_rejects`, from its stored bytes (compressed for .gz, as an
    S3 ETag is): None when it has none. Only a file of the same size as another can duplicate
    it, so only files sharing a size are read and hashed; the others' size tells them apart."""
    sizes = {name: os.path.getsize(paths[name]) for name in files}
    shared = Counter(sizes.values())
    digests: dict[str, str | None] = {}
    for name, size in sizes.items():
        if size == 0:
            digests[name] = None
        elif shared[size] == 1:
            digests[name] = str(size)
        else:
            with open(paths[name], "rb") as stored:
                digests[name] = f"{size}:{hashlib.file_digest(stored, 'sha256').hexdigest()}"
    return digests


def binary_reason(name: str, head: bytes) -> str | None:
    """Why a file whose (decompressed) content starts with `head` is not JSON text, or None: gzip
    data is read as such only under a .gz name, and a head with NUL bytes that is not UTF-8
    either cannot be lines of text at all. (A NUL byte in UTF-8 text costs its line only.)"""
    if head.startswith(b"\x1f\x8b"):
        where = "inside a .gz file" if is_gzipped(name) else "in a file not named .gz"
        return f"binary file: gzip-compressed data {where}"
    if b"\0" in head[:SNIFF_BYTES] and not _utf8_head(head[:SNIFF_BYTES]):
        return "binary file: NUL bytes, not JSON text"
    return None


def _utf8_head(head: bytes) -> bool:
    """Whether the head of a file is UTF-8 text, though it may end within a character."""
    try:
        head.decode()
    except UnicodeDecodeError as error:
        return error.reason == "unexpected end of data"
    return True


def utf8_fault(line: bytes) -> str | None:
    """Why a line is not UTF-8 text (the first bad byte and its offset), or None."""
    try:
        line.decode()
    except UnicodeDecodeError as error:
        return f"invalid UTF-8: byte 0x{line[error.start]:02x} at offset {error.start}"
    return None


def escaped(line: bytes) -> str:
    """A raw line as load_rejects keeps it: text, invalid bytes as \\xNN, no line break."""
    raw = line[: 4 * MAX_RAW_LINE].decode("utf-8", "backslashreplace")
    return raw.rstrip("\r\n")[:MAX_RAW_LINE]


def read_stored(path: str) -> bytes:
    """A file's stored bytes (compressed for a .gz file)."""
    with open(path, "rb") as stored:
        return stored.read()


def text_width(f: JsonField) -> int | None:
    """The bytes a text field's column holds (Redshift's VARCHAR(n) counts UTF-8 bytes), or None."""
    return getattr(f.sql_type, "length", None) if column_kind(f.sql_type) == "text" else None


def out_of_range(f: JsonField) -> str:
    """The reason for epoch milliseconds beyond the timestamps every engine holds."""
    return f"value out of range for {f.field}: epoch milliseconds outside years 1 to 9999"


def too_long(f: JsonField, width: int) -> str:
    """The reason for a text value longer than its column: rejected on both warehouses (COPY
    runs without TRUNCATECOLUMNS), never cut short on one of them only."""
    return f"value too long for {f.field}: more than {width} bytes"


_INTEGER = re.compile(INTEGER_TEXT)
_BITS = {"integer": 32, "bigint": 64, "timestamp": 64}


@dataclass(frozen=True)
class FieldRule:
    """A JSON field's rules, prepared once per run: what its staging column takes from a parsed
    JSON value, and why a value cannot fill it."""

    field: JsonField
    kind: str
    width: int | None
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, f: JsonField) -> FieldRule:
        """The rules of a field, from the table model."""
        pattern = re.compile(f.pattern) if f.pattern is not None else None
        return cls(f, column_kind(f.sql_type), text_width(f), pattern)

    def value(self, value: Any) -> Any:
        """The value as the column takes it: text for text columns, and a string of digits as
        the integer it spells for integer columns (COPY converts those too)."""
        if value is None:
            return None
        if self.kind == "text":
            return value if type(value) is str else str(value)
        if self.kind in INTEGER_KINDS and type(value) is str and _INTEGER.fullmatch(value):
            return int(value)
        if self.kind == "double" and type(value) is int:
            return float(value)  # orjson keeps integers up to 2**64: Arrow takes them as floats
        return value

    def problem(self, value: Any) -> str | None:
        """Why a parsed JSON value cannot fill the column, or None when it can."""
        f, kind = self.field, self.kind
        value = self.value(value)
        if value is None:
            return f"missing required field {f.field}" if f.required else None
        if kind == "text":
            return self._text_problem(value)
        is_int = type(value) is int
        if not (is_int or (kind == "double" and type(value) is float)):
            return f"wrong type for {f.field}: expected {EXPECTED[kind]}"
        if kind == "timestamp" and not TIMESTAMP_MS[0] <= value <= TIMESTAMP_MS[1]:
            return out_of_range(f)
        bits = _BITS.get(kind)
        if bits and not _in_bits(bits, value, value):
            return f"wrong type for {f.field}: integer out of range"
        if self.pattern is not None and not self.pattern.fullmatch(str(value)):
            return f"bad value for {f.field}: {f.pattern_says}"
        return None

    def _text_problem(self, text: str) -> str | None:
        f = self.field
        if self.pattern is not None and not self.pattern.fullmatch(text):
            return f"bad value for {f.field}: {f.pattern_says}"
        if self.width is not None and _wider(text, self.width):
            return too_long(f, self.width)
        return None


def _wider(text: str, width: int) -> bool:
    """Whether a text takes more than `width` UTF-8 bytes (a character is at most 4 bytes: most
    texts need no encoding to be measured)."""
    return len(text) * 4 > width and len(text.encode()) > width


def _in_bits(bits: int, lowest: int, highest: int) -> bool:
    """Whether integers from lowest to highest fit a signed integer of that many bits."""
    return -(2 ** (bits - 1)) <= lowest and highest < 2 ** (bits - 1)


def _arrow_type(f: JsonField) -> pa.DataType:
    return {
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "timestamp": pa.int64(),
        "text": pa.string(),
    }[column_kind(f.sql_type)]


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block: parsing 20k records makes
    hundreds of thousands of objects, and each collection they set off walks every object of
    the process (a flow's process holds millions), while records hold no reference cycle and
    are freed by their reference counts."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def parse_json_records(
    table: Table, files: list[str], read: Callable[[str], bytes] | None = None
) -> tuple[pa.Table, list[Reject]]:
    """Parse JSON files (one or more objects per file, one per line; gzipped when the name ends
    in .gz) into an Arrow table typed by the staging table's model, and the rejected records
    with file, line and reason. `read` gives a file's stored bytes (from its path by default)."""
    with collection_paused():
        return _parsed_records(table, files, read or read_stored)


def _parsed_records(
    table: Table, files: list[str], reader: Callable[[str], bytes]
) -> tuple[pa.Table, list[Reject]]:
    rules = [FieldRule.of(f) for f in json_fields(table)]
    stored: dict[str, bytes] = {}
    rejects = []
    for name in files:
        try:
            stored[name] = reader(name)
        except OSError as error:
            rejects.append(Reject(name, 0, unreadable_reason(error)))
    # Files are told apart by their whole content (held anyway): no digest to compute.
    rejects += file_rejects(list(stored), {name: data or None for name, data in stored.items()})
    skipped = {r.source_file for r in rejects}
    records: list[_Record] = []
    keys = [orjson.dumps(r.field.field) for r in rules]
    for name in files:
        if name in skipped:
            continue
        content, fault = stored_content(name, stored[name])
        if fault is not None:
            rejects.append(fault)
            continue
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            record = _json_object(line, keys)
            if isinstance(record, str):
                rejects.append(Reject(name, number, record, escaped(line)))
                continue
            record[SOURCE_FILE_FIELD] = name
            records.append((name, number, line, record))
    objects = [record for _, _, _, record in records]
    columns = [[record.get(r.field.field) for record in objects] for r in rules]
    if not all(_plainly_valid(rule, column) for rule, column in zip(rules, columns, strict=True)):
        columns = _checked_columns(rules, records, rejects)
    position = {name: n for n, name in enumerate(files)}
    rejects.sort(key=lambda r: (position[r.source_file], r.line_number))
    schema = pa.schema([pa.field(r.field.column, _arrow_type(r.field)) for r in rules])
    arrays = [pa.array(c, type=t) for c, t in zip(columns, schema.types, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema), rejects


# A parsed JSON object of a file: the file, its line number, the line, the object.
_Record = tuple[str, int, bytes, dict[str, Any]]


def _json_object(line: bytes, keys: list[bytes]) -> dict[str, Any] | str:
    """A line's JSON object (the first value of a key given twice), or the reason it holds
    none (tasks/warehouse/json_text.py)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return utf8_fault(line) or MALFORMED
    if suspect(line) and (fault := json_fault(line)):
        return fault
    record = first_values(line, keys) or record
    return record if isinstance(record, dict) else MALFORMED


def _plainly_valid(rule: FieldRule, values: list[Any]) -> bool:
    """Whether every value fills the column as it is, checked a column at a time (types, range
    and width over the whole column): then no record has a problem with this field and no value
    needs converting. False leaves the values to be checked one by one (FieldRule.problem)."""
    kinds = set(map(type, values))
    if rule.field.required and type(None) in kinds:
        return False
    kinds.discard(type(None))
    present = [v for v in values if v is not None] if kinds else []
    if rule.kind == "text":
        if not kinds <= {str} or rule.pattern is not None:
            return False
        width = rule.width
        # Only texts of more than width / 4 characters can be too wide (see _wider).
        return width is None or not any(_wider(v, width) for v in present if len(v) * 4 > width)
    if rule.kind == "double":
        # Arrow takes a Python int for a double within 64 bits; FieldRule.value converts others.
        ints = [v for v in present if type(v) is int] if int in kinds else []
        return kinds <= {float, int} and _in_bits(64, min(ints, default=0), max(ints, default=0))
    if not kinds <= {int} or rule.pattern is not None:
        return False
    low, high = TIMESTAMP_MS if rule.kind == "timestamp" else (None, None)
    lowest, highest = min(present, default=0), max(present, default=0)
    in_bits = _in_bits(_BITS[rule.kind], lowest, highest)
    return in_bits and (low is None or (low <= lowest and highest <= high))


def _checked_columns(
    rules: list[FieldRule], records: list[_Record], rejects: list[Reject]
) -> list[list[Any]]:
    """The columns of the records that pass every rule, checked one by one; the others go to
    `rejects` with their first problem."""
    columns: list[list[Any]] = [[] for _ in rules]
    for name, number, line, record in records:
        reason, values = _checked_record(record, rules)
        if reason is not None:
            rejects.append(Reject(name, number, reason, escaped(line)))
            continue
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _checked_record(record: dict[str, Any], rules: list[FieldRule]) -> tuple[str | None, list[Any]]:
    """A record's first problem, or None and its values in column order."""
    values = [record.get(r.field.field) for r in rules]
    for rule, value in zip(rules, values, strict=True):
        if reason := rule.problem(value):
            return reason, []
    return None, [r.value(v) for r, v in zip(rules, values, strict=True)]


def stored_content(name: str, data: bytes) -> tuple[bytes, Reject | None]:
    """A file's content from its stored bytes, or the reject of a whole file that holds no
    JSON text (corrupt gzip data, a binary file)."""
    if is_gzipped(name):
        try:
            data = gzip.decompress(data)
        except GZIP_ERRORS as error:
            return b"", Reject(name, 0, corrupt_gzip_reason(error))
    reason = binary_reason(name, data[:SNIFF_BYTES])
    return data, (Reject(name, 0, reason, escaped(data[:64])) if reason else None)
