"""The Redshift warehouse's SQL on a real engine: an embedded PostgreSQL stands in for Redshift
(tests/postgres_redshift.py, COPY emulated by tests/redshift_copy.py) and the sparkify-etl flow
loads the same S3 files into it and into a DuckDB file. The star tables must be identical row
for row, songplay_id included, with the same reject counts, edge cases included.
README ("Same input, same answer") lists what still differs by nature."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from flows.etl import etl
from sql import model
from tasks.run.transform import run_transforms, transform_files
from tasks.source.s3 import S3Source
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.redshift import song_bundles
from tasks.warehouse.redshift.load_errors import LoadFailed
from tasks.warehouse.tables import create_tables
from tests.conftest import upload_tree
from tests.postgres_redshift import (
    PostgresRedshiftWarehouse,
    load_into_duckdb,
    loading_bucket,
    run_rejects,
    stand_in,
    star_rows,
)

pytestmark = pytest.mark.postgres

EDGE_TS = 1541592000000  # 2018-11-07 12:00:00.000: a day after the generated week, whole second
EDGE_DAY = date(2018, 11, 7)
BLOCK_TYPE = PostgresRedshiftWarehouse.get_block_type_slug()
REJECTS = model.load_rejects


@pytest.fixture(autouse=True)
def s3_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 objects a test's runs download (DuckDB's files, the Redshift run's song files, which
    it combines) are cached under the test's directory, not the user's."""
    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "cache"))


def test_ddl_compiles_for_postgres_without_redshift_options(postgres_database: str) -> None:
    for table in model.ALL_TABLES:
        options = table.dialect_options["redshift"]  # declared, for Redshift only (AUTO: none)
        assert options["diststyle"] or options["sortkey"]
        ddl = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        assert not any(word in ddl for word in ("DISTSTYLE", "DISTKEY", "SORTKEY"))
    with create_engine(postgres_database).begin() as conn:
        model.metadata.create_all(conn)
        assert set(model.metadata.tables) <= set(inspect(conn).get_table_names())


def event(**fields: Any) -> dict[str, Any]:
    """An event of a user who is not in the generated data, at EDGE_TS unless told."""
    base = {
        "artist": None,
        "auth": "Logged In",
        "firstName": "Edge",
        "gender": "F",
        "itemInSession": 0,
        "lastName": "Case",
        "length": None,
        "level": "free",
        "location": "Porto, PT",
        "method": "GET",
        "page": "Home",
        "registration": 1.540919166796e12,
        "sessionId": 9000,
        "song": None,
        "status": 200,
        "ts": EDGE_TS,
        "userAgent": "edge-agent",
        "userId": "9001",
    }
    return {**base, **fields}


def play(title: str, artist: str, length: float, **fields: Any) -> dict[str, Any]:
    """A NextSong event of that song."""
    play_fields = {"page": "NextSong", "method": "PUT", "song": title, "artist": artist}
    return event(**{**play_fields, "length": length, **fields})


def song(song_id: str, title: str, artist: str, duration: float) -> dict[str, Any]:
    """A song file's record."""
    return {
        "num_songs": 1,
        "artist_id": "AREDGE" + song_id[-4:],
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": artist,
        "song_id": song_id,
        "title": title,
        "duration": duration,
        "year": 0,
    }


def without(record: dict[str, Any], *names: str) -> dict[str, Any]:
    """The record without these fields (a missing field, not a null one)."""
    return {k: v for k, v in record.items() if k not in names}


@dataclass
class Loaded:
    """Both warehouses' star tables and reject counts after loading the same files."""

    postgres_runs: list[dict[str, list[tuple[Any, ...]]]]
    duckdb: dict[str, list[tuple[Any, ...]]]
    rejects: dict[str, tuple[int, int]]
    cut: dict[str, dict[str, int]]
    files: dict[str, tuple[int, int]]  # event and song files each warehouse's run loaded

    @property
    def postgres(self) -> dict[str, list[tuple[Any, ...]]]:
        """The stand-in's tables after the last run."""
        return self.postgres_runs[-1]


