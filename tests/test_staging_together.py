"""Events and songs staged side by side on DuckDB: the song files are parsed in a thread of their
own while DuckDB reads the event files, with the same rows, rejects and reports as staging one
after the other."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sql import model
from tasks.source.local import LocalSource
from tasks.warehouse.duckdb import staging as duckdb_staging
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.hold import transaction
from tasks.warehouse.protocol import StageResult
from tasks.warehouse.staging import stage_in_turn
from tasks.warehouse.tables import create_tables
from tests.test_staging import SONG, event
from tests.test_staging_scale import day_lines, text, write

AT = datetime(2024, 1, 1)


@pytest.fixture
def source(tmp_path: Path) -> LocalSource:
    """Two days of events (one with a malformed line) and three song files (one malformed)."""
    root = tmp_path / "source"
    write(root / "log_data" / "2018-11-01-events.json", text(day_lines(1, 5)))
    bad_day = [*day_lines(2, 2), "{not json", event(sessionId=2, itemInSession=9)]
    write(root / "log_data" / "2018-11-02-events.json", text(bad_day))
    for n in range(2):
        song = {**SONG, "song_id": f"SOTOGETHER{n:07d}", "title": f"Song {n}"}
        write(root / "song_data" / "A" / f"TR{n}.json", json.dumps(song).encode())
    write(root / "song_data" / "A" / "TRBAD.json", b'{"song_id": ')
    return LocalSource(root)


def staged(tmp_path: Path, source: LocalSource, name: str, together: bool) -> dict[str, Any]:
    """Stage the source's files into a fresh DuckDB file, side by side or in turn: the reports
    (without their timings), staged rows of both tables and the rejects."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / f"{name}.duckdb"))
    files = source.run_files(None, None)
    with transaction(warehouse.get_engine()) as conn:
        create_tables(conn)
        if together:
            result = warehouse.stage_files(conn, source, files, AT)
        else:
            result = stage_in_turn(warehouse, conn, source, files, AT)
        tables = (model.staging_events, model.staging_songs, model.load_rejects)
        rows = {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in tables}
    return {"reports": reports(result), **rows}


def reports(result: StageResult) -> list[dict[str, Any]]:
    """Both reports without their seconds."""
    return [{**asdict(r), "seconds": None} for r in (result.events, result.songs)]


def test_side_by_side_stages_what_one_after_the_other_stages(
    tmp_path: Path, source: LocalSource
) -> None:
    together = staged(tmp_path, source, "together", together=True)
    in_turn = staged(tmp_path, source, "in-turn", together=False)
    assert together == in_turn
    events, songs = together["reports"]
    assert (events["rows"], events["rejects"], songs["rows"], songs["rejects"]) == (8, 1, 2, 1)
    assert len(together["load_rejects"]) == 2


def test_song_files_are_parsed_while_the_events_stage(
    tmp_path: Path, source: LocalSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging the events waits until a song file has been read: it could not end if the songs
    were read only after the events."""
    song_read = threading.Event()
    readers = []
    read_stored, stage_events = duckdb_staging.read_stored, duckdb_staging.stage_events_duckdb

    def read_song(path: str) -> bytes:
        readers.append(threading.current_thread().name)
        song_read.set()
        return read_stored(path)

    def stage_events_when_songs_are_read(*args: Any, **kwargs: Any) -> Any:
        assert song_read.wait(timeout=30), "no song file was read while the events staged"
        return stage_events(*args, **kwargs)

    monkeypatch.setattr(duckdb_staging, "read_stored", read_song)
    monkeypatch.setattr(duckdb_staging, "stage_events_duckdb", stage_events_when_songs_are_read)
    together = staged(tmp_path, source, "together", together=True)
    assert len(together["staging_events"]) == 8
    assert len(together["staging_songs"]) == 2
    assert len(readers) == 3
    assert all(name.startswith("parse-songs") for name in readers)


def test_a_failure_parsing_the_songs_fails_the_staging(
    tmp_path: Path, source: LocalSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(path: str) -> bytes:
        raise MemoryError(f"no memory left reading {path}")

    monkeypatch.setattr(duckdb_staging, "read_stored", failing)
    with pytest.raises(MemoryError, match=r"reading .*TR"):
        staged(tmp_path, source, "together", together=True)
