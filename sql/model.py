"""The warehouse's table model: one definition for Redshift and DuckDB.

Every fact about a table lives here once. The staging tables' columns carry the JSON field they come
from (``info["json"]``), which yields the Redshift JSONPaths documents and DuckDB's JSON column
types; sqlalchemy-redshift's table options carry Redshift's physical design and are ignored by
DuckDB's dialect.

The star tables' data tests sit beside the columns they test, as dbt's schema.yml puts them
(``info["tests"]``, compiled into checks by tasks/run/quality.py). A column's tests:
``"not_null"``, ``"unique"``, ``{"relationships": "table.column"}`` (every non-null value is in
that column) and ``{"accepted_values": [...]}`` (every non-null value is one of these); a table's:
``{"row_count": {"when_staged": relation}}`` (the table is not empty when the relation has rows).
A table whose rows a run writes only within a range of one column (the days of its plays), and
whose key determines that column (rows of one key share it), says so in
``info["written_within"]``: ``(column, relation)``, the range being the least to the greatest
value of that column in the relation. Its unique checks, and its relationships to a table
written within the same range, then look at the rows in that range only: the rows outside it
passed the checks of the runs that wrote them, and no row there shares a key with a row the run
wrote, so the checks cost what the run's input costs, not what the warehouse's history does.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Integer,
    MetaData,
    Table,
    Unicode,
    column,
    func,
    select,
)
from sqlalchemy.sql.expression import FromClause, TableClause
from sqlalchemy.sql.type_api import TypeEngine

from sql.values import LEVEL_VALUES, LEVELS, USER_ID_VALUES

metadata = MetaData()

# Text widths, from the data (`python flows/widths.py` measures a source against them). Redshift
# counts VARCHAR lengths in bytes, and sizes query-time temporary tables by the declared width
# ("use the smallest possible column size"), so each star column is as narrow as its data
# allows. Staging takes any text up to Redshift's widest VARCHAR (TEXT): width is no reason to
# lose a record. Keys and the text plays are matched on are never cut, so a song record whose
# title or artist name is wider than its column is a reject. Descriptive text (names, places,
# user agents) is cut by the transforms to a number of characters (left(x, n), characters on
# every engine) that its star column holds in UTF-8's widest, four bytes each; each run counts
# the values it cut. Measured on the bundled sample (whose user agents, names and places follow
# the public Sparkify logs): user agents at most 139 bytes, first and last names 11, event
# locations 39 ("City-City, ST-ST" metro areas). Song and artist text comes from the Million
# Song Dataset's free text, whose widest is not measured here: it keeps 512 bytes.
NAME = 512
TEXT = 65535
USER_AGENT_CHARS = 256
PERSON_NAME_CHARS = 64
GENDER_CHARS = 8
PLACE_CHARS = 64
ARTIST_PLACE_CHARS = 128
# Bytes of UTF-8's widest character.
UTF8_MAX_BYTES = 4


def cut_text(chars: int) -> Unicode:
    """The type of a star column holding descriptive text cut to `chars` characters."""
    return Unicode(UTF8_MAX_BYTES * chars)


# A file's name as a run knows it: a local path, or an s3:// URI, "s3://" and a bucket name of
# at most 63 bytes, "/" and a key of at most 1,024 bytes.
FILE_NAME = 5 + 63 + 1 + 1024
# The JSON field that carries a song record's file into staging_songs: DuckDB's staging fills
# it from the file it reads, and Redshift's COPY reads it from the combined objects, whose
# lines are written with it (tasks/warehouse/redshift/song_bundles.py). No Sparkify record has it.
SOURCE_FILE_FIELD = "__sparkify_source_file"


def _staged(
    name: str,
    sql_type: TypeEngine | type[TypeEngine],
    field: str,
    required: bool = False,
    pattern: str | None = None,
    pattern_says: str | None = None,
    needed_when: tuple[str, str] | None = None,
    cut_to: int | None = None,
) -> Column:
    """A staging column, its info naming the JSON field it is loaded from and what it must hold
    (a pattern its whole text matches, and what a reject says of a value that does not; with
    `needed_when` (column, value), a value other than null or '' wherever that staging column
    holds that value; with `cut_to`, the number of characters the transforms keep of it).
    A required field's column is NOT NULL, so Redshift's COPY itself rejects a record without
    it (into its load-error log) as DuckDB's staging does, instead of a later insert failing."""
    says = pattern_says or f"does not match {pattern}"
    info = {
        "json": field,
        "required": required,
        "pattern": pattern,
        "pattern_says": says,
        "needed_when": needed_when,
        "cut_to": cut_to,
    }
    return Column(name, sql_type, nullable=not required, info=info)


