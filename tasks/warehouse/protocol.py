"""What every warehouse is: the protocol the flows use (a third warehouse is one package
implementing it, found by tasks/warehouse/resolve.py), the stage report it returns and the
rejected record."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine, Table

from tasks.source.files import RunFiles, Source

# Characters of a rejected line kept in load_rejects.raw_line.
MAX_RAW_LINE = 4096
# Rejects a stage report carries for logs and artifacts (the rest stay in load_rejects).
REJECT_SAMPLES = 20


@dataclass(frozen=True)
class Reject:
    """A record (or a whole file, line 0) that was not staged, and why."""

    source_file: str
    line_number: int
    reason: str
    raw_line: str | None = None

    def row(self, at: datetime) -> dict[str, Any]:
        """The record's row of load_rejects, stamped with the run's time."""
        return {
            "source_file": self.source_file,
            "line_number": self.line_number,
            "reason": self.reason,
            "raw_line": self.raw_line,
            "recorded_at": at,
        }

    def describe(self) -> str:
        """File, line and reason on one line, for logs and error messages."""
        return f"{self.source_file} line {self.line_number}: {self.reason}"


@dataclass
class StageReport:
    """What staging one table did."""

    table: str
    files: int
    rows: int
    rejects: int
    seconds: float
    reject_samples: list[Reject] = field(default_factory=list)
    # Records each file staged, where the warehouse counts them while staging (DuckDB's event
    # staging; Redshift's COPY reports rows per COPY, not per file).
    records_by_file: dict[str, int] | None = None


@runtime_checkable
class Warehouse(Protocol):
    """What the flows need of a warehouse: a class with every one of these methods is one."""

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine on the warehouse."""
        ...

    def hold(self) -> AbstractContextManager[Connection]:
        """The run's one connection, in one transaction that commits when the block ends
        normally: from it on no other run writes to the warehouse until it ends. Another
        holder is waited for a bounded time (the block's lock_wait_seconds), then WarehouseBusy."""
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

    def stage_files(
        self, conn: Connection, source: Source, files: RunFiles, at: datetime
    ) -> StageResult:
        """Load the run's event and song files into the staging tables (stage_in_turn where
        the warehouse does one after the other)."""
        ...

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows (each with every column of the table) in bulk, in the run's transaction."""
        ...

    def part_bytes(self) -> int | None:
        """Bytes of event files the warehouse stages and transforms in one part of a run at
        most (tasks/run/parts.py); None for a run in one part whatever its size."""
        ...

    def describe(self) -> str:
        """Where the warehouse is, for logs (never a secret)."""
        ...


@dataclass
class StageResult:
    """Both staging tables' reports."""

    events: StageReport
    songs: StageReport

    def reports(self) -> list[StageReport]:
        """The events' report, then the songs'."""
        return [self.events, self.songs]
