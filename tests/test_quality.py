"""Data tests: each check finds the rows it is meant to find."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Unicode, create_engine, insert

from sql import model
from tasks.run.quality import compile_checks, default_checks, failing_samples, run_checks
from tasks.run.transform import TRANSFORM_DIR, run_transform_file
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.hold import transaction
from tasks.warehouse.tables import create_tables

T0 = datetime(2018, 11, 1, 10, 0)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def conn(request: pytest.FixtureRequest, tmp_path: Path):
    """A warehouse's connection in a transaction: DuckDB, and PostgreSQL standing in for
    Redshift (the checks' SQL is the same on both)."""
    if request.param == "duckdb":
        engine = DuckDBWarehouse(path=str(tmp_path / "q.duckdb")).get_engine()
    else:
        engine = create_engine(request.getfixturevalue("postgres_database"))
    with transaction(engine) as connection:
        create_tables(connection)
        yield connection
    engine.dispose()


def failing(conn, checks=None) -> dict[str, int]:
    # Checks run after the transforms, which build the run's staged plays first.
    run_transform_file(conn, next(TRANSFORM_DIR.glob("*_staged_plays.sql")))
    return {r.check: r.failing_rows for r in run_checks(conn, checks) if not r.passed}


def stage_plays(conn, *starts: datetime) -> None:
    """Staged NextSong events at these times: the run's plays, whose days bound the checks kept
    to them."""
    events = [
        {"page": "NextSong", "user_id": "1", "ts": t, "session_id": 1, "item_in_session": n}
        for n, t in enumerate(starts)
    ]
    conn.execute(insert(model.staging_events), events)


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


def insert_flawed_users(conn) -> None:
    """User 1 twice, user 2 at a level no user has; one time row, at T0."""
    conn.execute(
        insert(model.users),
        [
            {"user_id": 1, "level": "paid", "last_seen_at": T0},
            {"user_id": 1, "level": "free", "last_seen_at": T0},
            {"user_id": 2, "level": "gold", "last_seen_at": T0},
        ],
    )
    conn.execute(insert(model.time), [{"start_time": T0}])


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
    insert_flawed_users(conn)
    conn.execute(
        insert(model.songplays),
        [
            play("a", 1),
            play("a", 1),
            play("b", 9),
            play("c", 1, datetime(2018, 11, 2), song_id="SOX"),
        ],
    )
    stage_plays(conn, T0, datetime(2018, 11, 2))
    assert failing(conn) == {
        "unique_users_user_id": 1,
        "unique_songplays_songplay_id": 1,
        "accepted_values_users_level": 1,
        "relationships_songplays_user_id__users_user_id": 1,
        "relationships_songplays_start_time__time_start_time": 1,
        "relationships_songplays_song_id__songs_song_id": 1,
    }


def test_a_failed_check_samples_its_failing_rows(conn) -> None:
    insert_flawed_users(conn)
    conn.execute(insert(model.songplays), [play("a", 1), play("b", 9)])
    stage_plays(conn, T0)
    run_transform_file(conn, next(TRANSFORM_DIR.glob("*_staged_plays.sql")))
    checks = {c.name: c for c in default_checks()}

    def sample(name: str) -> list[str]:
        return failing_samples(conn, checks[name])

    assert sample("unique_users_user_id") == ["user_id=1, copies=2"]
    [gold] = sample("accepted_values_users_level")
    assert gold.startswith("user_id=2, ")
    assert ", level=gold, " in gold
    [orphan] = sample("relationships_songplays_user_id__users_user_id")
    assert orphan.startswith("songplay_id=b, ")
    assert ", user_id=9, " in orphan
    assert sample("row_count_songs") == []


def test_keys_and_times_are_checked_on_the_days_of_the_run_only(conn) -> None:
    ranged = {c.name for c in default_checks() if c.within is not None}
    assert ranged == {
        "unique_songplays_songplay_id",
        "unique_time_start_time",
        "relationships_songplays_start_time__time_start_time",
    }
    # Rows that an earlier run wrote and checked, on 1 November: duplicated keys and a play
    # without its time row are out of the range of a run staging plays of 3 November...
    earlier, day = T0, datetime(2018, 11, 3, 10, 0)
    conn.execute(insert(model.users), [{"user_id": 1, "level": "paid", "last_seen_at": day}])
    conn.execute(insert(model.time), [{"start_time": earlier}, {"start_time": earlier}])
    conn.execute(insert(model.songplays), [play("a", 1, earlier), play("a", 1, earlier)])
    conn.execute(insert(model.songplays), [play("x", 1, datetime(2018, 11, 1, 11))])
    conn.execute(insert(model.time), [{"start_time": day}])
    conn.execute(insert(model.songplays), [play("b", 1, day)])
    stage_plays(conn, day)
    assert failing(conn) == {}
    # ...but each is found inside it, and a relationship to a table checked whole (users) is
    # checked on every row.
    later = datetime(2018, 11, 3, 12, 0)
    conn.execute(insert(model.time), [{"start_time": later}, {"start_time": later}])
    conn.execute(insert(model.songplays), [play("b", 1, day), play("c", 1, later)])
    conn.execute(insert(model.songplays), [play("d", 1, datetime(2018, 11, 3, 11))])
    conn.execute(insert(model.songplays), [play("e", 2, earlier)])
    stage_plays(conn, later)
    assert failing(conn) == {
        "unique_songplays_songplay_id": 1,
        "unique_time_start_time": 1,
        "relationships_songplays_start_time__time_start_time": 1,
        "relationships_songplays_user_id__users_user_id": 1,
    }


def test_only_a_key_is_checked_unique_within_the_run_s_days() -> None:
    scratch = MetaData()
    plays = Table(
        "plays",
        scratch,
        Column("id", Integer, info={"key": True, "tests": ["unique"]}),
        Column("code", Integer, info={"tests": ["unique"]}),
        Column("start_time", Integer),
        info={"written_within": ("start_time", model.staged_plays)},
    )
    within = {c.name: c.within for c in compile_checks([plays])}
    assert within == {
        "unique_plays_id": ("start_time", model.staged_plays),
        "unique_plays_code": None,
    }


def test_a_run_without_plays_checks_no_day(conn) -> None:
    conn.execute(insert(model.users), [{"user_id": 1, "level": "paid", "last_seen_at": T0}])
    conn.execute(insert(model.songplays), [play("a", 1), play("a", 1)])
    assert failing(conn) == {}


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


def test_tests_declared_on_a_throwaway_table_are_compiled_and_can_fail(conn) -> None:
    scratch = MetaData()
    owners = Table("owners", scratch, Column("id", Integer, info={"tests": ["not_null", "unique"]}))
    pets = Table(
        "pets",
        scratch,
        Column("kind", Unicode(8), info={"tests": [{"accepted_values": ["cat", "dog"]}]}),
        Column("owner_id", Integer, info={"tests": [{"relationships": "owners.id"}]}),
        info={"tests": [{"row_count": {"when_staged": owners}}]},
    )
    scratch.create_all(conn)
    checks = compile_checks([owners, pets])
    assert [c.name for c in checks] == [
        "not_null_owners_id",
        "unique_owners_id",
        "accepted_values_pets_kind",
        "relationships_pets_owner_id__owners_id",
        "row_count_pets",
    ]
    assert failing(conn, checks) == {}
    conn.execute(insert(owners), [{"id": 1}, {"id": 1}, {"id": None}])
    assert failing(conn, checks) == {
        "not_null_owners_id": 1,
        "unique_owners_id": 1,
        "row_count_pets": 1,
    }
    # A value is a bind parameter, never SQL: a quote in it is just a value that is not accepted.
    conn.execute(insert(pets), [{"kind": "cat", "owner_id": 1}, {"kind": "o'cat", "owner_id": 2}])
    assert failing(conn, checks) == {
        "not_null_owners_id": 1,
        "unique_owners_id": 1,
        "accepted_values_pets_kind": 1,
        "relationships_pets_owner_id__owners_id": 1,
    }


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        (["not_nul"], "unknown test 'not_nul' on things.id"),
        ([{"relationships": "nowhere.id"}], "relates to 'nowhere.id'"),
        ([{"accepted_values": ["a"], "unique": None}], "one kind and its argument"),
    ],
)
def test_a_mistyped_test_is_refused_when_compiled(tests: list, message: str) -> None:
    things = Table("things", MetaData(), Column("id", Integer, info={"tests": tests}))
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_checks([things])


def test_a_row_count_is_a_table_test_only() -> None:
    staged = Table("staged", MetaData(), Column("id", Integer))
    column_test = Column("id", Integer, info={"tests": [{"row_count": {"when_staged": staged}}]})
    with pytest.raises(ValueError, match=re.escape("unknown test 'row_count' on things.id")):
        compile_checks([Table("things", MetaData(), column_test)])
