"""The Prefect tasks the ETL flow composes; each wraps a tested helper."""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, func, select

from sql import model
from tasks.quality import CheckResult, run_checks
from tasks.retry import RETRY_TRANSIENT
from tasks.source import RunFiles, Source
from tasks.staging import StageReport
from tasks.transform import TableChange, run_transforms
from tasks.warehouse import Warehouse, create_tables, transaction


@task(
    name="list-run-files",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def list_run_files(source: Source, start: date | None, end: date | None) -> RunFiles:
    """The event files of the run's days and every song file under the source."""
    files = source.run_files(start, end)
    get_run_logger().info(
        "%d event files and %d song files in %s",
        len(files.event_files),
        len(files.song_files),
        source.describe(),
    )
    return files


@task(
    name="ensure-tables",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def ensure_tables(warehouse: Warehouse) -> list[str]:
    """Create the model's tables where missing."""
    with transaction(warehouse.get_engine()) as conn:
        return create_tables(conn)


@dataclass
class StageResult:
    """Both staging tables' reports."""

    events: StageReport
    songs: StageReport

    @property
    def rejects(self) -> int:
        """Rejected records of the run."""
        return self.events.rejects + self.songs.rejects


@task(
    name="stage",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def stage(warehouse: Warehouse, source: Source, files: RunFiles) -> StageResult:
    """Load the run's files into the staging tables (one transaction; safe to retry)."""
    logger = get_run_logger()
    at = datetime.now(UTC).replace(tzinfo=None)
    with transaction(warehouse.get_engine()) as conn:
        result = StageResult(
            warehouse.stage_events(conn, source, files.event_files, at),
            warehouse.stage_songs(conn, source, files.song_files, at),
        )
    for report in (result.events, result.songs):
        logger.info(
            "staged %d rows into %s from %d files in %.2fs (%d rejected)",
            report.rows,
            report.table,
            report.files,
            report.seconds,
            report.rejects,
        )
        for reject in report.reject_samples:
            logger.warning(
                "rejected %s line %s: %s",
                reject["source_file"],
                reject["line_number"],
                reject["reason"],
            )
    return result


@task(name="transform", cache_policy=NO_CACHE)
def transform(conn: Connection) -> list[TableChange]:
    """Run the SQL transforms inside the caller's transaction (never retried on its own)."""
    changes = run_transforms(conn)
    for change in changes:
        get_run_logger().info(
            "%s: %d deleted, %d inserted in %.2fs",
            change.table,
            change.deleted,
            change.inserted,
            change.seconds,
        )
    return changes


@task(name="quality-checks", cache_policy=NO_CACHE)
def check_quality(conn: Connection) -> list[CheckResult]:
    """Run the data tests inside the caller's transaction, before it commits."""
    results = run_checks(conn)
    for result in results:
        if not result.passed:
            get_run_logger().error("check %s failed: %d rows", result.check, result.failing_rows)
    return results


def count_rows(conn: Connection) -> dict[str, int]:
    """Row counts of the star tables and the rejects table."""
    tables = (*model.STAR_TABLES, model.load_rejects)
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
    }


@task(
    name="row-counts",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def table_counts(warehouse: Warehouse) -> dict[str, int]:
    """Row counts of every star table after the run."""
    with warehouse.get_engine().connect() as conn:
        return count_rows(conn)


class StageTimer:
    """Wall time of each stage of a run, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage_name: str) -> Iterator[None]:
        started = clock.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage_name] = round(clock.perf_counter() - started, 3)


class QualityCheckFailed(Exception):
    """A data test failed: the run's changes were rolled back."""

    def __init__(self, failed: list[CheckResult]) -> None:
        names = ", ".join(f"{r.check} ({r.failing_rows} rows)" for r in failed)
        super().__init__(f"quality checks failed, nothing was published: {names}")
        self.failed = failed


@dataclass
class EtlSummary:
    """What a run did, for the CLI, artifacts and tests."""

    warehouse: str
    event_files: int
    song_files: int
    staged: dict[str, Any]
    changes: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    counts: dict[str, int]
    seconds: dict[str, float]

    @classmethod
    def build(
        cls,
        warehouse: Warehouse,
        files: RunFiles,
        staged: StageResult,
        changes: list[TableChange],
        checks: list[CheckResult],
        counts: dict[str, int],
        seconds: dict[str, float],
    ) -> EtlSummary:
        """Assemble a summary from the tasks' results."""
        return cls(
            warehouse.describe(),
            len(files.event_files),
            len(files.song_files),
            {"events": asdict(staged.events), "songs": asdict(staged.songs)},
            [asdict(c) for c in changes],
            [c.as_row() for c in checks],
            counts,
            seconds,
        )
