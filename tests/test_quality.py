"""Data tests: each check finds the rows it is meant to find."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from sql import model
from tasks.run.quality import default_checks, run_checks
from tasks.warehouse.base import create_tables, transaction
from tasks.warehouse.duckdb import DuckDBWarehouse

T0 = datetime(2018, 11, 1, 10, 0)


@pytest.fixture()
def conn(tmp_path: Path):
    engine = DuckDBWarehouse(path=str(tmp_path / "q.duckdb")).get_engine()
    with transaction(engine) as connection:
        create_tables(connection)
        yield connection


def failing(conn) -> dict[str, int]:
    return {r.check: r.failing_rows for r in run_checks(conn) if not r.passed}


def play(songplay_id: str, user_id: int, start: datetime = T0, **extra) -> dict:
    return {
        "songplay_id": songplay_id,
        "start_time": start,
        "user_id": user_id,
        "level": "free",
        "session_id": 1,
        "song_id": None,
        **extra,
    }


def test_every_star_key_is_tested() -> None:
    names = {c.name for c in default_checks()}
    for table in model.STAR_TABLES:
        key = model.key_column(table)
        assert f"not_null_{table.name}_{key}" in names
        assert f"unique_{table.name}_{key}" in names


def test_clean_tables_pass(conn) -> None:
    conn.execute(insert(model.users), [{"user_id": 1, "level": "paid", "last_seen_at": T0}])
    conn.execute(insert(model.time), [{"start_time": T0, "hour": 10}])
    conn.execute(insert(model.songplays), [play("a", 1)])
    assert failing(conn) == {}


def test_duplicates_orphans_and_bad_values_are_counted(conn) -> None:
    conn.execute(
        insert(model.users),
        [
            {"user_id": 1, "level": "paid", "last_seen_at": T0},
            {"user_id": 1, "level": "free", "last_seen_at": T0},
            {"user_id": 2, "level": "gold", "last_seen_at": T0},
        ],
    )
    conn.execute(insert(model.time), [{"start_time": T0}])
    conn.execute(
        insert(model.songplays),
        [
            play("a", 1),
            play("a", 1),
            play("b", 9),
            play("c", 1, datetime(2018, 11, 2), song_id="SOX"),
        ],
    )
    assert failing(conn) == {
        "unique_users_user_id": 1,
        "unique_songplays_songplay_id": 1,
        "accepted_values_users_level": 1,
        "relationships_songplays_user_id__users_user_id": 1,
        "relationships_songplays_start_time__time_start_time": 1,
        "relationships_songplays_song_id__songs_song_id": 1,
    }


def test_empty_tables_fail_only_when_data_was_staged(conn) -> None:
    assert failing(conn) == {}
    conn.execute(
        insert(model.staging_events),
        [{"page": "NextSong", "user_id": "7", "ts": T0, "session_id": 1, "item_in_session": 0}],
    )
    assert failing(conn) == {
        "row_count_songplays": 1,
        "row_count_time": 1,
        "row_count_users": 1,
    }
