"""One ETL run, start to finish: the body of the sparkify-etl flow, which the ephemeral flow runs
too. Each step is a Prefect task of its concern: list the source's files, stage them into the
warehouse, transform and check in one transaction, publish, count."""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote
from sqlalchemy import Connection

from tasks.common.errors import DatesReversed
from tasks.common.progress import in_part
from tasks.common.retry import is_transient, scaled_delays
from tasks.run.artifacts import publish_load, publish_quality, publish_rejects
from tasks.run.ledger import StagePlan, choose_files, record_staged_files
from tasks.run.lock import warehouse_lock
from tasks.run.parts import merge_changes, merge_staged, split_run
from tasks.run.quality import (
    CheckResult,
    QualityCheckFailed,
    add_up,
    check_quality,
    default_checks,
    reads_staged,
)
from tasks.run.schedule import run_dates
from tasks.run.transform import TableChange, transform
from tasks.source.files import RunFiles, Source, list_run_files
from tasks.source.resolve import resolve_source
from tasks.warehouse.base import (
    StageResult,
    Warehouse,
    count_rows,
    ensure_tables,
    stage,
)
from tasks.warehouse.resolve import resolve_warehouse

T = TypeVar("T")


def run_etl(
    source: str,
    warehouse: str,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    days_back: int | None = None,
    reload: bool = False,
) -> dict:
    """Load the source's events of [start_date, end_date] (all days when open) and all songs
    into the warehouse, inside the calling flow run: the files new or changed since the
    warehouse loaded them, or every one with `reload`; returns the run's summary as a dict."""
    start_date, end_date = run_dates(start_date, end_date, days_back, flow_run.scheduled_start_time)
    if start_date and end_date and start_date > end_date:
        raise DatesReversed(start_date, end_date)
    target = resolve_warehouse(warehouse)
    raw_data = resolve_source(source, aws_credentials)
    timer = StageTimer()
    with timer("list files"):
        files = list_run_files(raw_data, start_date, end_date)
    # One run at a time on the warehouse, from the first DDL to the commit: a Prefect limit of
    # the warehouse's own among this server's runs, and the warehouse held against any other
    # process (runs of other servers, an analyst's session) for as long as the transaction.
    lock = ExitStack()
    with timer("warehouse lock"):  # taking it, and below releasing it
        lock.enter_context(warehouse_lock(target.describe()))
    try:
        loaded = run_again_if_transient(
            lambda: load(target, raw_data, files, timer, reload), "the load"
        )
    finally:
        with timer("warehouse lock"):
            lock.close()
    plan, staged, changes, checks, counts = loaded
    summary = EtlSummary.build(target, plan, staged, changes, checks, counts, timer.seconds)
    with timer("publish"):
        publish_load(
            [staged.events, staged.songs],
            changes,
            counts,
            summary.warehouse,
            timer.seconds,
            files,
            summary.unchanged_files,
        )
    get_run_logger().info("published to %s: %s", summary.warehouse, counts)
    return asdict(summary)


