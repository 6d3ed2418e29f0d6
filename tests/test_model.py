"""The table model: one definition, two dialects."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb_engine
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

import sql
from sql import model
from sql.fields import jsonpaths


def ddl(table, dialect) -> str:
    """Compiled CREATE TABLE, whitespace normalised."""
    return re.sub(r"\s+", " ", str(CreateTable(table).compile(dialect=dialect))).strip()


REDSHIFT = RedshiftDialect_redshift_connector()
DUCKDB = duckdb_engine.Dialect()


def test_redshift_ddl_carries_the_physical_design() -> None:
    # The fact table and time are distributed and sorted on the column plays_by_hour joins
    # them on; the other dimensions are left to Redshift (AUTO: no DISTSTYLE clause).
    for table in (model.songplays, model.time):
        assert ddl(table, REDSHIFT).endswith(
            ") DISTSTYLE KEY DISTKEY (start_time) SORTKEY (start_time)"
        )
    for table in (model.users, model.songs, model.artists):
        assert ddl(table, REDSHIFT).endswith(f") SORTKEY ({model.key_column(table)})")
        assert "DISTSTYLE" not in ddl(table, REDSHIFT)
    assert ddl(model.staging_events, REDSHIFT).endswith(") DISTSTYLE EVEN")
    assert "ALL" not in {t.dialect_options["redshift"]["diststyle"] for t in model.ALL_TABLES}


def test_the_join_of_plays_by_hour_is_the_distribution_key_of_both_sides() -> None:
    # The physical design follows the analyst queries: the one join between two tables that
    # grow with every run is songplays to time on start_time.
    text = (Path(sql.__file__).parent / "analytics" / "plays_by_hour.sql").read_text()
    assert "inner join time on time.start_time = songplays.start_time" in text
    for table in (model.songplays, model.time):
        assert table.dialect_options["redshift"]["distkey"] == "start_time"


def test_duckdb_ddl_has_no_redshift_options() -> None:
    for table in model.ALL_TABLES:
        text = ddl(table, DUCKDB)
        assert not re.search(r"DISTSTYLE|DISTKEY|SORTKEY", text), text
        assert text.startswith(f"CREATE TABLE {table.name} (")


def test_measures_are_double_precision_in_both_dialects() -> None:
    for dialect in (REDSHIFT, DUCKDB):
        assert "length DOUBLE PRECISION" in ddl(model.staging_events, dialect)
        songs = ddl(model.staging_songs, dialect)
        for column in ("duration", "artist_latitude", "artist_longitude"):
            assert f"{column} DOUBLE PRECISION" in songs
        assert "user_id INTEGER NOT NULL" in ddl(model.users, dialect)


def test_jsonpaths_follow_staging_columns_in_order() -> None:
    paths = jsonpaths(model.staging_events)["jsonpaths"]
    assert len(paths) == len(model.staging_events.columns)
    assert paths[:3] == ["$['artist']", "$['auth']", "$['firstName']"]
    assert paths[-2:] == ["$['userAgent']", "$['userId']"]
    songs = jsonpaths(model.staging_songs)["jsonpaths"]
    # Song fields are named as their columns, but for the file a record came from.
    assert songs[:-1] == [f"$['{c.name}']" for c in model.staging_songs.columns][:-1]
    assert songs[-1] == f"$['{model.SOURCE_FILE_FIELD}']"


def test_star_schema_columns_are_the_public_contract() -> None:
    columns = {t.name: [c.name for c in t.columns] for t in model.STAR_TABLES}
    assert columns == {
        "songplays": [
            "songplay_id",
            "start_time",
            "user_id",
            "level",
            "song_id",
            "artist_id",
            "session_id",
            "location",
            "user_agent",
        ],
        "users": ["user_id", "first_name", "last_name", "gender", "level", "last_seen_at"],
        "songs": ["song_id", "title", "artist_id", "year", "duration"],
        "artists": ["artist_id", "name", "location", "latitude", "longitude"],
        "time": ["start_time", "hour", "day", "week", "month", "year", "weekday"],
    }


def test_a_number_pattern_matches_exactly_the_numbers_up_to_its_limit() -> None:
    import random
    import re

    from sql.values import USER_ID_PATTERN, digits_up_to

    pick = random.Random(5)
    for limit in (0, 7, 10, 99, 100, 305, 1000, 2**31 - 1):
        pattern = re.compile(digits_up_to(limit))
        numbers = [*range(2000), limit - 1, limit, limit + 1]
        numbers += [pick.randrange(0, 3 * limit + 2) for _ in range(2000)]
        for n in numbers:
            assert bool(pattern.fullmatch(str(n))) == (0 <= n <= limit), (limit, n)
    user_id = re.compile(USER_ID_PATTERN)
    assert all(user_id.fullmatch(t) for t in ("", "0", "007", "2147483647"))
    assert not any(user_id.fullmatch(t) for t in ("2147483648", "99999999999", "-1", "1.5", "x"))
