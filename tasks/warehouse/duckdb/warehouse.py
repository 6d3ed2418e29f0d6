"""The embedded warehouse: a DuckDB file, held by one connection for a run.

Staging reads the raw JSON inside DuckDB (event files) and in Python (song files), the two side
by side: tasks/warehouse/duckdb/staging.py.
"""

from __future__ import annotations

import re
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb_engine  # noqa: F401 - the SQLAlchemy dialect, imported with its module, not at a run's first connection
import pyarrow as pa
from prefect.blocks.core import Block
from pydantic import Field
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tasks.common.blocks import SchemaOnce
from tasks.common.errors import WarehouseBusy
from tasks.common.logs import run_logger
from tasks.source.files import RunFiles, Source
from tasks.warehouse.duckdb.staging import (
    insert_arrow,
    parse_songs,
    stage_events_duckdb,
    stage_files_duckdb,
    stage_songs_duckdb,
)
from tasks.warehouse.hold import DEFAULT_LOCK_WAIT_SECONDS, held_transaction, lock_wait_seconds
from tasks.warehouse.protocol import StageReport, StageResult

DEFAULT_DUCKDB_FILE = "sparkify.duckdb"
# With DuckDB's memory bounded, a run's peak memory stays flat whatever its size.
DEFAULT_MEMORY_LIMIT = "768MB"


class DuckDBWarehouse(SchemaOnce, Block):
    """An embedded DuckDB file holding the staging tables and the star schema."""

    _block_type_name = "Sparkify DuckDB Warehouse"
    _block_type_slug = "sparkify-duckdb-warehouse"
    _description = "A local DuckDB file used as Sparkify's warehouse (laptops, CI, demos)."

    path: str = Field(
        default=DEFAULT_DUCKDB_FILE,
        description="Path of the DuckDB database file; created on first use.",
    )
    memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory_limit (e.g. '1GB'): beyond it DuckDB spills to temporary "
        "files beside the database instead of growing (its own default is 80% of the RAM).",
    )
    lock_wait_seconds: float = Field(
        default=DEFAULT_LOCK_WAIT_SECONDS,
        ge=0,
        description="Seconds a run waits while another process holds the file open (another "
        "run, an analyst's session) before it gives up; SPARKIFY_WAREHOUSE_WAIT overrides it.",
    )

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the DuckDB file (each connection opens and releases the file)."""
        file = Path(self.path).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": self.memory_limit}
        engine = create_engine(
            f"duckdb:///{file}", poolclass=NullPool, connect_args={"config": config}
        )
        event.listen(engine, "connect", _quiet)
        return engine

    @contextmanager
    def hold(self) -> Iterator[Connection]:
        """One connection for the whole run: while it is open no other process can open the
        file, so nothing comes between the run's first write and its commit."""
        wait = lock_wait_seconds(self.lock_wait_seconds)
        conn = connect_when_free(self.get_engine(), wait, self.describe())
        with held_transaction(conn):
            yield conn

    def stage_events(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Read, validate and stage event files with DuckDB (from local copies of the files)."""
        return stage_events_duckdb(conn, files, at, source.local_copies(files))

    def stage_songs(
        self, conn: Connection, source: Source, files: list[str], at: datetime
    ) -> StageReport:
        """Parse and stage song files through Arrow (from local copies of the files)."""
        return stage_songs_duckdb(conn, files, at, parse_songs(files, source.local_copies(files)))

    def stage_files(
        self, conn: Connection, source: Source, files: RunFiles, at: datetime
    ) -> StageResult:
        """Stage the run's event and song files, the song files parsed while DuckDB reads the
        event files."""
        return stage_files_duckdb(conn, source, files, at)

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows as one Arrow table (DuckDB parses each bound value of a VALUES list:
        20k rows would take seconds)."""
        if rows:
            insert_arrow(conn, table, pa.Table.from_pylist(rows))

    def part_bytes(self) -> int | None:
        """Two thirds of the memory limit: staged rows take about two thirds of their event
        files' bytes in memory (297 MiB for the 455 MB of 1M events), so a part's staged rows
        fill under half the limit, and the plays and transforms have the rest. None, a run in
        one part, when the limit is a share of the RAM instead of a size."""
        limit = size_in_bytes(self.memory_limit)
        return None if limit is None else limit * 2 // 3

    def describe(self) -> str:
        """The DuckDB file's path."""
        return f"duckdb:{Path(self.path).expanduser().resolve()}"


# A size as DuckDB reads memory_limit: "768MB" (powers of 1000), "1GiB" (of 1024), "1000000B".
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:(?P<prefix>[kmgt])(?P<binary>i?)b|b|bytes)\s*", re.I)


def size_in_bytes(text: str) -> int | None:
    """The bytes a size means (None for anything else, e.g. a share of the RAM, "80%")."""
    size = _SIZE.fullmatch(text)
    if size is None:
        return None
    prefix = size.group("prefix")
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    return int(float(size.group(1)) * (1024 if size.group("binary") else 1000) ** power)


# How DuckDB says another process has the file open (and, where it knows, which one).
_LOCKED = re.compile(
    r"Could not set lock on file .*?(?:Conflicting lock is held in (?P<holder>.+?)"
    r"(?:\. See also|$)|$)",
    re.DOTALL,
)


def _quiet(dbapi_connection: Any, _record: Any) -> None:
    """No progress bar of DuckDB's own on the terminal: runs report their own progress."""
    dbapi_connection.execute("set enable_progress_bar = false")
    dbapi_connection.execute("set preserve_insertion_order = false")


def connect_when_free(engine: Engine, wait: float, warehouse: str) -> Connection:
    """A connection to the DuckDB file, waiting up to `wait` seconds while another process
    holds it; WarehouseBusy, naming the holder, when it is still held then."""
    started = clock.monotonic()
    pause = 0.2
    while True:
        try:
            return engine.connect()
        except DBAPIError as error:
            locked = _LOCKED.search(str(error.orig))
            if locked is None:
                raise
            waited = clock.monotonic() - started
            if waited >= wait:
                raise WarehouseBusy(warehouse, locked.group("holder"), waited) from None
            if pause == 0.2:
                run_logger().info(
                    "%s is held by another process (%s): waiting up to %.0fs",
                    warehouse,
                    locked.group("holder") or "unknown",
                    wait,
                )
            clock.sleep(min(pause, max(wait - waited, 0.0)))
            pause = min(pause * 2, 2.0)
