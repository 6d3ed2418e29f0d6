"""Data tests in the spirit of dbt, declared beside the columns in sql/model.py and compiled here.

Redshift does not enforce keys, so every key is tested: not_null and unique on each star table's
key, relationships from the fact to its dimensions, accepted values, and row counts where the input
had data. Each check counts failing rows; a run publishes only when every check passes. The checks
run after the transforms, on their connection: songplays' and time's row counts read the run's
staged_plays, which a transform builds, and so do the checks kept to the run's days (the unique
keys of songplays and time, and songplays' relationship to time: model.py, "written_within")
instead of reading every day the warehouse holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Column, ColumnElement, Connection, Select, Table, and_, func, select
from sqlalchemy.sql.expression import FromClause

from sql import model
from tasks.common.errors import OneLineFailure

COLUMN_TESTS = ("not_null", "unique", "relationships", "accepted_values")
TABLE_TESTS = ("row_count",)
# Failing rows a failed check shows, read before the run rolls back.
SAMPLE_ROWS = 10


@dataclass(frozen=True)
class Check:
    """One data test of a table (and column): `to` names the parent column of a relationship,
    `values` the accepted values, `when_staged` what a row count compares the table with."""

    kind: str
    table: Table
    column: str | None = None
    to: tuple[str, str] | None = None
    values: tuple[Any, ...] = ()
    when_staged: FromClause | None = None
    # The range of rows the check reads (column, relation): model.py's "written_within".
    within: tuple[str, FromClause] | None = None

    @property
    def name(self) -> str:
        """A stable, readable name, e.g. relationships_songplays_user_id__users_user_id."""
        parts = [self.kind, self.table.name] + ([self.column] if self.column else [])
        name = "_".join(parts)
        return f"{name}__{'_'.join(self.to)}" if self.to else name


@dataclass
class CheckResult:
    """The outcome of one check."""

    check: str
    kind: str
    table: str
    failing_rows: int
    # Up to SAMPLE_ROWS failing rows of a failed check, each as `column=value, ...`.
    samples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no row fails."""
        return self.failing_rows == 0

    def as_row(self) -> dict[str, Any]:
        """A plain dict for reports."""
        return {**asdict(self), "passed": self.passed}


def compile_checks(tables: Iterable[Table]) -> list[Check]:
    """The checks the tables declare: each column's tests in column order, then the table's."""
    checks: list[Check] = []
    for table in tables:
        for column in table.columns:
            for test in column.info.get("tests", ()):
                checks.append(_compile(test, table, column, COLUMN_TESTS))
        for test in table.info.get("tests", ()):
            checks.append(_compile(test, table, None, TABLE_TESTS))
    return checks


def default_checks() -> list[Check]:
    """The project's checks: the tests declared on the star tables of the model."""
    return compile_checks(model.STAR_TABLES)


def _compile(
    test: str | dict[str, Any], table: Table, column: Column | None, kinds: tuple[str, ...]
) -> Check:
    """One declared test as a check; refuses an unknown kind or a relationship to nowhere."""
    kind, argument = (test, None) if isinstance(test, str) else _single_item(test)
    where = f"{table.name}.{column.name}" if column is not None else table.name
    if kind not in kinds:
        raise ValueError(f"unknown test {kind!r} on {where}; expected one of {kinds}")
    name = column.name if column is not None else None
    if kind == "relationships":
        parent_name, _, parent_column = str(argument).partition(".")
        parent = table.metadata.tables.get(parent_name)
        if parent is None or parent_column not in parent.c:
            raise ValueError(f"{where} relates to {argument!r}, which is no column of the model")
        # Within the run's range where child and parent are both written within it, on the
        # columns the relationship joins (songplays.start_time → time.start_time).
        within = table.info.get("written_within")
        parent_within = parent.info.get("written_within")
        bounded = (
            within is not None
            and parent_within is not None
            and within[0] == name
            and parent_within[0] == parent_column
            and within[1] is parent_within[1]
        )
        return Check(
            kind, table, name, to=(parent_name, parent_column), within=within if bounded else None
        )
    if kind == "unique":
        # Only the key's rows are known to share the range's column (model.py).
        keyed = column is not None and column.info.get("key")
        return Check(kind, table, name, within=table.info.get("written_within") if keyed else None)
    if kind == "accepted_values":
        return Check(kind, table, name, values=tuple(argument))
    if kind == "row_count":
        return Check(kind, table, when_staged=argument["when_staged"])
    return Check(kind, table, name)


