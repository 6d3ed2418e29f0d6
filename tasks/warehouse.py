"""Warehouse blocks: the configuration that chooses where the star schema lives.

A flow takes a block (or a DuckDB file path) and asks it for an engine and for staging; nothing
else in the pipeline knows which warehouse it is talking to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from sql import model
from tasks.source import Source
from tasks.staging import StageReport, stage_events_duckdb, stage_songs_duckdb

DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")


class Warehouse(Protocol):
    """What the flows need of a warehouse."""

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the warehouse."""
        ...

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Load event files of the source into staging_events."""
        ...

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Load song files of the source into staging_songs."""
        ...

    def describe(self) -> str:
        """Where the warehouse is, for logs (never a secret)."""
        ...


class DuckDBWarehouse(Block):
    """An embedded DuckDB file holding the staging tables and the star schema."""

    _block_type_name = "Sparkify DuckDB Warehouse"
    _block_type_slug = "sparkify-duckdb-warehouse"
    _description = "A local DuckDB file used as Sparkify's warehouse (laptops, CI, demos)."

    path: str = Field(
        default="sparkify.duckdb",
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
        """Read, validate and stage event files with DuckDB (S3 objects are fetched first)."""
        return stage_events_duckdb(conn, files, at, source.localize(files))

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Parse and stage song files through Arrow (S3 objects are fetched first)."""
        return stage_songs_duckdb(conn, files, at, source.localize(files))

    def describe(self) -> str:
        """The DuckDB file's path."""
        return f"duckdb:{Path(self.path).expanduser().resolve()}"


def resolve_warehouse(spec: str) -> Warehouse:
    """A warehouse from a DuckDB file path or a saved warehouse block, named
    `sparkify-duckdb-warehouse/NAME` or `sparkify-redshift-warehouse/NAME`."""
    if spec == ":memory:":
        raise ValueError("an in-memory DuckDB cannot outlive the run: give a file path")
    if spec.endswith(DUCKDB_SUFFIXES) or Path(spec).exists():
        return DuckDBWarehouse(path=spec)
    if "/" not in spec:
        raise ValueError(
            f"warehouse {spec!r} is neither a DuckDB file (*.duckdb) nor a block name "
            "(sparkify-duckdb-warehouse/NAME or sparkify-redshift-warehouse/NAME)"
        )
    # Loading by slug needs the block's class registered: importing the module does that.
    import tasks.redshift  # noqa: F401

    return Block.load(spec)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed when the block ends normally, rolled back on any exception."""
    with engine.begin() as conn:
        yield conn


def create_tables(conn: Connection, drop: bool = False) -> list[str]:
    """Create every table of the model that is missing (dropping them all first if asked)."""
    if drop:
        model.metadata.drop_all(conn)
    model.metadata.create_all(conn, checkfirst=True)
    return [t.name for t in model.ALL_TABLES]