def load(
    target: Warehouse, raw_data: Source, files: RunFiles, timer: StageTimer, reload: bool = False
) -> tuple[StagePlan, StageResult, list[TableChange], list[CheckResult], dict[str, int]]:
    """Create, choose the files to stage (new and changed ones, or all on a reload), stage,
    transform, check and count in the run's one transaction on the held warehouse
    (write-audit-publish: a failing check rolls the whole load back, ledger included, so
    analysts never see a half-checked load); what it chose, staged, changed, checked and
    counted. A run larger than the warehouse's part size is staged and transformed a part at a
    time (tasks/run/parts.py), still in the one transaction."""
    held = ExitStack()
    with timer("hold warehouse"):
        conn = held.enter_context(target.hold())
    with held:
        with timer("create tables"):
            ensure_tables(conn)
        with timer("stage"):
            # quote(): Prefect would visit every file name and version of these task
            # parameters (some 21k of each, seconds in all), for no dependency to track.
            plan = choose_files(conn, quote(files), reload)
            parts = split_run(plan.files, target.part_bytes())
        # In parts, the checks of what a part staged run after each part, the others at the end.
        checks = default_checks()
        each_part = [c for c in checks if reads_staged(c)] if len(parts) > 1 else []
        if len(parts) > 1:
            say_parts(parts)
        staged_parts: list[StageResult] = []
        changes: list[list[TableChange]] = []
        results: list[list[CheckResult]] = []
        for n, part in enumerate(parts):
            with in_part(n + 1, len(parts)):
                staged_parts.append(_stage_part(target, conn, raw_data, part, timer))
                if n == len(parts) - 1:
                    staged = merge_staged(staged_parts)
                    with timer("publish"):
                        publish_rejects([staged.events, staged.songs], target.describe())
                with timer("transform + check"):
                    changes.append(transform(conn))
                    if each_part:
                        results.append(check_quality(conn, quote(each_part)))
                        if not all(c.passed for c in results[-1]):  # published at the end else
                            passed_or_raise(results[-1])
        with timer("transform + check"):
            if each_part:
                at_end = [c for c in checks if not reads_staged(c)]
                results.append(check_quality(conn, quote(at_end)))
                checked = add_up(checks, results)
            else:
                checked = check_quality(conn)
            passed_or_raise(checked)
        with timer("count rows"):
            counts = count_rows(conn)
        with timer("commit"):
            held.close()
    return plan, staged, merge_changes(changes), checked, counts


def _stage_part(
    target: Warehouse, conn: Connection, raw_data: Source, part: RunFiles, timer: StageTimer
) -> StageResult:
    """Stage a run's files (or a part's), and write them to staging_files for the ledger."""
    with timer("stage"):
        staged = stage(target, conn, raw_data, quote(part))
        at = datetime.now(UTC).replace(tzinfo=None)
        record_staged_files(target, conn, part, at, staged.events.records_by_file)
    return staged


def passed_or_raise(checks: list[CheckResult]) -> None:
    """Publish the checks' results; QualityCheckFailed when one failed."""
    publish_quality(checks)
    failed = [c for c in checks if not c.passed]
    if failed:
        raise QualityCheckFailed(failed)


def say_parts(parts: list[RunFiles]) -> None:
    """Log how a run in parts goes: the event files of each part."""
    spans = []
    for part in parts:
        first, last = (Path(part.event_files[end]).name for end in (0, -1))
        spans.append(first if first == last else f"{first} to {last}")
    get_run_logger().info(
        "staging and transforming in %d parts, one after another, in the run's one transaction: %s",
        len(parts),
        "; ".join(spans),
    )


# A load that meets a transient failure (a dropped connection, throttling) is run again whole:
# its transaction was rolled back, so nothing of it stays. Seconds before each new attempt.
LOAD_RETRY_DELAYS = (5.0, 30.0)


def run_again_if_transient(attempt: Callable[[], T], what: str) -> T:
    """attempt()'s result, trying again after LOAD_RETRY_DELAYS when it fails transiently."""
    for delay in (*scaled_delays(LOAD_RETRY_DELAYS), None):
        try:
            return attempt()
        except Exception as error:
            if delay is None or not is_transient(error):
                raise
            get_run_logger().warning(
                "%s failed transiently (%s): trying again in %.0fs", what, error, delay
            )
            clock.sleep(delay)
    raise AssertionError("unreachable")


class StageTimer:
    """Wall time of each stage of a run, in the order the stages first ran: every part of the
    run's body is in one, so that together they are the run's time. A stage timed twice (the
    warehouse lock, taken and released) adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage_name: str) -> Iterator[None]:
        started = clock.perf_counter()
        try:
            yield
        finally:
            spent = clock.perf_counter() - started
            self.seconds[stage_name] = round(self.seconds.get(stage_name, 0.0) + spent, 3)


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
    unchanged_files: dict[str, int]

    @classmethod
    def build(
        cls,
        warehouse: Warehouse,
        plan: StagePlan,
        staged: StageResult,
        changes: list[TableChange],
        checks: list[CheckResult],
        counts: dict[str, int],
        seconds: dict[str, float],
    ) -> EtlSummary:
        """Assemble a summary from the tasks' results."""
        files = plan.files
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
            {"events": plan.unchanged_events, "songs": plan.unchanged_songs},
        )
