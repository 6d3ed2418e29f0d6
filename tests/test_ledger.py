"""The ledger of loaded files (tasks/run/ledger.py): a run compares its files with the rows of
the ledger that name them, a batch of names at a time, and reads no other row, however many
files the ledger holds; on DuckDB and on the PostgreSQL stand-in for Redshift."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from sql import model
from tasks.run.ledger import choose_files
from tasks.source.files import FileVersion, RunFiles
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.protocol import Warehouse
from tasks.warehouse.staging import FILES_PER_STATEMENT
from tasks.warehouse.tables import create_tables
from tests.postgres_redshift import stand_in

# Files of earlier runs (other days) in the ledger, and the run's song files: more than one
# statement's worth, so that the run's names go in several batches.
OTHER_FILES = 3 * FILES_PER_STATEMENT
RUN_SONGS = FILES_PER_STATEMENT + 500


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """A warehouse with its tables: a DuckDB file, or the stand-in for Redshift."""
    if request.param == "duckdb":
        block: Warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    else:
        url = request.getfixturevalue("postgres_database")
        block = stand_in(url, request.getfixturevalue("aws_credentials"))
    with block.get_engine().begin() as conn:
        create_tables(conn)
    return block


def ledger_row(name: str, kind: str, version: FileVersion) -> dict[str, Any]:
    """A loaded_files row of a file loaded earlier."""
    return {
        "source_file": name,
        "kind": kind,
        "size": version.size,
        "version": version.version,
        "records": 1,
        "flow_run_id": None,
        "loaded_at": datetime(2024, 1, 1),
    }


@contextmanager
def ledger_rows_read(engine: Engine) -> Iterator[list[int]]:
    """How many rows each statement that reads loaded_files returns: each is recorded as it
    runs and run again, alone, once the block ends."""
    statements: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().lower().startswith("select") and "loaded_files" in statement:
            statements.append((statement, parameters))

    counts: list[int] = []
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        counts += [len(conn.exec_driver_sql(s, p).all()) for s, p in statements]


def test_a_run_reads_only_the_ledger_rows_of_its_own_files(warehouse: Warehouse) -> None:
    def version(n: int) -> FileVersion:
        return FileVersion(100 + n, f"etag-{n}")

    songs = [f"s3://b/raw/song_data/TR{n:05d}.json" for n in range(RUN_SONGS)]
    events = [f"s3://b/raw/log_data/2018/11/2018-11-0{d}-events.json" for d in (1, 2)]
    others = [f"s3://b/raw/log_data/old/{n:05d}-events.json" for n in range(OTHER_FILES)]
    versions = {name: version(n) for n, name in enumerate([*songs, *events])}
    new_song, unversioned = songs[-1], songs[-2]
    versions.pop(unversioned)  # listed without a version: staged whatever the ledger says
    # The ledger: the other files, every song of the run but the new one (ten of them since
    # changed), the first event file (the second is new).
    changed = songs[:10]
    loaded_songs = {name: versions.get(name, version(0)) for name in songs if name != new_song}
    loaded_songs.update(dict.fromkeys(changed, FileVersion(1, "old")))
    loaded = [
        *(ledger_row(name, "events", version(-1)) for name in others),
        *(
            ledger_row(name, "songs", loaded_version)
            for name, loaded_version in loaded_songs.items()
        ),
        ledger_row(events[0], "events", versions[events[0]]),
    ]
    engine = warehouse.get_engine()
    with engine.begin() as conn:
        warehouse.insert_rows(conn, model.loaded_files, loaded)

    files = RunFiles(events, songs, versions=versions)
    with ledger_rows_read(engine) as counts, engine.begin() as conn:
        plan = choose_files.fn(conn, files, reload=False)

    # Only the rows of the run's files with a version: neither the others nor the file
    # without a version, nor the new files the ledger does not hold; a batch at a time.
    assert sum(counts) == RUN_SONGS - 2 + 1
    assert len(counts) == 2
    # The same decisions as reading the whole ledger: new, changed and unversioned files are
    # staged, unchanged ones skipped.
    assert plan.files.event_files == [events[1]]
    assert plan.files.song_files == [*changed, unversioned, new_song]
    assert (plan.unchanged_events, plan.unchanged_songs) == (1, RUN_SONGS - 12)
    # A reload stages every file and reads no ledger row.
    with ledger_rows_read(engine) as counts, engine.begin() as conn:
        reloaded = choose_files.fn(conn, files, reload=True)
    assert (counts, reloaded.files) == ([], files)