@pytest.fixture
def load_both(
    prefect_server,
    postgres_database: str,
    aws_credentials,
    bucket_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Loaded]:
    """Load a source directory, uploaded to S3, with the sparkify-etl flow into the PostgreSQL
    stand-in (a saved block, run once in each of `datestyles`: its sessions' DATESTYLE, None
    for the server's) and into DuckDB."""
    client = loading_bucket(aws_credentials, bucket_name, tmp_path, monkeypatch)
    block_name = "pg-" + bucket_name

    def load(source: Path, datestyles: tuple[str | None, ...] = (None,)) -> Loaded:
        upload_tree(client, bucket_name, source, "raw")
        uri = f"s3://{bucket_name}/raw"
        postgres_runs = []
        for style in datestyles:
            block = stand_in(postgres_database, aws_credentials, datestyle=style)
            block.save(block_name, overwrite=True)
            on_postgres = etl(uri, f"{BLOCK_TYPE}/{block_name}", aws_credentials="moto-test")
            postgres_runs.append(star_rows(create_engine(postgres_database)))
        on_duckdb, duckdb_rows = load_into_duckdb(uri, tmp_path / "wh.duckdb")
        counts = {"postgres": run_rejects(on_postgres), "duckdb": run_rejects(on_duckdb)}
        cut = {"postgres": on_postgres["cut_values"], "duckdb": on_duckdb["cut_values"]}
        files = {"postgres": _files(on_postgres), "duckdb": _files(on_duckdb)}
        return Loaded(postgres_runs, duckdb_rows, counts, cut, files)

    return load


def _files(summary: dict[str, Any]) -> tuple[int, int]:
    return summary["event_files"], summary["song_files"]


def write_edges(root: Path, events: list, songs: list | tuple, days: list[date]) -> None:
    """Write the events (dicts, or raw lines) as one event file per day, if there are any, and
    each song record as a song file of its own."""
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events if e != EMPTY]
    for day in days if events else []:
        path = root / "log_data" / "2018" / "11" / f"{day.isoformat()}-events.json"
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    for record in songs:
        path = root / "song_data" / "E" / "D" / "G" / f"TR{record['song_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def edge_source(small_source: Path, tmp_path: Path) -> Callable[..., Path]:
    """A generated source (a small day unless told) plus a day of edge-case events (in `copies`
    files of the same content, from 2018-11-07 on) and extra song files."""

    def build(
        events: list, songs: list | tuple = (), copies: int = 1, base: Path | None = None
    ) -> Path:
        root = tmp_path / "source"
        shutil.copytree(base or small_source, root)
        write_edges(root, events, songs, [EDGE_DAY + timedelta(n) for n in range(copies)])
        return root

    return build


# A formatted timestamp follows DATESTYLE; the key hashes epoch milliseconds. The run again in
# another DATESTYLE changes nothing: the same keys, the same rows.
def test_generated_week_gives_identical_star_tables_again_in_another_datestyle(
    load_both, week_source: Path
) -> None:
    loaded = load_both(week_source, datestyles=(None, "SQL, DMY"))
    first, again = loaded.postgres_runs
    assert all(first[t.name] for t in model.STAR_TABLES)
    assert first == loaded.duckdb
    assert again == first
    assert loaded.rejects["postgres"] == loaded.rejects["duckdb"]


@dataclass
class Case:
    """An edge case: the day's events (dicts, or raw lines) in `copies` identical files, extra
    song files, and the reject counts (events, songs) both warehouses must report for them."""

    name: str
    events: list
    songs: list | tuple = ()
    rejects: tuple[int, int] = (0, 0)
    copies: int = 1


