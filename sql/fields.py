"""A staging table's columns as the JSON fields they are loaded from, with what each must hold
(the column info that sql/model.py's `_staged` writes): what both warehouses' staging checks
and Redshift's JSONPaths documents are drawn from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy.sql.type_api import TypeEngine


@dataclass(frozen=True)
class JsonField:
    """A staging column and the JSON field it is loaded from."""

    column: str
    field: str
    sql_type: TypeEngine
    required: bool
    pattern: str | None
    pattern_says: str | None
    # (column, value): the field needs a value (not null nor '') where that column has this one.
    needed_when: tuple[str, str] | None = None

    @property
    def needed_says(self) -> str:
        """What a reject says of a record without this field where it is needed."""
        column, value = self.needed_when or ("", "")
        return f"missing {self.field}: needed where {column} is {value}"


def json_fields(table: Table) -> list[JsonField]:
    """The JSON fields of a staging table, in column order."""
    return [
        JsonField(
            c.name,
            c.info["json"],
            c.type,
            bool(c.info.get("required")),
            c.info.get("pattern"),
            c.info.get("pattern_says"),
            c.info.get("needed_when"),
        )
        for c in table.columns
        if "json" in c.info
    ]


def jsonpaths(table: Table) -> dict[str, list[str]]:
    """The Redshift JSONPaths document for a staging table: one entry per column, in order."""
    return {"jsonpaths": [f"$['{f.field}']" for f in json_fields(table)]}