def _tests(*tests: str | dict[str, object], **info: object) -> dict[str, object]:
    """Column or table info declaring its data tests (and any other info, e.g. key=True)."""
    return {**info, "tests": list(tests)}


def _not_empty_when(staged: FromClause) -> dict[str, object]:
    """Table info: the table must not be empty when the run staged rows in `staged`."""
    return _tests({"row_count": {"when_staged": staged}})


def _key(name: str, sql_type: TypeEngine | type[TypeEngine]) -> Column:
    """A star table's key column: tested not_null and unique, since Redshift enforces no key."""
    return Column(name, sql_type, nullable=False, info=_tests("not_null", "unique", key=True))


def _key_of(columns: Iterable[Column]) -> str:
    """The name of the column declared the key (info key=True)."""
    return next(c.name for c in columns if c.info.get("key"))


def _written_within(column: str, relation: FromClause) -> dict[str, object]:
    """Table info: a run writes rows of the table only where `column` lies within the range of
    the relation's `column` (see the module's docstring)."""
    return {"written_within": (column, relation)}


def _dimension(
    name: str,
    *columns: Column,
    when_staged: FromClause,
    info: dict[str, object] | None = None,
    **distribution: str,
) -> Table:
    """A dimension table sorted on its key. Without `distribution` (redshift_diststyle, ...)
    it has no DISTSTYLE clause, which Redshift reads as AUTO: ALL while the table is small,
    EVEN or KEY once it grows (sqlalchemy-redshift has no AUTO keyword; README, "Physical
    design", says why each table is distributed as it is)."""
    return Table(
        name,
        metadata,
        *columns,
        redshift_sortkey=_key_of(columns),
        info={**_not_empty_when(when_staged), **(info or {})},
        **distribution,
    )


staging_events = Table(
    "staging_events",
    metadata,
    _staged("artist", Unicode(TEXT), "artist"),
    _staged("auth", Unicode(TEXT), "auth"),
    _staged("first_name", Unicode(TEXT), "firstName", cut_to=PERSON_NAME_CHARS),
    _staged("gender", Unicode(TEXT), "gender", cut_to=GENDER_CHARS),
    _staged("item_in_session", Integer, "itemInSession", required=True),
    _staged("last_name", Unicode(TEXT), "lastName", cut_to=PERSON_NAME_CHARS),
    _staged("length", Double, "length"),
    _staged("level", Unicode(TEXT), "level", **LEVEL_VALUES),
    _staged("location", Unicode(TEXT), "location", cut_to=PLACE_CHARS),
    _staged("method", Unicode(TEXT), "method"),
    _staged("page", Unicode(TEXT), "page", required=True),
    _staged("registration", Double, "registration"),
    _staged("session_id", Integer, "sessionId", required=True),
    _staged("song", Unicode(TEXT), "song"),
    _staged("status", Integer, "status"),
    _staged("ts", DateTime, "ts", required=True),
    # The same field as its integer of epoch milliseconds: the play key hashes this, the same
    # text on every engine (see sql/transform/04_staged_plays.sql).
    _staged("ts_ms", BigInteger, "ts"),
    _staged("user_agent", Unicode(TEXT), "userAgent", cut_to=USER_AGENT_CHARS),
    # userId is a string: digits for an identified user, '' for a logged-out event.
    _staged("user_id", Unicode(TEXT), "userId", **USER_ID_VALUES),
    redshift_diststyle="EVEN",
)