EMPTY = "<an event file of no bytes>"
BLANKS = [song("SOBLANK0001", "Blank Title ", "Blank Artist ", 201.5)]
EDGE_CASES = [
    # Two events of one user at the same latest ts, session and item, differing by level.
    Case("level_tie", [event(userId="9002", level="free"), event(userId="9002", level="paid")]),
    # Two songs match one play: the smallest song_id wins on both.
    Case(
        "song_tie",
        [play("Edge Song", "Edge Artist", 200.25)],
        [song(f"SOEDGE{n:05d}", "Edge Song", "Edge Artist", 200.25) for n in (2, 1)],
    ),
    # Stored with its blanks on both engines (they compare text like each other; Redshift not).
    Case("trailing_blanks", [play("Blank Title", "Blank Artist", 201.5)], BLANKS),
    Case(
        "bad_records",
        ["not json", event(ts="yesterday"), event(userId="abc"), event(sessionId="x1")],
        rejects=(4, 0),
    ),
    # NULL sorts first in DESC on Redshift and PostgreSQL, last on DuckDB.
    Case("null_level", [event(userId="9003", level=None), event(userId="9003", level="free")]),
    # Required fields: COPY rejects them only if staging says NOT NULL.
    Case(
        "missing_event_fields",
        [without(play("x", "y", 1.0, userId="9004"), f) for f in ("ts", "sessionId")]
        + [without(event(userId="9004"), "itemInSession")],
        rejects=(3, 0),
    ),
    Case(
        "missing_song_fields",
        [],
        [without(song("SONOTITLE001", "-", "Untitled Artist", 99.0), "title")],
        rejects=(0, 1),
    ),
    # Descriptive text wider than its star column is cut to the characters the column holds,
    # the same on both (and counted); width is no reason to lose a play or a user.
    Case(
        "long_text",
        [
            event(userId="9007", firstName="é" * 300, itemInSession=1),
            play("Edge Song", "Edge Artist", 200.25, userId="9007", userAgent="x" * 3000),
        ],
        [{**song("SOLONGPLACE1", "Far Song", "Far Artist", 99.5), "artist_location": "ü" * 200}],
    ),
    # A decimal for an INTEGER column: Redshift's COPY rejects it (invalid digit), so does
    # DuckDB's staging (try_cast alone would round it); a string of digits loads on both.
    Case(
        "fractional_integer",
        [event(userId="9005", itemInSession=1.5), event(userId="9005", itemInSession="2")],
        rejects=(1, 0),
    ),
    # A level the tables do not accept would fail their check and the whole run: a reject on
    # both (a trailing blank is trimmed, as the transforms do).
    Case(
        "level_not_accepted",
        [
            event(userId="9010", level=5),
            event(userId="9010", level="gold"),
            event(userId="9011", level="paid "),
        ],
        rejects=(2, 0),
    ),
    # A userId beyond INTEGER would fail the users transform's cast and the whole run: a reject
    # on both, the largest that fits loads.
    Case(
        "user_id_beyond_integer",
        [
            event(userId="999999999999"),
            event(userId="99999999999"),
            event(userId="2147483648"),
            event(userId="2147483647"),
        ],
        rejects=(3, 0),
    ),
    # Trailing white space other than blanks (U+00A0, U+3000) is text on both warehouses: kept,
    # and matched as kept (DuckDB's rtrim strips it unless told which characters to trim).
    Case(
        "other_white_space",
        [play("Nbsp Title\u00a0", "Ideographic Artist\u3000", 203.5, userId="9013")],
        [song("SONBSP00001", "Nbsp Title\u00a0", "Ideographic Artist\u3000", 203.5)],
    ),
    # A page with trailing blanks is the page without them on both, as Redshift compares it:
    # a play, and a reject when it has no user.
    Case(
        "padded_page",
        [
            play("Edge Song", "Edge Artist", 200.25, userId="9014", page="NextSong "),
            play("Edge Song", "Edge Artist", 200.25, userId="", page="NextSong  "),
        ],
        rejects=(1, 0),
    ),
    # Not JSON text, each line a reject on both (tasks/warehouse/json_text.py): a byte order
    # mark before the file's first record, NaN, Infinity, a trailing comma, a raw NUL byte.
    Case(
        "not_json",
        [
            "\ufeff" + json.dumps(event(userId="9012", itemInSession=1)),
            json.dumps(event(userId="9012", itemInSession=2, length=float("nan"))),
            json.dumps(event(userId="9012", itemInSession=3, length=float("inf"))),
            json.dumps(event(userId="9012", itemInSession=4))[:-1] + ", }",
            json.dumps(event(userId="9012", itemInSession=5, song="a_b")).replace("a_b", "a\0b"),
            event(userId="9012", itemInSession=6, song="NaN, Infinity ,}"),
        ],
        rejects=(5, 0),
    ),
    # A play is a user's: a NextSong event whose userId is '', null or missing is a reject on
    # both, not an event the transforms pass over; another page without a user loads.
    Case(
        "play_without_user",
        [
            play("Edge Song", "Edge Artist", 200.25, userId=""),
            play("Edge Song", "Edge Artist", 200.25, userId=None),
            without(play("Edge Song", "Edge Artist", 200.25), "userId"),
            event(userId="", page="Home", auth="Logged Out"),
        ],
        rejects=(3, 0),
    ),
    # A file of no bytes is an empty-file reject on both (Redshift's side knows it from the S3
    # listing); a file of blank lines holds no record and no reject on both.
    Case("empty_event_file", [EMPTY], rejects=(1, 0)),
    Case("blank_event_file", ["", "  "], rejects=(0, 0)),
    # One play logged twice with different values (the same key): one songplay, the same row
    # kept on both (chosen by its values, NULLs last).
    Case(
        "repeated_play",
        [
            play("Edge Song", "Edge Artist", 200.25, userId="9008", location=loc)
            for loc in ("Zeta, ZZ", None, "Alpha, AA")
        ],
    ),
    # A file with the same content as another: a reject on both, its records loaded once.
    Case(
        "duplicate_event_file",
        [play("Edge Song", "Edge Artist", 200.25, userId="9006")],
        copies=2,
        rejects=(1, 0),
    ),
]


