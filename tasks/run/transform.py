"""Transforms: the SQL files in sql/transform, run in order inside the run's transaction.

A file `NN_name.sql` builds the relation `name`: a star table, whose change the run reports, or a
temp relation that later files read (e.g. staged_plays), which is run but not reported."""

from __future__ import annotations

import re
import time as clock
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection

from sql import model
from tasks.common.progress import Progress

# Package data, found wherever the project is installed (a wheel, an image, a checkout).
TRANSFORM_DIR: Traversable = resources.files("sql") / "transform"
_TABLE_OF_FILE = re.compile(r"^\d+_(?P<table>\w+)\.sql$")
_COMMENT = re.compile(r"--[^\n]*")
_STAR_TABLES = frozenset(t.name for t in model.STAR_TABLES)


@dataclass
class TableChange:
    """What one transform did to its table."""

    table: str
    deleted: int
    inserted: int
    seconds: float

    @property
    def replaced(self) -> int:
        """Rows that existed and were written again (deleted then re-inserted)."""
        return min(self.deleted, self.inserted)


def split_statements(text: str) -> list[str]:
    """The statements of a SQL file: comments removed, split on semicolons ending a line."""
    body = _COMMENT.sub("", text)
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def transform_files(directory: Traversable | None = None) -> list[Traversable]:
    """The transform files in the order they run (artists and songs before the plays they match)."""
    folder = directory or TRANSFORM_DIR
    return sorted((p for p in folder.iterdir() if _TABLE_OF_FILE.match(p.name)), key=str)


def run_transform_file(conn: Connection, path: Traversable) -> TableChange:
    """Run one transform file's statements and count the rows it deleted and inserted."""
    started = clock.perf_counter()
    deleted = inserted = 0
    for statement in split_statements(path.read_text()):
        result = conn.exec_driver_sql(statement)
        verb = statement.split(None, 1)[0].lower()
        if verb == "delete":
            deleted += max(result.rowcount, 0)
        elif verb == "insert":
            inserted += max(result.rowcount, 0)
    table = _TABLE_OF_FILE.match(path.name).group("table")
    return TableChange(table, deleted, inserted, clock.perf_counter() - started)


def run_transforms(
    conn: Connection, directory: Traversable | None = None, progress: Progress | None = None
) -> list[TableChange]:
    """Run every transform file in order on one connection (the caller owns the transaction),
    advancing progress by one table after each file; the changes of the star tables, not of
    the temp relations files prepare for later ones."""
    changes = []
    for path in transform_files(directory):
        changes.append(run_transform_file(conn, path))
        if progress is not None:
            progress.advance(note=changes[-1].table)
    return [change for change in changes if change.table in _STAR_TABLES]


@task(name="transform", cache_policy=NO_CACHE)
def transform(conn: Connection) -> list[TableChange]:
    """Run the SQL transforms inside the caller's transaction (never retried on its own),
    reporting the tables done of all tables as they finish."""
    with Progress("transform", total=len(transform_files()), unit="tables") as progress:
        changes = run_transforms(conn, progress=progress)
    if changes:
        get_run_logger().info("rows written: %s", written(changes))
    return changes


def written(changes: list[TableChange]) -> str:
    """What the transforms wrote, in one line: `songplays 3,729, users 83 (80 replaced), …`."""
    return ", ".join(
        f"{c.table} {c.inserted:,}" + (f" ({c.deleted:,} replaced)" if c.deleted else "")
        for c in changes
    )