staging_songs = Table(
    "staging_songs",
    metadata,
    _staged("num_songs", Integer, "num_songs"),
    _staged("artist_id", Unicode(32), "artist_id", required=True),
    _staged("artist_latitude", Double, "artist_latitude"),
    _staged("artist_longitude", Double, "artist_longitude"),
    _staged("artist_location", Unicode(TEXT), "artist_location", cut_to=ARTIST_PLACE_CHARS),
    _staged("artist_name", Unicode(NAME), "artist_name", required=True),
    _staged("song_id", Unicode(32), "song_id", required=True),
    _staged("title", Unicode(NAME), "title", required=True),
    _staged("duration", Double, "duration"),
    _staged("year", Integer, "year"),
    # The song file the record came from: a changed file's records replace those it loaded
    # before (song_catalog).
    _staged("source_file", Unicode(FILE_NAME), SOURCE_FILE_FIELD, required=True),
    redshift_diststyle="EVEN",
)


# The run's plays, NextSong events of identified users with their key: a temp table that
# sql/transform/04_staged_plays.sql builds before songplays and time, which both read it. A run
# writes songplays and time rows only at the start times of its plays (08_songplays.sql and
# 09_time.sql delete and insert within their range; a rematch changes song_id and artist_id,
# never a key or start time).
staged_plays = TableClause("staged_plays", column("start_time"))
identified_events = (
    select(staging_events.c.user_id)
    .where(func.nullif(staging_events.c.user_id, "").is_not(None))
    .subquery("identified_events")
)


songplays = Table(
    "songplays",
    metadata,
    _key("songplay_id", Unicode(32)),
    Column(
        "start_time",
        DateTime,
        nullable=False,
        info=_tests("not_null", {"relationships": "time.start_time"}),
    ),
    Column(
        "user_id",
        Integer,
        nullable=False,
        info=_tests("not_null", {"relationships": "users.user_id"}),
    ),
    Column("level", Unicode(16), info=_tests({"accepted_values": LEVELS})),
    Column("song_id", Unicode(32), info=_tests({"relationships": "songs.song_id"})),
    Column("artist_id", Unicode(32), info=_tests({"relationships": "artists.artist_id"})),
    Column("session_id", Integer, nullable=False),
    Column("location", cut_text(PLACE_CHARS)),
    Column("user_agent", cut_text(USER_AGENT_CHARS)),
    # Distributed and sorted on start_time, with time: plays_by_hour joins them on it, so the
    # join is collocated; a run's delete is bounded by its time range (08_songplays.sql), which
    # the sort key lets Redshift narrow to the blocks of the run's days. user_id joins no
    # analyst query and skews when few users dominate.
    redshift_diststyle="KEY",
    redshift_distkey="start_time",
    redshift_sortkey="start_time",
    info={**_not_empty_when(staged_plays), **_written_within("start_time", staged_plays)},
)

users = _dimension(
    "users",
    _key("user_id", Integer),
    Column("first_name", cut_text(PERSON_NAME_CHARS)),
    Column("last_name", cut_text(PERSON_NAME_CHARS)),
    Column("gender", cut_text(GENDER_CHARS)),
    Column("level", Unicode(16), info=_tests({"accepted_values": LEVELS})),
    # The time of the event the attributes came from: an older event never overwrites a newer one.
    Column("last_seen_at", DateTime, nullable=False),
    when_staged=identified_events,
)

songs = _dimension(
    "songs",
    _key("song_id", Unicode(32)),
    Column("title", Unicode(NAME)),
    Column("artist_id", Unicode(32), info=_tests({"relationships": "artists.artist_id"})),
    Column("year", Integer),
    Column("duration", Double),
    when_staged=staging_songs,
)

artists = _dimension(
    "artists",
    _key("artist_id", Unicode(32)),
    Column("name", Unicode(NAME)),
    Column("location", cut_text(ARTIST_PLACE_CHARS)),
    Column("latitude", Double),
    Column("longitude", Double),
    when_staged=staging_songs,
)

time = _dimension(
    "time",
    _key("start_time", DateTime),
    Column("hour", Integer),
    Column("day", Integer),
    Column("week", Integer),
    Column("month", Integer),
    Column("year", Integer),
    Column("weekday", Integer),
    when_staged=staged_plays,
    info=_written_within("start_time", staged_plays),
    # One row per play's start_time, about as large as songplays and growing with every run:
    # distributed like songplays, so their join on start_time stays on each slice.
    redshift_diststyle="KEY",
    redshift_distkey="start_time",
)