def edge_days(cases: list[Case]) -> dict[str, list[date]]:
    """The days of each case's event files: one after another from 2018-11-07, a day per copy."""
    days, first = {}, EDGE_DAY
    for c in cases:
        days[c.name] = [first + timedelta(n) for n in range(c.copies)]
        first += timedelta(c.copies)
    return days


def on_day(record: Any, day: date) -> Any:
    """An event at noon of its case's first day, where it is at EDGE_TS (the cases' plays and
    users' levels do not meet across cases); other records as they are."""
    if isinstance(record, dict) and record.get("ts") == EDGE_TS:
        return {**record, "ts": EDGE_TS + (day - EDGE_DAY).days * 86_400_000}
    return record


def file_rejects(database: Path, days: dict[str, list[date]]) -> dict[str, tuple[int, int]]:
    """Each case's rejects (events, songs) in a DuckDB warehouse, by the file each names: its
    days' event files and the song files of its songs. (Redshift's side counts the values its
    checks reject after COPY by run, not by file: the totals compare there.)"""
    with DuckDBWarehouse(path=str(database)).get_engine().connect() as conn:
        files = [f.rsplit("/", 1)[-1] for (f,) in conn.execute(select(REJECTS.c.source_file))]
    counts = {}
    for c in EDGE_CASES:
        names = [f"{day.isoformat()}-events.json" for day in days[c.name]]
        songs = [f"TR{s['song_id']}.json" for s in c.songs]
        counts[c.name] = (sum(f in names for f in files), sum(f in songs for f in files))
    return counts


# All cases in one source, each on days of its own, loaded once into each warehouse: the star
# tables must be identical, each case's files must give its rejects, and the totals agree.
def test_edge_cases_give_identical_star_tables(
    load_both, small_source: Path, tmp_path: Path
) -> None:
    root = tmp_path / "edges"
    shutil.copytree(small_source, root)
    days = edge_days(EDGE_CASES)
    for c in EDGE_CASES:
        first = days[c.name][0]
        write_edges(root, [on_day(e, first) for e in c.events], c.songs, days[c.name])

    loaded = load_both(root)

    assert all(loaded.postgres[t.name] for t in model.STAR_TABLES)
    assert loaded.postgres == loaded.duckdb
    expected = {c.name: c.rejects for c in EDGE_CASES}
    assert file_rejects(tmp_path / "wh.duckdb", days) == expected
    total = tuple(map(sum, zip(*expected.values(), strict=True)))
    assert loaded.rejects == {"postgres": total, "duckdb": total}
    cut = {"firstName": 1, "userAgent": 1, "artist_location": 1}
    assert loaded.cut == {"postgres": cut, "duckdb": cut}
    users = {row[0]: row for row in loaded.duckdb["users"]}
    assert users[9007][1] == "é" * model.PERSON_NAME_CHARS


