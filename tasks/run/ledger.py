"""The ledger of loaded source files (the table loaded_files): which of a run's files it stages.

A file already loaded, with the size and version (S3 ETag, or local modification time) it has
now, holds nothing new: a run skips it unless asked to reload. A new or changed file is
staged, and a changed song file's records replace those it loaded before
(sql/transform/00_song_catalog.sql). The run writes the files it stages, with their versions, to
staging_files in its transaction; its transforms bring the ledger up to date from there
(sql/transform/11_loaded_files.sql), so the ledger commits with the tables or not at all.
The ledger holds every file ever loaded, many times a run's files: a run reads only the rows of
its own files, named by bind parameters, FILES_PER_STATEMENT at a time (fewer where the
warehouse's statements carry less: tasks/warehouse/staging.py's statement_limits).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sqlalchemy import Connection, delete, select

from sql import model
from tasks.common.logs import run_logger
from tasks.source.files import FileVersion, RunFiles
from tasks.warehouse.protocol import Warehouse
from tasks.warehouse.staging import name_batches, statement_limits

EVENTS = "events"
SONGS = "songs"


@dataclass(frozen=True)
class StagePlan:
    """The files a run stages (the listing narrowed to new and changed files, or all of them
    on a reload) and how many of each kind it skips as loaded and unchanged."""

    files: RunFiles
    unchanged_events: int
    unchanged_songs: int


def read_ledger(conn: Connection, names: list[str]) -> dict[str, FileVersion]:
    """The size and version the ledger has of each of these files it holds."""
    ledger = model.loaded_files.c
    found: dict[str, FileVersion] = {}
    for batch in name_batches(names, statement_limits(conn)):
        query = select(ledger.source_file, ledger.size, ledger.version).where(
            ledger.source_file.in_(batch)
        )
        found.update(
            (name, FileVersion(int(size), version)) for name, size, version in conn.execute(query)
        )
    return found


def compared_files(files: RunFiles) -> list[str]:
    """The run's files the ledger can tell unchanged: those with a version seen when listing
    (a file without one is staged whatever the ledger says)."""
    return [n for n in (*files.event_files, *files.song_files) if n in files.versions]


def plan_staging(files: RunFiles, ledger: dict[str, FileVersion], reload: bool) -> StagePlan:
    """The run's files to stage: every one on a reload, else those not in the ledger with the
    version the listing saw (a file without a known version is always staged)."""
    if reload:
        return StagePlan(files, 0, 0)

    def changed(names: list[str]) -> list[str]:
        return [n for n in names if n not in files.versions or ledger.get(n) != files.versions[n]]

    events, songs = changed(files.event_files), changed(files.song_files)
    narrowed = replace(files, event_files=events, song_files=songs)
    return StagePlan(
        narrowed, len(files.event_files) - len(events), len(files.song_files) - len(songs)
    )


@task(name="choose-files", cache_policy=NO_CACHE)
def choose_files(conn: Connection, files: RunFiles, reload: bool) -> StagePlan:
    """Compare the run's files with the ledger, in the run's transaction; the files unchanged
    since they were loaded are counted in the run's log."""
    ledger = {} if reload else read_ledger(conn, compared_files(files))
    plan = plan_staging(files, ledger, reload)
    if plan.unchanged_events or plan.unchanged_songs:
        run_logger().info(
            "%d event files and %d song files unchanged since they were loaded: not staged "
            "again (--reload stages them)",
            plan.unchanged_events,
            plan.unchanged_songs,
        )
    return plan


def staged_file_rows(
    files: RunFiles, at: datetime, event_records: dict[str, int] | None = None
) -> Iterator[dict[str, object]]:
    """staging_files' rows for the files a run staged: kind, size, version, the records each
    event file staged where the warehouse counted them, the run and its time."""
    run_id = flow_run.get_id()
    for kind, names in ((EVENTS, files.event_files), (SONGS, files.song_files)):
        for name in names:
            version = files.versions.get(name)
            yield {
                "source_file": name,
                "kind": kind,
                "size": version.size if version else 0,
                "version": version.version if version else "",
                "records": (event_records or {}).get(name) if kind == EVENTS else None,
                "flow_run_id": str(run_id) if run_id else None,
                "loaded_at": at,
            }


def record_staged_files(
    warehouse: Warehouse,
    conn: Connection,
    files: RunFiles,
    at: datetime,
    event_records: dict[str, int] | None = None,
) -> None:
    """Write the files the run staged to staging_files (emptied first), in bulk."""
    conn.execute(delete(model.staging_files))
    rows = list(staged_file_rows(files, at, event_records))
    warehouse.insert_rows(conn, model.staging_files, rows)
