"""How wide a source's text really is: the widest value of each text field of the staging
tables against what the table model keeps of it. Descriptive text (names, places, user agents)
is cut by the transforms to a number of characters (sql/model.py, cut_to), measured here in
characters; other text is a reject when it is wider than its staging column, in UTF-8 bytes
(Redshift's VARCHAR(n) counts bytes), measured here in bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Table

from sql import model
from sql.fields import json_fields
from sql.model import SOURCE_FILE_FIELD
from tasks.source.files import Source
from tasks.warehouse.duckdb.records import column_kind, read_stored, stored_content, text_width


@dataclass
class FieldWidth:
    """One text field: what the model keeps of it (characters where its values are cut, else
    bytes), the widest value seen and how many values are wider (each cut, or a reject), with
    the first file holding one."""

    table: str
    field: str
    declared: int | None
    cut: bool = False
    widest: int = 0
    wider: int = 0
    example: str | None = None

    def size(self, value: object) -> int:
        """The value's width in this field's unit."""
        text = str(value)
        return len(text) if self.cut else len(text.encode("utf-8", "surrogatepass"))

    def row(self) -> dict[str, object]:
        """The field as a report row."""
        return {
            "table": self.table,
            "field": self.field,
            "kept": self.declared,
            "widest": self.widest,
            "unit": "characters" if self.cut else "bytes",
            "values wider": self.wider,
            "wider values are": "cut" if self.cut else "rejected",
            "first file with one": self.example or "",
        }


def _records(source: Source, files: list[str]) -> Iterator[tuple[str, dict]]:
    """The JSON objects of the files, line by line, with their file (what is no object is left
    to the load's rejects)."""
    for name, path in source.local_copies(files).items():
        content, fault = stored_content(name, read_stored(path))
        if fault is not None:
            continue
        for line in content.splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield name, record


def measure(table: Table, source: Source, files: list[str]) -> list[FieldWidth]:
    """The widths of the table's text fields over the files' records."""
    fields = [
        f
        for f in json_fields(table)
        if column_kind(f.sql_type) == "text" and f.field != SOURCE_FILE_FIELD
    ]
    widths = {}
    for f in fields:
        cut_to = table.c[f.column].info.get("cut_to")
        kept = cut_to or text_width(f)
        widths[f.field] = FieldWidth(table.name, f.field, kept, cut=cut_to is not None)
    for name, record in _records(source, files):
        for field, width in widths.items():
            value = record.get(field)
            if value is None:
                continue
            size = width.size(value)
            width.widest = max(width.widest, size)
            if width.declared is not None and size > width.declared:
                width.wider += 1
                width.example = width.example or name
    return list(widths.values())


@task(name="measure-widths", cache_policy=NO_CACHE)
def measure_widths(source: Source, events: list[str], songs: list[str]) -> list[FieldWidth]:
    """The widths of every text field of the event and song files."""
    return measure(model.staging_events, source, events) + measure(
        model.staging_songs, source, songs
    )