def _single_item(test: dict[str, Any]) -> tuple[str, Any]:
    """The kind and argument of a test written as a one-item dict, e.g. {"relationships": "t.c"}."""
    if len(test) != 1:
        raise ValueError(f"a test with arguments is one kind and its argument, not {test!r}")
    return next(iter(test.items()))


def failing_rows_query(check: Check) -> Select:
    """A query counting the rows that fail a check (zero means it passes)."""
    table = check.table
    column = table.c[check.column] if check.column else None
    if check.kind == "not_null":
        return select(func.count()).select_from(table).where(column.is_(None))
    if check.kind == "unique":
        keys = select(column).where(*_within(check)).group_by(column)
        dupes = keys.having(func.count() > 1).subquery()
        return select(func.count()).select_from(dupes)
    if check.kind == "relationships":
        parent_column = table.metadata.tables[check.to[0]].c[check.to[1]]
        if check.within is not None:
            # Kept to the run's range, the parent is read within it too: a parent row matching
            # a child in the range is in it (the relationship joins on the range's column).
            in_range = select(parent_column).where(*_within(check, parent_column))
            parent_column = in_range.subquery(f"{check.to[0]}_in_range").c[check.to[1]]
        joined = table.outerjoin(parent_column.table, parent_column == column)
        return (
            select(func.count())
            .select_from(joined)
            .where(and_(column.is_not(None), parent_column.is_(None)), *_within(check))
        )
    if check.kind == "accepted_values":
        return (
            select(func.count())
            .select_from(table)
            .where(column.is_not(None), column.not_in(check.values))
        )
    if check.kind == "row_count":
        # One failing "row" when the table is empty although the run staged data for it.
        rows = select(func.count()).select_from(table).scalar_subquery()
        staged = select(func.count()).select_from(check.when_staged).scalar_subquery()
        return select(func.count()).where(and_(rows == 0, staged > 0))
    raise ValueError(f"unknown check kind {check.kind!r}")


def failing_sample_query(check: Check) -> Select | None:
    """Up to SAMPLE_ROWS of the rows failing a check, in key order: the table's rows (a
    duplicated key with its copies, for unique); None for a row count (the table is empty)."""
    table = check.table
    column = table.c[check.column] if check.column else None
    key = table.c[model.key_column(table)]
    rows = select(*table.columns).order_by(key).limit(SAMPLE_ROWS)
    if check.kind == "not_null":
        return rows.where(column.is_(None))
    if check.kind == "unique":
        copies = func.count().label("copies")
        keys = select(column, copies).where(*_within(check)).group_by(column)
        return keys.having(func.count() > 1).order_by(column).limit(SAMPLE_ROWS)
    if check.kind == "relationships":
        parent = table.metadata.tables[check.to[0]].c[check.to[1]]
        missing = ~select(parent).where(parent == column).exists()
        return rows.where(column.is_not(None), missing, *_within(check))
    if check.kind == "accepted_values":
        return rows.where(column.is_not(None), column.not_in(check.values))
    return None


def failing_samples(conn: Connection, check: Check) -> list[str]:
    """A failed check's sample rows, each as `column=value, ...`."""
    query = failing_sample_query(check)
    if query is None:
        return []
    return [
        ", ".join(f"{name}={value!s}" for name, value in row._mapping.items())
        for row in conn.execute(query)
    ]