# Redshift ignores trailing blanks when comparing VARCHAR, so the play matches its song there;
# PostgreSQL and DuckDB agree with it only because the SQL trims keys.
def test_trailing_blanks_match_as_redshift_compares(load_both, edge_source) -> None:
    loaded = load_both(edge_source([play("Blank Title", "Blank Artist", 201.5)], BLANKS))
    for rows in (loaded.postgres, loaded.duckdb):
        assert [p[4] for p in rows["songplays"] if p[2] == 9001] == ["SOBLANK0001"]


def test_failed_copy_reports_its_own_rejects_not_the_previous_ones(
    postgres_database: str, aws_credentials, bucket_name: str, edge_source
) -> None:
    source = S3Source(bucket_name, "raw", aws_credentials)
    source.client().create_bucket(Bucket=bucket_name)
    bad = ["not json", event(ts="yesterday"), event(sessionId="x1")]
    upload_tree(source.client(), bucket_name, edge_source(bad), "raw")
    files = source.run_files(None, None)
    at = datetime(2024, 1, 1)
    block = stand_in(postgres_database, aws_credentials)
    with block.get_engine().begin() as conn:
        model.metadata.create_all(conn)
        assert block.stage_events(conn, source, files.event_files, at).rejects == 3
    strict = stand_in(postgres_database, aws_credentials, max_errors=2)

    def stage_songs_then_events() -> None:
        with strict.get_engine().begin() as conn:
            strict.stage_songs(conn, source, files.song_files, at)  # a good COPY first
            strict.stage_events(conn, source, files.event_files, at)

    with pytest.raises(LoadFailed) as failure:
        stage_songs_then_events()
    assert [(r.line_number, r.reason.split(":")[0]) for r in failure.value.rejects] == [
        (1, "Input line is not valid. Invalid JSON."),
        (2, "ts"),
    ]


def loaded_rejects(engine: Engine) -> list[tuple[str, int, str]]:
    """Each reject of a warehouse: its file's name, line and reason."""
    columns = (REJECTS.c.source_file, REJECTS.c.line_number, REJECTS.c.reason)
    with engine.connect() as conn:
        rows = conn.execute(select(*columns)).all()
    return sorted((file.rsplit("/", 1)[-1], line, reason) for file, line, reason in rows)


# Redshift's COPY fails whole on a gzipped file that does not decompress; each warehouse
# leaves such a file out instead, with one reject in the same words, and loads the rest.
def test_a_corrupt_gzipped_file_is_one_reject_on_both_warehouses(
    load_both, edge_source, postgres_database: str, tmp_path: Path
) -> None:
    root = edge_source([play("Edge Song", "Edge Artist", 200.25, userId="9015")])
    plays = [play("Edge Song", "Edge Artist", 200.25, userId=u) for u in ("9016", "9017")]
    broken_line = json.dumps(event(userId="9018", song=os.urandom(1500).hex()))
    lines = [*(json.dumps(p) for p in plays), broken_line]
    day = gzip.compress("\n".join(lines).encode())
    (root / "log_data" / "2018" / "11" / "2018-11-09-events.json.gz").write_bytes(day[:-500])
    song_file = root / "song_data" / "E" / "D" / "G" / "TRSOGZIP0001.json.gz"
    song_file.parent.mkdir(parents=True, exist_ok=True)
    song_file.write_bytes(b"\x1f\x8b not gzip data")

    loaded = load_both(root)

    assert loaded.postgres == loaded.duckdb
    # The whole lines before the break load; the line it broke in is the reject.
    users = sorted(p[2] for p in loaded.postgres["songplays"] if p[2] in (9015, 9016, 9017))
    assert users == [9015, 9016, 9017]
    assert loaded.rejects == {"postgres": (1, 1), "duckdb": (1, 1)}
    on_postgres = loaded_rejects(create_engine(postgres_database))
    on_duckdb = loaded_rejects(DuckDBWarehouse(path=str(tmp_path / "wh.duckdb")).get_engine())
    assert on_postgres == on_duckdb
    assert [(file, line) for file, line, _ in on_duckdb] == [
        ("2018-11-09-events.json.gz", 3),
        ("TRSOGZIP0001.json.gz", 0),
    ]
    assert all(reason.startswith("corrupt gzip data: ") for *_, reason in on_duckdb)


