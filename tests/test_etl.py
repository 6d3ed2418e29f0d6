"""End-to-end runs of the sparkify-etl flow on real DuckDB files and generated data."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

import tasks.run.transform
from flows.etl import etl
from tasks.run.quality import QualityCheckFailed
from tests.helpers import expected_from_json, query, snapshot, table_counts

pytestmark = pytest.mark.usefixtures("prefect_server")

WEEK = [date(2018, 11, 1) + timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def loaded_month(
    prefect_server, month_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """The generated month loaded once into a DuckDB file, for the tests that only read it;
    the run's summary beside it."""
    db = tmp_path_factory.mktemp("month-loaded") / "wh.duckdb"
    return db, etl(str(month_source), str(db))


@pytest.fixture(scope="module")
def loaded_week(
    prefect_server, week_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The generated week loaded once, all its days in one run: read by the tests, or copied
    by those that load into it again."""
    db = tmp_path_factory.mktemp("week-loaded") / "whole.duckdb"
    etl(str(week_source), str(db), WEEK[0], WEEK[-1])
    return db


def test_month_matches_figures_computed_from_the_json(
    loaded_month: tuple[Path, dict], month_source: Path
) -> None:
    db, summary = loaded_month
    expected = expected_from_json(month_source)

    assert table_counts(db) == expected.counts
    assert summary["counts"]["songplays"] == expected.counts["songplays"]
    matched = query(db, "select count(*) from songplays where song_id is not null")[0][0]
    assert matched == expected.matched_plays
    assert 0 < matched < expected.counts["songplays"]  # both matching and unmatched plays
    paid = query(db, "select count(*) from users where level = 'paid'")[0][0]
    assert paid == expected.paid_users
    assert dict(query(db, "select user_id, level from users")) == expected.user_levels
    assert all(c["passed"] for c in summary["checks"])
    assert summary["staged"]["events"]["rejects"] == 0
    # Every part of the run's body is timed, in the order the parts first ran.
    assert list(summary["seconds"]) == [
        "list files",
        "warehouse lock",
        "hold warehouse",
        "create tables",
        "stage",
        "publish",
        "transform + check",
        "count rows",
        "commit",
    ]


def test_matched_plays_carry_song_and_artist_of_the_catalog(
    loaded_month: tuple[Path, dict],
) -> None:
    db, _ = loaded_month
    mismatched = query(
        db,
        "select count(*) from songplays p join songs s on s.song_id = p.song_id "
        "where s.artist_id <> p.artist_id",
    )[0][0]
    assert mismatched == 0
    types = dict(
        query(
            db,
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'songs'",
        )
    )
    assert types["duration"] == "DOUBLE"


def test_time_follows_iso_week_and_sunday_zero(loaded_month: tuple[Path, dict]) -> None:
    db, _ = loaded_month
    rows = query(db, "select start_time, hour, day, week, month, year, weekday from time")
    for start, hour, day, week, month, year, weekday in rows:
        iso = start.isocalendar()
        assert (hour, day, month, year) == (start.hour, start.day, start.month, start.year)
        assert week == iso.week
        assert weekday == start.isoweekday() % 7


def test_same_run_twice_gives_identical_tables(
    loaded_week: Path, week_source: Path, tmp_path: Path
) -> None:
    db = tmp_path / "wh.duckdb"
    shutil.copyfile(loaded_week, db)  # the first run
    first = snapshot(db)
    # Reloaded, so every file is staged again (a plain rerun skips them: test_incremental.py).
    second_run = etl(str(week_source), str(db), WEEK[0], WEEK[-1], reload=True)
    assert snapshot(db) == first
    changes = {c["table"]: c for c in second_run["changes"]}
    assert changes["songplays"]["deleted"] == changes["songplays"]["inserted"] > 0


@pytest.mark.parametrize("order", ["forward", "reverse"], ids=["in-date-order", "reverse-order"])
def test_day_by_day_equals_whole_range(
    loaded_week: Path, week_source: Path, tmp_path: Path, order: str
) -> None:
    whole = loaded_week
    daily = tmp_path / "daily.duckdb"
    for day in WEEK if order == "forward" else list(reversed(WEEK)):
        etl(str(week_source), str(daily), day, day)
    assert snapshot(daily) == snapshot(whole)
    # The data has users whose level changes, so an older day loaded last must not win.
    changed = query(
        whole,
        "select count(*) from (select user_id from songplays group by user_id "
        "having count(distinct level) > 1)",
    )[0][0]
    assert changed > 0
    assert dict(query(daily, "select user_id, level from users")) == (
        expected_from_json(week_source).user_levels
    )


def test_date_range_loads_only_its_days(week_source: Path, tmp_path: Path) -> None:
    db = tmp_path / "wh.duckdb"
    summary = etl(str(week_source), str(db), WEEK[1], WEEK[2])
    assert summary["event_files"] == 2
    days = query(db, "select distinct cast(start_time as date) from songplays order by 1")
    assert [d for (d,) in days] == [WEEK[1], WEEK[2]]


@pytest.fixture
def failing_transforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the transform folder, with a statement added by each test."""
    folder = tmp_path / "transform"
    shutil.copytree(tasks.run.transform.TRANSFORM_DIR, folder)
    monkeypatch.setattr(tasks.run.transform, "TRANSFORM_DIR", folder)
    return folder


@pytest.mark.parametrize(
    ("injected", "statement", "error", "match"),
    [
        # Runs after artists, songs and users have been rewritten, before songplays.
        (
            "03_zz_injected_failure.sql",
            "insert into users select * from no_such_table;",
            Exception,
            "no_such_table",
        ),
        # Every transform succeeds; the quality checks find the duplicate.
        (
            "99_zz_duplicate_user.sql",
            "insert into users select * from users limit 1;",
            QualityCheckFailed,
            "unique_users_user_id",
        ),
    ],
    ids=["failing-transform", "failing-quality-check"],
)
def test_a_failing_run_leaves_the_tables_as_they_were(
    week_source: Path,
    tmp_path: Path,
    failing_transforms: Path,
    injected: str,
    statement: str,
    error: type[Exception],
    match: str,
) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db), WEEK[0], WEEK[0])
    before = snapshot(db)
    (failing_transforms / injected).write_text(statement + "\n")
    with pytest.raises(error, match=match):
        etl(str(week_source), str(db), WEEK[1], WEEK[5])
    assert snapshot(db) == before


