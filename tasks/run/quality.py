"""Data tests in the spirit of dbt, declared as data and compiled from the table model.

Redshift does not enforce keys, so every key is tested: not_null and unique on each star table's
key, relationships from the fact to its dimensions, and row counts where the input had data.
Each check counts failing rows; a run publishes only when every check passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Select, and_, func, select

from sql import model
from sql.model import key_column

TABLES = {t.name: t for t in model.ALL_TABLES}


@dataclass(frozen=True)
class Check:
    """One data test: kind, table and column; `to` names the parent of a relationship."""

    kind: str
    table: str
    column: str | None = None
    to: tuple[str, str] | None = None
    when_staged: str | None = None

    @property
    def name(self) -> str:
        """A stable, readable name, e.g. relationships_songplays_user_id__users_user_id."""
        parts = [self.kind, self.table] + ([self.column] if self.column else [])
        name = "_".join(parts)
        return f"{name}__{'_'.join(self.to)}" if self.to else name


@dataclass
class CheckResult:
    """The outcome of one check."""

    check: str
    kind: str
    table: str
    failing_rows: int

    @property
    def passed(self) -> bool:
        """True when no row fails."""
        return self.failing_rows == 0

    def as_row(self) -> dict[str, Any]:
        """A plain dict for reports."""
        return {**asdict(self), "passed": self.passed}


def default_checks() -> list[Check]:
    """The project's checks: keys of every star table, the fact's relationships, row counts."""
    checks: list[Check] = []
    for table in model.STAR_TABLES:
        key = key_column(table)
        checks += [Check("not_null", table.name, key), Check("unique", table.name, key)]
    checks += [
        Check("not_null", "songplays", "user_id"),
        Check("not_null", "songplays", "start_time"),
        Check("relationships", "songplays", "user_id", to=("users", "user_id")),
        Check("relationships", "songplays", "start_time", to=("time", "start_time")),
        Check("relationships", "songplays", "song_id", to=("songs", "song_id")),
        Check("relationships", "songplays", "artist_id", to=("artists", "artist_id")),
        Check("relationships", "songs", "artist_id", to=("artists", "artist_id")),
        Check("accepted_values", "users", "level"),
        Check("accepted_values", "songplays", "level"),
    ]
    checks += [Check("row_count", name, when_staged="plays") for name in ("songplays", "time")]
    checks += [Check("row_count", "users", when_staged="events")]
    checks += [Check("row_count", name, when_staged="songs") for name in ("songs", "artists")]
    return checks


ACCEPTED_VALUES: dict[tuple[str, str], list[str]] = {
    ("users", "level"): ["free", "paid"],
    ("songplays", "level"): ["free", "paid"],
}


def _staged_rows(kind: str) -> Select:
    events, songs = model.staging_events, model.staging_songs
    if kind == "plays":
        return select(func.count()).where(
            events.c.page == "NextSong", func.nullif(events.c.user_id, "").is_not(None)
        )
    if kind == "events":
        return select(func.count()).where(func.nullif(events.c.user_id, "").is_not(None))
    return select(func.count()).select_from(songs)


def failing_rows_query(check: Check) -> Select:
    """A query counting the rows that fail a check (zero means it passes)."""
    table = TABLES[check.table]
    column = table.c[check.column] if check.column else None
    if check.kind == "not_null":
        return select(func.count()).select_from(table).where(column.is_(None))
    if check.kind == "unique":
        dupes = select(column).group_by(column).having(func.count() > 1).subquery()
        return select(func.count()).select_from(dupes)
    if check.kind == "relationships":
        parent = TABLES[check.to[0]]
        parent_column = parent.c[check.to[1]]
        joined = table.outerjoin(parent, parent_column == column)
        return (
            select(func.count())
            .select_from(joined)
            .where(and_(column.is_not(None), parent_column.is_(None)))
        )
    if check.kind == "accepted_values":
        accepted = ACCEPTED_VALUES[(check.table, check.column)]
        return (
            select(func.count())
            .select_from(table)
            .where(column.is_not(None), column.not_in(accepted))
        )
    if check.kind == "row_count":
        # One failing "row" when the table is empty although the run staged data for it.
        rows = select(func.count()).select_from(table).scalar_subquery()
        staged = _staged_rows(check.when_staged).scalar_subquery()
        return select(func.count()).where(and_(rows == 0, staged > 0))
    raise ValueError(f"unknown check kind {check.kind!r}")


def run_checks(conn: Connection, checks: list[Check] | None = None) -> list[CheckResult]:
    """Run the checks on a connection (inside the run's transaction) and count failing rows."""
    results = []
    for check in checks if checks is not None else default_checks():
        failing = int(conn.execute(failing_rows_query(check)).scalar_one())
        results.append(CheckResult(check.name, check.kind, check.table, failing))
    return results


@task(name="quality-checks", cache_policy=NO_CACHE)
def check_quality(conn: Connection) -> list[CheckResult]:
    """Run the data tests inside the caller's transaction, before it commits."""
    results = run_checks(conn)
    for result in results:
        if not result.passed:
            get_run_logger().error("check %s failed: %d rows", result.check, result.failing_rows)
    return results


class QualityCheckFailed(Exception):
    """A data test failed: the run's changes were rolled back."""

    def __init__(self, failed: list[CheckResult]) -> None:
        names = ", ".join(f"{r.check} ({r.failing_rows} rows)" for r in failed)
        super().__init__(f"quality checks failed, nothing was published: {names}")
        self.failed = failed