def gzip_half(source: Path, root: Path) -> Path:
    """A copy of a source with one event file and one song file in two gzipped (`.json.gz`)."""
    shutil.copytree(source, root)
    files = sorted((root / "log_data").rglob("*.json")) + sorted(
        (root / "song_data").rglob("*.json")
    )
    for path in files[::2]:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return root


# The same gzipped objects on both warehouses: COPY's GZIP here, DuckDB's staging decompressing
# its downloaded copies (which keep the .gz suffix) there; and the same tables as the plain files.
def test_gzipped_files_give_identical_star_tables_and_those_of_the_plain_files(
    load_both, week_source: Path, tmp_path: Path
) -> None:
    loaded = load_both(gzip_half(week_source, tmp_path / "gz"))
    assert loaded.files == {"postgres": (6, 60), "duckdb": (6, 60)}
    assert all(loaded.postgres[t.name] for t in model.STAR_TABLES)
    assert loaded.postgres == loaded.duckdb
    assert loaded.rejects["postgres"] == loaded.rejects["duckdb"] == (0, 0)
    etl(str(week_source), str(tmp_path / "plain.duckdb"))
    plain = DuckDBWarehouse(path=str(tmp_path / "plain.duckdb")).get_engine()
    assert loaded.postgres == star_rows(plain)


