"""Descriptive text cut to its star column's width: the transforms keep `cut_to` characters of
such a staging column (sql/model.py), and each run counts the values they cut, so that a cut is
said, never silent."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Integer, case, cast, func, literal_column, select

from sql import model


def cut_columns() -> list[Column]:
    """The staging columns whose text the transforms cut, in table and column order."""
    return [
        c
        for table in (model.staging_events, model.staging_songs)
        for c in table.columns
        if c.info.get("cut_to")
    ]


def count_cut(conn: Connection) -> dict[str, int]:
    """How many staged values are longer than the characters kept of them, by JSON field
    (only those with any), in the run's transaction."""
    counts: dict[str, int] = {}
    for table in (model.staging_events, model.staging_songs):
        columns = [c for c in cut_columns() if c.table is table]
        # One and zero are written in the SQL, not bound: a driver that binds every value as
        # text (the Data API's) would sum text.
        one, zero = literal_column("1"), literal_column("0")
        longer = [
            cast(func.sum(case((func.length(c) > c.info["cut_to"], one), else_=zero)), Integer)
            for c in columns
        ]
        row = conn.execute(select(*longer).select_from(table)).one()
        counts.update({c.info["json"]: int(n or 0) for c, n in zip(columns, row, strict=True)})
    return {field: n for field, n in counts.items() if n}


def describe_cut(counts: dict[str, int]) -> str:
    """The cut values in one line: `userAgent 2 (to 256 characters), …`."""
    kept = {c.info["json"]: c.info["cut_to"] for c in cut_columns()}
    return ", ".join(f"{field} {n:,} (to {kept[field]} characters)" for field, n in counts.items())