# The ledger of loaded source files: one row per file a run staged, with the size and version
# (an S3 ETag, or a local file's modification time in nanoseconds) it had then, so a later run
# stages only the files that are new or changed (and every file when asked to reload).
def _file_columns() -> list[Column]:
    """A loaded file's columns: its name, kind ('events' or 'songs'), size and version, the
    records it put into staging (song files' are counted from staging_songs; an event file's
    where the warehouse counts them while staging), and the run that loaded it."""
    return [
        Column("source_file", Unicode(FILE_NAME), nullable=False),
        Column("kind", Unicode(8), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("version", Unicode(256), nullable=False),
        Column("records", BigInteger),
        Column("flow_run_id", Unicode(64)),
        Column("loaded_at", DateTime, nullable=False),
    ]


loaded_files = Table(
    "loaded_files",
    metadata,
    *_file_columns(),
    redshift_diststyle="EVEN",
    redshift_sortkey="source_file",
)

# The files a run stages, as the ledger will hold them: written by the run before its
# transforms, which bring loaded_files up to date from it (11_loaded_files.sql).
staging_files = Table("staging_files", metadata, *_file_columns(), redshift_diststyle="EVEN")

# Every song record of every loaded song file, as its file has it now (ids, titles and names
# without trailing blanks, as every star table keeps them): songs and artists are chosen from
# it, and plays are matched against it, on the artist name the song's own file credits. A
# changed file's records replace its earlier ones, so a run stages only new and changed files
# and still gives the tables of a full load.
song_catalog = Table(
    "song_catalog",
    metadata,
    Column("source_file", Unicode(FILE_NAME), nullable=False),
    Column("song_id", Unicode(32), nullable=False),
    Column("title", Unicode(NAME), nullable=False),
    Column("artist_id", Unicode(32), nullable=False),
    Column("artist_name", Unicode(NAME), nullable=False),
    Column("artist_location", cut_text(ARTIST_PLACE_CHARS)),
    Column("artist_latitude", Double),
    Column("artist_longitude", Double),
    Column("year", Integer),
    Column("duration", Double),
    redshift_sortkey="source_file",
)

# Each play's song as its event logged it (title, artist name, length): when the catalog
# changes, plays loaded by earlier runs are matched again (08_songplays.sql) without reading
# their event files again. Distributed and sorted like songplays.
songplay_songs = Table(
    "songplay_songs",
    metadata,
    Column("songplay_id", Unicode(32), nullable=False),
    Column("start_time", DateTime, nullable=False),
    # As the event logged them, however wide (a title wider than any song's matches none).
    Column("song", Unicode(TEXT)),
    Column("artist", Unicode(TEXT)),
    Column("length", Double),
    redshift_diststyle="KEY",
    redshift_distkey="start_time",
    redshift_sortkey="start_time",
)

load_rejects = Table(
    "load_rejects",
    metadata,
    Column("source_file", Unicode(FILE_NAME), nullable=False),
    Column("line_number", BigInteger, nullable=False),
    Column("reason", Unicode(1024), nullable=False),
    # 4,096 characters of a rejected line (MAX_RAW_LINE) are at most 16,384 UTF-8 bytes: a
    # bounded VARCHAR, since Redshift makes TEXT a VARCHAR(256) and INSERT does not truncate.
    Column("raw_line", Unicode(TEXT)),
    Column("recorded_at", DateTime, nullable=False),
    redshift_diststyle="EVEN",
)

STAGING_TABLES: tuple[Table, ...] = (staging_events, staging_songs, staging_files)
STAR_TABLES: tuple[Table, ...] = (songplays, users, songs, artists, time)
# What the warehouse keeps besides the star tables to load incrementally.
BOOKKEEPING_TABLES: tuple[Table, ...] = (loaded_files, song_catalog, songplay_songs)
ALL_TABLES: tuple[Table, ...] = (*STAGING_TABLES, *STAR_TABLES, *BOOKKEEPING_TABLES, load_rejects)


def key_column(table: Table) -> str:
    """The name of a star table's key column."""
    return _key_of(table.columns)
