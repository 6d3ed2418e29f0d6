"""What a warehouse holds, as figures two warehouses can be compared by: each star table's row
count and a digest of its rows.

Every value is written one way (floats to 12 significant digits, timestamps in ISO format, NULL
as a marker) and the rows are sorted as text in Python, not by the engine (whose collations
differ), so the same rows give the same digest on DuckDB and Redshift whatever each engine's
types and drivers return.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, select

from sql import model
from tasks.common.retry import RETRY_TRANSIENT
from tasks.run.report import format_table
from tasks.warehouse.resolve import resolve_warehouse


@dataclass(frozen=True)
class TableDigest:
    """A table's row count and the SHA-256 of its rows."""

    table: str
    rows: int
    sha256: str


def canonical(value: Any) -> str:
    """One text for a value, the same whichever engine returned it."""
    if value is None:
        return "\\N"
    if isinstance(value, float | Decimal):
        return format(float(value), ".12g")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return str(value)


def table_digest(conn: Connection, table: Any) -> TableDigest:
    """The digest of one table's rows (a smoke test's tables, small enough to sort here)."""
    lines = sorted("\t".join(canonical(v) for v in row) for row in conn.execute(select(table)))
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return TableDigest(table.name, len(lines), digest.hexdigest())


def star_digests(conn: Connection) -> dict[str, TableDigest]:
    """The digest of every star table."""
    return {t.name: table_digest(conn, t) for t in model.STAR_TABLES}


@task(name="star-digests", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def warehouse_digests(warehouse: str) -> dict[str, TableDigest]:
    """Row count and content digest of every star table of a warehouse (path or block)."""
    engine = resolve_warehouse(warehouse).get_engine()
    try:
        with engine.connect() as conn:
            return star_digests(conn)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class TableComparison:
    """One star table on both warehouses: row counts, and whether the digests are equal."""

    table: str
    duckdb_rows: int | None
    redshift_rows: int | None
    equal: bool


def compare_digests(
    duckdb: dict[str, TableDigest], redshift: dict[str, TableDigest]
) -> list[TableComparison]:
    """Every table of either side, in order; equal only when both have it with the same digest."""
    tables = dict.fromkeys([*duckdb, *redshift])
    return [
        TableComparison(
            table,
            duckdb[table].rows if table in duckdb else None,
            redshift[table].rows if table in redshift else None,
            table in duckdb and duckdb[table] == redshift.get(table),
        )
        for table in tables
    ]


def format_comparison(comparisons: list[TableComparison]) -> str:
    """The comparison as a text table: table, DuckDB rows, Redshift rows, digests equal."""
    rows = [
        [c.table, c.duckdb_rows, c.redshift_rows, "yes" if c.equal else "NO"] for c in comparisons
    ]
    return format_table(["table", "duckdb rows", "redshift rows", "digests equal"], rows)