# The run's song files go to COPY combined into few objects; a record COPY rejects
# in one of them is still named by its song file and line, as DuckDB names it. Small objects
# here (2 KB instead of 1 MB), so the week's songs make several of them.
def test_rejected_song_records_name_their_song_file_and_line(
    load_both,
    edge_source,
    week_source: Path,
    postgres_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(song_bundles, "MIN_BUNDLE_BYTES", 2_000)
    plans: list[song_bundles.BundlePlan] = []
    plan_bundles = song_bundles.plan_bundles
    monkeypatch.setattr(
        song_bundles, "plan_bundles", lambda files: plans.append(plan_bundles(files)) or plans[-1]
    )
    good = song("SOEDGE00001", "Edge Song", "Edge Artist", 200.25)
    # The week's many song files, so that they make several objects.
    root = edge_source([play("Edge Song", "Edge Artist", 200.25)], [good], base=week_source)
    folder = root / "song_data" / "E" / "D" / "G"
    (folder / "TRNOTJSON.json").write_text("not json\n")
    (folder / "TRBADYEAR.json").write_text(json.dumps({**good, "year": "x"}))
    two = [song("SOEDGE00002", "Two", "Edge Artist", 1.0), without(good, "title")]
    (folder / "TRTWO.json").write_text("\n".join(json.dumps(r) for r in two) + "\n")

    loaded = load_both(root)

    [plan] = plans  # one Redshift run: the plain song files combined into several objects
    assert len(plan.bundles) > 1
    assert [uri.rsplit("/", 1)[-1] for uri in plan.alone] == ["TRNOTJSON.json"]
    assert loaded.postgres == loaded.duckdb
    assert loaded.rejects == {"postgres": (0, 3), "duckdb": (0, 3)}
    found = {}
    for name, engine in (
        ("postgres", create_engine(postgres_database)),
        ("duckdb", DuckDBWarehouse(path=str(tmp_path / "wh.duckdb")).get_engine()),
    ):
        with engine.connect() as conn:
            rows = conn.execute(select(REJECTS.c.source_file, REJECTS.c.line_number)).all()
        found[name] = sorted((f.rsplit("/", 1)[-1], n) for f, n in rows)
    assert (
        found["postgres"]
        == found["duckdb"]
        == [
            ("TRBADYEAR.json", 1),
            ("TRNOTJSON.json", 1),
            ("TRTWO.json", 2),
        ]
    )


# COPY runs without STATUPDATE (which needs the table's owner), so the run analyzes each
# staging table itself, in its transaction (where ANALYZE may run, and does on PostgreSQL too).
def test_staging_tables_are_analyzed_in_the_runs_transaction(
    postgres_database: str, aws_credentials, s3_week: S3Source
) -> None:
    files = s3_week.run_files(None, None)
    block = stand_in(postgres_database, aws_credentials)
    statistics = text("select reltuples from pg_class where relname = :name")
    with block.get_engine().begin() as conn:
        model.metadata.create_all(conn)
        assert conn.execute(statistics, {"name": "staging_songs"}).scalar_one() == -1  # never
        songs = block.stage_songs(conn, s3_week, files.song_files, datetime(2024, 1, 1))
        events = block.stage_events(conn, s3_week, files.event_files, datetime(2024, 1, 1))
        for report in (songs, events):
            assert conn.execute(statistics, {"name": report.table}).scalar_one() == report.rows > 0


T0 = datetime(2018, 11, 8, 10)
RUN_RANGE = (
    "between (select min(start_time) from staged_plays)\n"
    "    and (select max(start_time) from staged_plays)"
)


def staged_event(item: int, at: datetime) -> dict[str, Any]:
    """A NextSong event of user 7 in the run, as staging holds it."""
    ts_ms = int((at - datetime(1970, 1, 1)).total_seconds() * 1000)
    return {
        **{"page": "NextSong", "user_id": "7", "session_id": 5, "item_in_session": item},
        **{"ts": at, "ts_ms": ts_ms, "level": "paid"},
    }


def play_key(item: int, at: datetime) -> str:
    """The songplay_id of user 7's staged event (see tests/test_transform.py)."""
    return hashlib.md5(f"5|{item}|7|{staged_event(item, at)['ts_ms']}".encode()).hexdigest()


def stored_play(songplay_id: str, user_id: int, at: datetime) -> dict[str, Any]:
    """A songplay already in the warehouse, at level free."""
    return {
        **{"songplay_id": songplay_id, "start_time": at, "user_id": user_id},
        **{"level": "free", "session_id": 5},
    }


# The songplays and time deletes look only within the run's time range, and delete
# the same rows as before on both warehouses: the plays of a staged key or of a staged (user,
# session, start time), and nothing outside the range or unmatched inside it.
def test_bounded_deletes_remove_the_same_rows_on_both_warehouses(
    postgres_database: str, tmp_path: Path
) -> None:
    for path in transform_files():
        if path.stem.endswith(("_replaced_plays", "_time")):
            assert path.read_text().count(RUN_RANGE) == 1, path.name
    late, inside, day_before = T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 - timedelta(1)
    results = {}
    engines = {
        "postgres": create_engine(postgres_database),
        "duckdb": DuckDBWarehouse(path=str(tmp_path / "bounded.duckdb")).get_engine(),
    }
    for name, engine in engines.items():
        with engine.begin() as conn:
            create_tables(conn)
            conn.execute(insert(model.staging_events), [staged_event(0, T0), staged_event(1, late)])
            stored = [
                stored_play(play_key(0, T0), 7, T0),  # the staged play's key: replaced
                stored_play("an-earlier-key", 7, late),  # its (user, session, time): goes
                stored_play("inside-unmatched", 8, inside),  # in the range, no match: stays
                stored_play("another-day", 7, day_before),  # outside the range: stays
            ]
            conn.execute(insert(model.songplays), stored)
            conn.execute(insert(model.time), [{"start_time": t} for t in (T0, inside, day_before)])
            changes = {c.table: (c.deleted, c.inserted) for c in run_transforms(conn)}
            plays = select(model.songplays.c.songplay_id, model.songplays.c.level)
            starts = select(model.time.c.start_time, model.time.c.hour)
            results[name] = (
                (changes["songplays"], changes["time"]),
                sorted(conn.execute(plays).all()),
                sorted(conn.execute(starts).all(), key=lambda row: row[0]),
            )
    assert results["postgres"] == results["duckdb"]
    changes, plays, starts = results["duckdb"]
    assert changes == ((2, 2), (1, 2))
    assert plays == sorted(
        [
            ("another-day", "free"),
            ("inside-unmatched", "free"),
            (play_key(0, T0), "paid"),
            (play_key(1, late), "paid"),
        ]
    )
    # The rows outside the run, or unmatched in it, were not rewritten: their hour stays NULL.
    assert starts == [(day_before, None), (T0, 10), (inside, None), (late, 12)]
