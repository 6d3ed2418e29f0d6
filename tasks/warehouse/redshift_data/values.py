"""Values across the Data API: bind parameters out, typed fields and column metadata back.

The Data API takes named parameters (`:name` in the SQL) as text, which Redshift converts to
the type the statement needs. It refuses a parameter whose value is empty, and has no null
parameter: a null is sent as the keyword NULL and an empty string as the literal '' in the
parameter's place. Both are constants of the driver, never a caller's text, so no value is
ever written into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

# A placeholder `:name` outside literals, quoted identifiers and comments (a cast's `::` is no
# placeholder).
_TOKENS = re.compile(
    r"'(?:[^']|'')*'"
    r'|"(?:[^"]|"")*"'
    r"|--[^\n]*"
    r"|/\*.*?\*/"
    r"|::"
    r"|(?<![A-Za-z0-9_]):(?P<name>[A-Za-z_][A-Za-z0-9_]*)",
    re.DOTALL,
)
NULL = "NULL"
EMPTY_TEXT = "''"
# Type names of the columns whose values come back as text of a number, a time or a day.
NUMERIC_TYPES = frozenset({"numeric", "decimal"})
TIMESTAMP_TYPES = frozenset({"timestamp", "timestamp without time zone"})
TIMESTAMPTZ_TYPES = frozenset({"timestamptz", "timestamp with time zone"})
DATE_TYPES = frozenset({"date"})
TIME_TYPES = frozenset({"time", "time without time zone"})


class UnsupportedValue(TypeError):
    """A bind parameter of a type the Data API cannot carry as text."""


def parameter_text(value: Any) -> str:
    """A bind parameter's value as the Data API's text, which Redshift reads back as the value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | UUID):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise UnsupportedValue(f"the Data API driver cannot bind a {type(value).__name__}")


def bind(sql: str, params: Mapping[str, Any] | None) -> tuple[str, list[dict[str, str]]]:
    """The statement and the Data API's Parameters for it: every `:name` the SQL uses, its value
    as text; a null or empty value put in its place as NULL or ''. A name the SQL uses that
    params lack is a KeyError."""
    if not params:
        return sql, []
    used: dict[str, str] = {}

    def place(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return match.group(0)
        value = params[name]
        if value is None:
            return NULL
        if isinstance(value, str) and value == "":
            return EMPTY_TEXT
        used[name] = parameter_text(value)
        return match.group(0)

    text = _TOKENS.sub(place, sql)
    return text, [{"name": name, "value": value} for name, value in used.items()]


def field_value(field: Mapping[str, Any], type_name: str) -> Any:
    """A Data API field (isNull, booleanValue, longValue, doubleValue, stringValue, blobValue)
    as Python's value, text of numbers, times and days read as the column's type says."""
    if field.get("isNull"):
        return None
    for key in ("booleanValue", "longValue", "doubleValue", "blobValue"):
        if key in field:
            return field[key]
    text = field.get("stringValue")
    if text is None:
        return None
    kind = type_name.lower()
    if kind in NUMERIC_TYPES:
        return Decimal(text)
    if kind in TIMESTAMP_TYPES or kind in TIMESTAMPTZ_TYPES:
        return _timestamp(text)
    if kind in DATE_TYPES:
        return date.fromisoformat(text)
    if kind in TIME_TYPES:
        return time.fromisoformat(text)
    return text


def _timestamp(text: str) -> datetime:
    """A timestamp's text (`2018-11-07 12:00:00.5`, with `+00` where zoned) as a datetime."""
    zoned = re.sub(r"([+-]\d\d)$", r"\1:00", text.strip())
    return datetime.fromisoformat(zoned)


def description(columns: list[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """PEP 249's description from ColumnMetadata: name, type code (the type's name), display
    size, internal size, precision, scale and nullability."""
    return [
        (
            c.get("label") or c.get("name", ""),
            c.get("typeName"),
            None,
            c.get("length"),
            c.get("precision"),
            c.get("scale"),
            bool(c.get("nullable", 1)),
        )
        for c in columns
    ]


def row_values(record: list[Mapping[str, Any]], columns: list[Mapping[str, Any]]) -> tuple:
    """A record's fields as a row tuple, each read as its column's type."""
    return tuple(
        field_value(f, str(c.get("typeName", ""))) for f, c in zip(record, columns, strict=True)
    )
