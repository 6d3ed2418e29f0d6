"""The warehouse's table model: one definition for Redshift and DuckDB.

Every fact about a table lives here once. The staging tables' columns carry the JSON field they come
from (``info["json"]``), which yields the Redshift JSONPaths documents and DuckDB's JSON column
types; sqlalchemy-redshift's table options carry Redshift's physical design and are ignored by
DuckDB's dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    Table,
    Text,
    Unicode,
)
from sqlalchemy.sql.type_api import TypeEngine

metadata = MetaData()

# Redshift VARCHAR lengths are bytes; event and song text is unicode, so leave headroom.
NAME = 512
TEXT = 65535


def _json(field: str, required: bool = False, pattern: str | None = None) -> dict[str, object]:
    """Column info naming the JSON field a staging column is loaded from and what it must hold."""
    return {"json": field, "required": required, "pattern": pattern}


staging_events = Table(
    "staging_events",
    metadata,
    Column("artist", Unicode(NAME), info=_json("artist")),
    Column("auth", Unicode(32), info=_json("auth")),
    Column("first_name", Unicode(NAME), info=_json("firstName")),
    Column("gender", Unicode(8), info=_json("gender")),
    Column("item_in_session", Integer, info=_json("itemInSession", required=True)),
    Column("last_name", Unicode(NAME), info=_json("lastName")),
    Column("length", Double, info=_json("length")),
    Column("level", Unicode(16), info=_json("level")),
    Column("location", Unicode(NAME), info=_json("location")),
    Column("method", Unicode(16), info=_json("method")),
    Column("page", Unicode(64), info=_json("page", required=True)),
    Column("registration", Double, info=_json("registration")),
    Column("session_id", Integer, info=_json("sessionId", required=True)),
    Column("song", Unicode(NAME), info=_json("song")),
    Column("status", Integer, info=_json("status")),
    Column("ts", DateTime, info=_json("ts", required=True)),
    Column("user_agent", Unicode(TEXT), info=_json("userAgent")),
    # userId is a string: digits for an identified user, '' for a logged-out event.
    Column("user_id", Unicode(32), info=_json("userId", pattern="[0-9]*")),
    redshift_diststyle="EVEN",
)

staging_songs = Table(
    "staging_songs",
    metadata,
    Column("num_songs", Integer, info=_json("num_songs")),
    Column("artist_id", Unicode(32), info=_json("artist_id", required=True)),
    Column("artist_latitude", Double, info=_json("artist_latitude")),
    Column("artist_longitude", Double, info=_json("artist_longitude")),
    Column("artist_location", Unicode(NAME), info=_json("artist_location")),
    Column("artist_name", Unicode(NAME), info=_json("artist_name", required=True)),
    Column("song_id", Unicode(32), info=_json("song_id", required=True)),
    Column("title", Unicode(NAME), info=_json("title", required=True)),
    Column("duration", Double, info=_json("duration")),
    Column("year", Integer, info=_json("year")),
    redshift_diststyle="EVEN",
)

songplays = Table(
    "songplays",
    metadata,
    Column("songplay_id", Unicode(32), nullable=False, info={"key": True}),
    Column("start_time", DateTime, nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("level", Unicode(16)),
    Column("song_id", Unicode(32)),
    Column("artist_id", Unicode(32)),
    Column("session_id", Integer, nullable=False),
    Column("location", Unicode(NAME)),
    Column("user_agent", Unicode(TEXT)),
    redshift_diststyle="KEY",
    redshift_distkey="user_id",
    redshift_sortkey="start_time",
)

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, nullable=False, info={"key": True}),
    Column("first_name", Unicode(NAME)),
    Column("last_name", Unicode(NAME)),
    Column("gender", Unicode(8)),
    Column("level", Unicode(16)),
    # The time of the event the attributes came from: an older event never overwrites a newer one.
    Column("last_seen_at", DateTime, nullable=False),
    redshift_diststyle="ALL",
    redshift_sortkey="user_id",
)

songs = Table(
    "songs",
    metadata,
    Column("song_id", Unicode(32), nullable=False, info={"key": True}),
    Column("title", Unicode(NAME)),
    Column("artist_id", Unicode(32)),
    Column("year", Integer),
    Column("duration", Double),
    redshift_diststyle="ALL",
    redshift_sortkey="song_id",
)

artists = Table(
    "artists",
    metadata,
    Column("artist_id", Unicode(32), nullable=False, info={"key": True}),
    Column("name", Unicode(NAME)),
    Column("location", Unicode(NAME)),
    Column("latitude", Double),
    Column("longitude", Double),
    redshift_diststyle="ALL",
    redshift_sortkey="artist_id",
)

time = Table(
    "time",
    metadata,
    Column("start_time", DateTime, nullable=False, info={"key": True}),
    Column("hour", Integer),
    Column("day", Integer),
    Column("week", Integer),
    Column("month", Integer),
    Column("year", Integer),
    Column("weekday", Integer),
    redshift_diststyle="ALL",
    redshift_sortkey="start_time",
)

load_rejects = Table(
    "load_rejects",
    metadata,
    Column("source_file", Unicode(1024), nullable=False),
    Column("line_number", BigInteger, nullable=False),
    Column("reason", Unicode(1024), nullable=False),
    Column("raw_line", Text),
    Column("recorded_at", DateTime, nullable=False),
    redshift_diststyle="EVEN",
)

STAGING_TABLES: tuple[Table, ...] = (staging_events, staging_songs)
STAR_TABLES: tuple[Table, ...] = (songplays, users, songs, artists, time)
ALL_TABLES: tuple[Table, ...] = (*STAGING_TABLES, *STAR_TABLES, load_rejects)


@dataclass(frozen=True)
class JsonField:
    """A staging column and the JSON field it is loaded from."""

    column: str
    field: str
    sql_type: TypeEngine
    required: bool
    pattern: str | None


def json_fields(table: Table) -> list[JsonField]:
    """The JSON fields of a staging table, in column order."""
    return [
        JsonField(
            c.name, c.info["json"], c.type, bool(c.info.get("required")), c.info.get("pattern")
        )
        for c in table.columns
    ]


def jsonpaths(table: Table) -> dict[str, list[str]]:
    """The Redshift JSONPaths document for a staging table: one entry per column, in order."""
    return {"jsonpaths": [f"$['{f.field}']" for f in json_fields(table)]}


def key_column(table: Table) -> str:
    """The name of a star table's key column."""
    return next(c.name for c in table.columns if c.info.get("key"))