def _within(check: Check, column: Column | None = None) -> list[ColumnElement[bool]]:
    """The condition keeping a check to the rows of the run's range (none when it reads the
    whole table): the range column (or `column`) between the least and greatest of the
    relation's, which no row meets when the relation is empty (the run wrote no row there)."""
    if check.within is None:
        return []
    name, relation = check.within
    ranged = relation.c[name]
    bounded = column if column is not None else check.table.c[name]
    least, greatest = func.min(ranged), func.max(ranged)
    return [bounded.between(select(least).scalar_subquery(), select(greatest).scalar_subquery())]


def run_checks(conn: Connection, checks: list[Check] | None = None) -> list[CheckResult]:
    """Run the checks on a connection (inside the run's transaction) and count failing rows,
    all in one query: one round trip and one plan, where the warehouse can share the scans of
    a table among its checks (a query costs Redshift its planning and compilation each time)."""
    checks = checks if checks is not None else default_checks()
    if not checks:
        return []
    counts = select(
        *(failing_rows_query(c).scalar_subquery().label(f"check_{n}") for n, c in enumerate(checks))
    )
    failing = conn.execute(counts).one()
    return [
        CheckResult(check.name, check.kind, check.table.name, int(rows))
        for check, rows in zip(checks, failing, strict=True)
    ]


def reads_staged(check: Check) -> bool:
    """Whether a check reads what the run staged: a row count, and a check kept to the run's
    days. A run in parts (tasks/run/parts.py) runs these after each part's transforms, on that
    part's staged rows (a part writes only within its own days, so its checks find any row it
    got wrong), and the others once, at the end."""
    return check.kind == "row_count" or check.within is not None


def add_up(checks: list[Check], runs: list[list[CheckResult]]) -> list[CheckResult]:
    """The checks' results over several runs of some of them (a check's failing rows added
    up), in the order of `checks`."""
    failing: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    for results in runs:
        for result in results:
            failing[result.check] = failing.get(result.check, 0) + result.failing_rows
            samples.setdefault(result.check, []).extend(result.samples)
    return [
        CheckResult(c.name, c.kind, c.table.name, failing[c.name], samples[c.name][:SAMPLE_ROWS])
        for c in checks
    ]


@task(name="quality-checks", cache_policy=NO_CACHE)
def check_quality(conn: Connection, checks: list[Check] | None = None) -> list[CheckResult]:
    """Run the data tests (the model's, or `checks`) inside the caller's transaction, before it
    commits. When one fails the task fails: QualityCheckFailed, carrying every result
    (`results`), each failed check's with sample failing rows read now, before the caller
    rolls back."""
    checks = checks if checks is not None else default_checks()
    results = run_checks(conn, checks)
    failed = [(c, r) for c, r in zip(checks, results, strict=True) if not r.passed]
    for check, result in failed:
        result.samples = failing_samples(conn, check)
    if failed:
        raise QualityCheckFailed([r for _, r in failed], results)
    return results


def results_of(conn: Connection, checks: list[Check] | None = None) -> list[CheckResult]:
    """Every check's result, from check_quality, whether they passed or not."""
    try:
        return check_quality(conn, checks)
    except QualityCheckFailed as error:
        return error.results


def failed_line(failed: list[CheckResult]) -> str:
    """The failed checks in one line."""
    names = ", ".join(f"{r.check} ({r.failing_rows:,} rows)" for r in failed)
    return f"quality checks failed, nothing was published: {names}"


class QualityCheckFailed(OneLineFailure):
    """A data test failed: the run's changes were rolled back. `results`: every check's."""

    def __init__(self, failed: list[CheckResult], results: list[CheckResult] | None = None) -> None:
        super().__init__(failed_line(failed))
        self.failed = failed
        self.results = results if results is not None else failed

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its results: Prefect pickles a failed run's exception into its result.
        return QualityCheckFailed, (self.failed, self.results)
