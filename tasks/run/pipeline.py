"""One ETL run, start to finish: the body of the sparkify-etl flow, which the ephemeral flow runs
too. Each step is a Prefect task of its concern: list the source's files, stage them into the
warehouse, transform and check in one transaction, publish, count."""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from prefect import get_run_logger
from prefect.runtime import flow_run

from tasks.run.artifacts import publish_load, publish_quality, publish_rejects
from tasks.run.lock import warehouse_lock
from tasks.run.quality import CheckResult, QualityCheckFailed, check_quality
from tasks.run.schedule import run_dates
from tasks.run.transform import TableChange, transform
from tasks.source.files import RunFiles, list_run_files
from tasks.source.resolve import resolve_source
from tasks.warehouse.base import (
    StageResult,
    Warehouse,
    ensure_tables,
    stage,
    table_counts,
    transaction,
)
from tasks.warehouse.resolve import resolve_warehouse


def run_etl(
    source: str,
    warehouse: str,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    days_back: int | None = None,
) -> dict:
    """Load the source's events of [start_date, end_date] (all days when open) and all songs
    into the warehouse, inside the calling flow run; returns the run's summary as a dict."""
    start_date, end_date = run_dates(start_date, end_date, days_back, flow_run.scheduled_start_time)
    if start_date and end_date and start_date > end_date:
        raise ValueError(f"start date {start_date} is after end date {end_date}")
    target = resolve_warehouse(warehouse)
    raw_data = resolve_source(source, aws_credentials)
    timer = StageTimer()
    with timer("list files"):
        files = list_run_files(raw_data, start_date, end_date)
    # One run at a time on the warehouse, from the first DDL to the last count.
    with warehouse_lock():
        with timer("create tables"):
            ensure_tables(target)
        with timer("stage"):
            staged = stage(target, raw_data, files)
        publish_rejects([staged.events, staged.songs], target.describe())
        # Write-audit-publish: transforms and checks share one transaction; a failing check
        # rolls the whole run back, so analysts never see a half-checked load.
        with timer("transform + check + commit"), transaction(target.get_engine()) as conn:
            changes = transform(conn)
            checks = check_quality(conn)
            publish_quality(checks)
            failed = [c for c in checks if not c.passed]
            if failed:
                raise QualityCheckFailed(failed)
        counts = table_counts(target)
    summary = EtlSummary.build(target, files, staged, changes, checks, counts, timer.seconds)
    publish_load(
        [staged.events, staged.songs], changes, counts, summary.warehouse, timer.seconds, files
    )
    get_run_logger().info("published to %s: %s", summary.warehouse, counts)
    return asdict(summary)


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
    skipped_files: list[dict[str, str]]
    missing_days: list[str]

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
            [asdict(s) for s in files.skipped],
            [day.isoformat() for day in files.missing_days],
        )