def test_a_saved_duckdb_block_names_the_warehouse(week_source: Path, tmp_path: Path) -> None:
    from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse

    db = tmp_path / "from-block.duckdb"
    DuckDBWarehouse(path=str(db)).save("laptop-test", overwrite=True)
    summary = etl(str(week_source), "sparkify-duckdb-warehouse/laptop-test", WEEK[0], WEEK[0])
    assert summary["warehouse"] == f"duckdb:{db}"
    counts = table_counts(db)
    assert counts == {t: summary["counts"][t] for t in counts}
    assert counts["songplays"] > 0


def test_an_unknown_warehouse_is_a_clear_error(week_source: Path) -> None:
    with pytest.raises(ValueError, match="neither a DuckDB file"):
        etl(str(week_source), "production")


def test_a_warehouse_of_an_earlier_version_is_brought_to_the_model(
    week_source: Path, tmp_path: Path
) -> None:
    """A warehouse loaded before the play key hashed epoch milliseconds (staging without ts_ms,
    plays keyed by the formatted timestamp) and before the ledger of loaded files and the song
    catalog: the next run loads every file again, upgrading it without duplicating a play."""
    import duckdb

    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db))
    before = snapshot(db)
    with duckdb.connect(str(db)) as con:
        con.execute("alter table staging_events drop column ts_ms")
        con.execute("alter table staging_songs drop column source_file")
        for table in ("loaded_files", "song_catalog", "songplay_songs", "staging_files"):
            con.execute(f"drop table {table}")
        con.execute(
            "update songplays set songplay_id = md5(cast(session_id as varchar) || '|' "
            "|| cast(start_time as varchar))"
        )
    etl(str(week_source), str(db))
    after = snapshot(db)
    assert after == before  # same rows, keyed by the current scheme, none twice
