"""The parts of an ETL run that flows/etl.py's flow names in order: the warehouse lock, the run's
transaction, the parts of a run, the checks, the attempts after a transient failure, the timer of
every stage and the summary."""

from __future__ import annotations

import time as clock
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.utilities.annotations import quote
from sqlalchemy import Connection

from tasks.common.progress import in_part
from tasks.common.retry import is_transient, scaled_delays
from tasks.run.artifacts import publish_quality
from tasks.run.cut_text import count_cut, describe_cut
from tasks.run.ledger import StagePlan, record_staged_files
from tasks.run.lock import warehouse_lock
from tasks.run.parts import merge_changes, merge_staged, split_run
from tasks.run.quality import (
    CheckResult,
    QualityCheckFailed,
    add_up,
    default_checks,
    reads_staged,
    results_of,
)
from tasks.run.transform import TableChange
from tasks.source.files import RunFiles, Source
from tasks.warehouse.protocol import StageResult, Warehouse
from tasks.warehouse.staging import stage


@contextmanager
def one_run_at_a_time(target: Warehouse, timer: StageTimer) -> Iterator[None]:
    """One run at a time on the warehouse, from the first DDL to the commit: a Prefect limit of
    the warehouse's own among this server's runs (the run's transaction holds the warehouse
    against any other process as well). Taking and releasing it are timed."""
    lock = ExitStack()
    with timer("warehouse lock"):
        lock.enter_context(warehouse_lock(target.describe()))
    try:
        yield
    finally:
        with timer("warehouse lock"):
            lock.close()


@contextmanager
def the_runs_transaction(target: Warehouse, timer: StageTimer) -> Iterator[Connection]:
    """The run's one connection on the held warehouse, in one transaction committed when the
    block ends normally and rolled back otherwise (write-audit-publish: a failing check rolls
    the whole load back, ledger included, so analysts never see a half-checked load)."""
    held = ExitStack()
    with timer("hold warehouse"):
        conn = held.enter_context(target.hold())
    with held:
        yield conn
        with timer("commit"):
            held.close()


class RunInParts:
    """The files a run stages, in parts of at most the warehouse's part size (tasks/run/parts.py),
    staged and transformed one after another in the run's one transaction; what they staged
    and changed, added up."""

    def __init__(self, target: Warehouse, files: RunFiles) -> None:
        self.parts = split_run(files, target.part_bytes())
        self.staged: list[StageResult] = []
        self.changes: list[list[TableChange]] = []
        self.cut: Counter[str] = Counter()  # values cut to their star column, by field
        if len(self.parts) > 1:
            say_parts(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[RunFiles]:
        """Each part, its progress shown as that part's ("part 2 of 10")."""
        for n, part in enumerate(self.parts):
            with in_part(n + 1, len(self.parts)):
                yield part

    def all_staged(self) -> bool:
        return len(self.staged) == len(self.parts)

    def total_staged(self) -> StageResult:
        return merge_staged(self.staged)

    def total_changes(self) -> list[TableChange]:
        return merge_changes(self.changes)


def stage_part(
    target: Warehouse, conn: Connection, raw_data: Source, part: RunFiles, cut: Counter[str]
) -> StageResult:
    """Stage a run's files (or a part's), and write them to staging_files for the ledger;
    count in `cut` (and say) the values the transforms will cut to their star column."""
    staged = stage(target, conn, raw_data, quote(part))
    at = datetime.now(UTC).replace(tzinfo=None)
    record_staged_files(target, conn, part, at, staged.events.records_by_file)
    if counted := count_cut(conn):
        get_run_logger().info("cut to their column's width: %s", describe_cut(counted))
        cut.update(counted)
    return staged


class RunChecks:
    """The data tests of a run. In parts, those that read what a part staged run after each
    part's transforms (a failing one stops the run at once), the others at the end; in one
    part, all at the end."""

    def __init__(self, parts: int) -> None:
        self.checks = default_checks()
        self.each_part = [c for c in self.checks if reads_staged(c)] if parts > 1 else []
        self.results: list[list[CheckResult]] = []

    def after_part(self, conn: Connection) -> None:
        """Check what the part staged; QualityCheckFailed (results published) if one fails."""
        if self.each_part:
            self.results.append(results_of(conn, quote(self.each_part)))
            if not all(c.passed for c in self.results[-1]):
                publish_quality(self.results[-1])
                raise_if_failed(self.results[-1])

    def at_end(self, conn: Connection) -> list[CheckResult]:
        """Every check's result over the run, published; QualityCheckFailed if one failed."""
        if self.each_part:
            at_end = [c for c in self.checks if not reads_staged(c)]
            self.results.append(results_of(conn, quote(at_end)))
            checked = add_up(self.checks, self.results)
        else:
            checked = results_of(conn)
        publish_quality(checked)
        raise_if_failed(checked)
        return checked


def raise_if_failed(checks: list[CheckResult]) -> None:
    """QualityCheckFailed when one of the checks failed."""
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


def attempts_of(what: str) -> Iterator[Attempt]:
    """Attempts at a block of work, for `for attempt in attempts_of(...): with attempt: ...`:
    after a transient failure the block runs again whole (its transaction was rolled back, so
    nothing of it stays), LOAD_RETRY_DELAYS later; any other failure, or the last, is raised."""
    for delay in (*scaled_delays(LOAD_RETRY_DELAYS), None):
        attempt = Attempt()
        yield attempt
        error = attempt.error
        if error is None:
            return
        if delay is None or not is_transient(error):
            raise error
        get_run_logger().warning(
            "%s failed transiently (%s): trying again in %.0fs", what, error, delay
        )
        clock.sleep(delay)


class Attempt:
    """One attempt of attempts_of: the block's exception is kept for the loop to judge."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> bool:
        if isinstance(error, Exception):
            self.error = error
            return True
        return False


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
    cut_values: dict[str, int]

    @classmethod
    def build(
        cls,
        warehouse: Warehouse,
        plan: StagePlan,
        parts: RunInParts,
        checks: list[CheckResult],
        counts: dict[str, int],
        seconds: dict[str, float],
    ) -> EtlSummary:
        """Assemble a summary from the tasks' results."""
        files, staged = plan.files, parts.total_staged()
        return cls(
            warehouse.describe(),
            len(files.event_files),
            len(files.song_files),
            {"events": asdict(staged.events), "songs": asdict(staged.songs)},
            [asdict(c) for c in parts.total_changes()],
            [c.as_row() for c in checks],
            counts,
            seconds,
            [asdict(s) for s in files.skipped],
            [day.isoformat() for day in files.missing_days],
            {"events": plan.unchanged_events, "songs": plan.unchanged_songs},
            dict(parts.cut),
        )
