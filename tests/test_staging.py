"""Staging on DuckDB: bulk reads, validation, and rejects with file, line and reason."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest
from sqlalchemy import select

from flows.etl import etl
from sql import model
from sql.fields import json_fields
from tasks.source.local import LocalSource
from tasks.warehouse.duckdb.records import FieldRule, parse_json_records
from tasks.warehouse.duckdb.sql import events_staging_sql
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.hold import transaction
from tasks.warehouse.tables import create_tables
from tests.helpers import query

GOOD_EVENT = {
    "artist": "Sigur Rós",
    "auth": "Logged In",
    "firstName": "Zoë",
    "gender": "F",
    "itemInSession": 0,
    "lastName": "Ørsted",
    "length": 218.93179,
    "level": "free",
    "location": "Reykjavík",
    "method": "PUT",
    "page": "NextSong",
    "registration": 1.540919166796e12,
    "sessionId": 5,
    "song": "Hoppípolla",
    "status": 200,
    "ts": 1541105830796,
    "userAgent": '"Mozilla/5.0"',
    "userId": "26",
}
SONG = {
    "num_songs": 1,
    "artist_id": "ARSIGURROS0000001",
    "artist_latitude": 64.1,
    "artist_longitude": -21.9,
    "artist_location": "Reykjavík",
    "artist_name": "Sigur Rós",
    "song_id": "SOHOPPIPOLLA00001",
    "title": "Hoppípolla",
    "duration": 218.93179,
    "year": 2005,
}


def event(**changes: object) -> str:
    """One event line, with fields changed or removed (value ...)."""
    record = {**GOOD_EVENT, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}, ensure_ascii=False)


def write_bad_source(root: Path) -> Path:
    """A day file with good lines between a truncated line, garbage and wrong-typed fields."""
    tmp_path = root
    day = tmp_path / "src" / "log_data" / "2018" / "11"
    day.mkdir(parents=True)
    lines = [
        event(itemInSession=0, ts=1541105830796),  # 1 good, matches the song
        event(itemInSession=1, ts=1541105900000)[:57],  # 2 truncated
        "this is not json at all",  # 3 garbage
        event(itemInSession=2, sessionId="five"),  # 4 wrong type
        "",  # blank: ignored, not a reject
        event(itemInSession=3, ts=1541106000000, song="Other", length=100.0),  # 6 good
        event(itemInSession=4, ts=..., page="Home"),  # 7 missing required ts
        event(itemInSession=5, userId="abc"),  # 8 userId is not an id
        "[1, 2, 3]",  # 9 JSON, but not an object
        event(itemInSession=6, ts=1541106100000, page="Home", userId="", firstName=None),  # 10 good
    ]
    (day / "2018-11-01-events.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (day / "2018-11-02-events.json").write_text("", encoding="utf-8")
    songs = tmp_path / "src" / "song_data" / "A" / "B" / "C"
    songs.mkdir(parents=True)
    (songs / "TRABC1.json").write_text(json.dumps(SONG), encoding="utf-8")
    (songs / "TRABC2.json").write_text('{"num_songs": 1, "artist_id": ', encoding="utf-8")
    (songs / "TRABC3.json").write_text(json.dumps({**SONG, "song_id": None}), encoding="utf-8")
    return tmp_path / "src"


@pytest.fixture
def bad_source(tmp_path: Path) -> Path:
    """The bad source, the test's own to change."""
    return write_bad_source(tmp_path)


@pytest.fixture(scope="module")
def loaded_bad_source(
    prefect_server, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """The bad source loaded once into a DuckDB file, for the tests that only read it; the
    run's summary beside it."""
    root = tmp_path_factory.mktemp("bad-loaded")
    db = root / "wh.duckdb"
    return db, etl(str(write_bad_source(root)), str(db))


def test_bad_lines_are_rejected_and_good_lines_load(loaded_bad_source: tuple[Path, dict]) -> None:
    db, summary = loaded_bad_source

    assert query(db, "select count(*) from songplays")[0][0] == 2
    assert query(db, "select count(*) from songplays where song_id is not null")[0][0] == 1
    assert query(db, "select user_id, first_name, last_name from users") == [(26, "Zoë", "Ørsted")]
    rejects = query(
        db,
        "select regexp_extract(source_file, '[^/]+$'), line_number, reason from load_rejects "
        "order by 1, 2",
    )
    assert rejects == [
        ("2018-11-01-events.json", 2, "malformed JSON: not a valid JSON object"),
        ("2018-11-01-events.json", 3, "malformed JSON: not a valid JSON object"),
        ("2018-11-01-events.json", 4, "wrong type for sessionId: expected an integer"),
        ("2018-11-01-events.json", 7, "missing required field ts"),
        (
            "2018-11-01-events.json",
            8,
            "bad value for userId: not empty nor a number from 0 to 2147483647",
        ),
        ("2018-11-01-events.json", 9, "malformed JSON: not a valid JSON object"),
        ("2018-11-02-events.json", 0, "empty file"),
        ("TRABC2.json", 1, "malformed JSON: not a valid JSON object"),
        ("TRABC3.json", 1, "missing required field song_id"),
    ]
    raw = query(db, "select raw_line from load_rejects where line_number = 3")[0][0]
    assert raw == "this is not json at all"
    assert summary["staged"]["events"]["rejects"] == 7
    assert summary["staged"]["songs"]["rejects"] == 2
    assert all(c["passed"] for c in summary["checks"])


@pytest.mark.usefixtures("prefect_server")
def test_rerun_replaces_rejects_instead_of_adding(bad_source: Path, tmp_path: Path) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(bad_source), str(db))
    etl(str(bad_source), str(db))
    assert query(db, "select count(*) from load_rejects")[0][0] == 9


@pytest.mark.usefixtures("prefect_server")
def test_duplicated_file_is_loaded_once_and_reported(bad_source: Path, tmp_path: Path) -> None:
    day = bad_source / "log_data" / "2018" / "11"
    copy = day / "2018-11-01-events.json"
    (day / "2018-11-03-events.json").write_bytes(copy.read_bytes())
    db = tmp_path / "wh.duckdb"
    etl(str(bad_source), str(db))
    assert query(db, "select count(*) from songplays")[0][0] == 2
    reason = query(db, "select reason from load_rejects where source_file like '%11-03%'")
    assert reason == [(f"duplicate file: same content as {copy}",)]


def test_event_staging_binds_every_value() -> None:
    statements = events_staging_sql(model.staging_events, datetime(2024, 1, 1))
    for sql, _params in statements.values():
        assert "userId" not in sql  # fields are read by the bound JSON paths
        assert "expected" not in sql
        assert "[0-9]" not in sql
    sql, params = statements["stage"]
    assert sql.count("?") == len(params)
    assert params[-1] == [f'$."{c.info["json"]}"' for c in model.staging_events.columns]
    sql, params = statements["rejects"]
    assert sql.count("?") == len(params)
    assert datetime(2024, 1, 1) in params
    assert "wrong type for sessionId: expected an integer" in params


def test_song_records_parse_into_typed_arrow(tmp_path: Path) -> None:
    good = tmp_path / "a.json"
    good.write_text(json.dumps({**SONG, "year": 0, "artist_latitude": None}), encoding="utf-8")
    wrong = tmp_path / "b.json"
    wrong.write_text(json.dumps({**SONG, "duration": "long"}), encoding="utf-8")
    table, rejects = parse_json_records(model.staging_songs, [str(good), str(wrong)])
    assert table.num_rows == 1
    assert table.column("duration").to_pylist() == [218.93179]
    assert table.column("artist_latitude").to_pylist() == [None]
    assert [(r.line_number, r.reason) for r in rejects] == [
        (1, "wrong type for duration: expected a number")
    ]


def test_song_records_checked_by_column_and_by_record_agree(tmp_path: Path) -> None:
    # Plain records pass the column-wide checks; a record with a value to convert (a year as
    # digits), one with a problem and a malformed line send every record through the
    # record-by-record rules, which must give the same values and keep file and line order.
    long_title = "é" * 200  # 400 bytes: more than a quarter of the column's 512, and within it
    plain = [{**SONG, "song_id": f"SO{n:015d}", "title": long_title} for n in range(3)]
    names = []
    for n, record in enumerate(plain):
        names.append(tmp_path / f"plain{n}.json")
        names[-1].write_text(json.dumps(record), encoding="utf-8")
    fast, fast_rejects = parse_json_records(model.staging_songs, [str(p) for p in names])
    assert fast_rejects == []
    assert fast.column("title").to_pylist() == [long_title] * 3
    mixed = tmp_path / "mixed.json"
    lines = [
        json.dumps({**SONG, "song_id": "SOMIXED0000000001", "year": "2004"}),
        json.dumps({**SONG, "song_id": "SOMIXED0000000002", "year": 1.5}),
        "{not json",
        json.dumps({**SONG, "song_id": "SOMIXED0000000003", "title": "x" * 513}),
    ]
    mixed.write_text("\n".join(lines), encoding="utf-8")
    files = [str(names[0]), str(mixed), str(names[1]), str(names[2])]
    table, rejects = parse_json_records(model.staging_songs, files)
    assert table.column("song_id").to_pylist() == [
        "SO000000000000000",
        "SOMIXED0000000001",
        "SO000000000000001",
        "SO000000000000002",
    ]
    assert table.column("year").to_pylist() == [2005, 2004, 2005, 2005]
    assert table.column("source_file").to_pylist() == files
    assert [(r.source_file, r.line_number, r.reason) for r in rejects] == [
        (str(mixed), 2, "wrong type for year: expected an integer"),
        (str(mixed), 3, "malformed JSON: not a valid JSON object"),
        (str(mixed), 4, "value too long for title: more than 512 bytes"),
    ]
    plain_rows = table.filter(pc.field("song_id").isin([r["song_id"] for r in plain]))
    assert plain_rows.to_pylist() == fast.to_pylist()


def test_a_song_number_beyond_64_bits_is_a_double_not_a_failed_run(tmp_path: Path) -> None:
    # A JSON integer in a DOUBLE column, too large for a signed 64-bit integer (orjson reads it
    # as an int up to 2**64, as a float beyond): a double on both paths.
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({**SONG, "duration": 2**63}), encoding="utf-8")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({**SONG, "song_id": "SOPLAIN0000000001"}), encoding="utf-8")
    table, rejects = parse_json_records(model.staging_songs, [str(huge), str(plain)])
    assert rejects == []
    assert table.column("duration").to_pylist() == [float(2**63), 218.93179]
    digits = tmp_path / "digits.json"  # a year as digits sends every record through the rules
    digits.write_text(json.dumps({**SONG, "song_id": "SODIGITS000000001", "year": "2004"}))
    table, rejects = parse_json_records(model.staging_songs, [str(huge), str(digits)])
    assert rejects == []
    assert table.column("duration").to_pylist() == [float(2**63), 218.93179]


def test_staged_events_are_typed(bad_source: Path, tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    files = [str(p) for p in sorted((bad_source / "log_data").rglob("*.json"))]
    with transaction(warehouse.get_engine()) as conn:
        create_tables(conn)
        report = warehouse.stage_events(conn, LocalSource(bad_source), files, datetime(2024, 1, 1))
        rows = conn.execute(select(model.staging_events).order_by("item_in_session")).all()
    assert report.rows == 3
    assert report.rejects == 7
    first = rows[0]._mapping
    assert first["ts"] == datetime(2018, 11, 1, 20, 57, 10, 796000)
    assert first["registration"] == 1540919166796.0
    assert first["length"] == 218.93179
    assert rows[2]._mapping["user_id"] is None  # '' marks a logged-out event
    assert first["ts_ms"] == 1541105830796  # the log's integer, kept for the play key


def test_songplay_id_of_a_known_event_is_the_md5_of_its_raw_fields(
    loaded_bad_source: tuple[Path, dict],
) -> None:
    """Golden: the key is computed here from the JSON line's own fields, in plain Python."""
    db, _ = loaded_bad_source
    raw = json.loads(event(itemInSession=0, ts=1541105830796))
    fields = [raw["sessionId"], raw["itemInSession"], raw["userId"], raw["ts"]]
    golden = hashlib.md5("|".join(str(f) for f in fields).encode()).hexdigest()
    plays = query(db, "select songplay_id, user_id, session_id from songplays order by 1")
    assert (golden, 26, 5) in plays


def test_reset_names_files_in_batches_within_redshifts_statement_limits(tmp_path: Path) -> None:
    """A run of many files (every song file, every run) resets load_rejects in statements of at
    most FILES_PER_STATEMENT bind parameters (Redshift refuses more than 32,767) and far below
    its 16 MB statement size, and still forgets every earlier reject of those files."""
    from sqlalchemy import event

    from tasks.warehouse.protocol import Reject
    from tasks.warehouse.staging import FILES_PER_STATEMENT, insert_rejects, reset_staging

    files = [f"s3://bucket/raw/song_data/A/B/C/TR{n:06d}.json" for n in range(12_001)]
    engine = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb")).get_engine()
    at = datetime(2024, 1, 1)
    with transaction(engine) as conn:
        create_tables(conn)
        insert_rejects(conn, [Reject(files[0], 1, "x"), Reject(files[-1], 1, "y")], at)
        insert_rejects(conn, [Reject("s3://bucket/raw/other.json", 1, "kept")], at)
    statements: list[tuple[str, int]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, len(parameters or ())))

    event.listen(engine, "before_cursor_execute", record)
    with transaction(engine) as conn:
        reset_staging(conn, model.staging_songs, files)
    deletes = [(s, n) for s, n in statements if "load_rejects" in s]
    assert len(deletes) == 3
    assert max(n for _, n in deletes) == FILES_PER_STATEMENT <= 32_767
    assert max(len(s) for s, _ in deletes) < 16 * 2**20
    assert query(tmp_path / "wh.duckdb", "select reason from load_rejects") == [("kept",)]


def test_text_longer_than_its_column_in_bytes_is_a_reject_on_both_paths(tmp_path: Path) -> None:
    """Redshift's VARCHAR(n) holds n UTF-8 bytes and COPY runs without TRUNCATECOLUMNS, so it
    rejects a longer value: DuckDB's staging rejects the same records instead of keeping them.
    Event text is staged up to Redshift's widest VARCHAR."""
    day = tmp_path / "src" / "log_data" / "2018" / "11"
    day.mkdir(parents=True)
    wide = "é" * (model.TEXT // 2 + 1)  # 65,536 bytes, 32,768 characters
    lines = [event(itemInSession=0), event(itemInSession=1, method=wide)]
    (day / "2018-11-01-events.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    files = [str(day / "2018-11-01-events.json")]
    with transaction(warehouse.get_engine()) as conn:
        create_tables(conn)
        report = warehouse.stage_events(conn, LocalSource(tmp_path), files, datetime(2024, 1, 1))
    assert (report.rows, report.rejects) == (1, 1)
    assert report.reject_samples[0].reason == "value too long for method: more than 65535 bytes"

    song = tmp_path / "song.json"
    song.write_text(json.dumps({**SONG, "title": "é" * 300}), encoding="utf-8")  # 600 bytes
    table, rejects = parse_json_records(model.staging_songs, [str(song)])
    assert table.num_rows == 0
    assert [r.reason for r in rejects] == ["value too long for title: more than 512 bytes"]


# Integer spellings as JSON values of itemInSession: the staged integer, or None for a reject.
INTEGER_SPELLINGS = [
    (7, 7),
    ("8", 8),
    ("+9", 9),
    ("007", 7),
    (-3, -3),
    (1.5, None),
    ("1.5", None),
    (2.0, None),
    (1e3, None),
    (" 7", None),
    ("7 ", None),
    ("0x1F", None),
    ("1_000", None),
    (True, None),
    (2**31, None),
]


def test_integer_fields_take_digits_only_in_sql_as_in_the_python_rules(tmp_path: Path) -> None:
    """DuckDB's SQL stages the integers COPY reads (a number or a string of digits) and rejects
    what try_cast alone would read (1.5, ' 7', '0x1F', true), as the rules the song files go by."""
    day = tmp_path / "src" / "log_data" / "2018" / "11"
    day.mkdir(parents=True)
    lines = [
        event(itemInSession=value, sessionId=n) for n, (value, _) in enumerate(INTEGER_SPELLINGS)
    ]
    (day / "2018-11-01-events.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    files = [str(day / "2018-11-01-events.json")]
    with transaction(warehouse.get_engine()) as conn:
        create_tables(conn)
        warehouse.stage_events(conn, LocalSource(tmp_path), files, datetime(2024, 1, 1))
        staged = dict(
            conn.exec_driver_sql("select session_id, item_in_session from staging_events").all()
        )
        rejected = conn.exec_driver_sql("select line_number, reason from load_rejects").all()
    expected = {n: item for n, (_, item) in enumerate(INTEGER_SPELLINGS) if item is not None}
    assert staged == expected
    assert sorted(rejected) == [
        (n + 1, "wrong type for itemInSession: expected an integer")
        for n, (_, item) in enumerate(INTEGER_SPELLINGS)
        if item is None
    ]
    rule = FieldRule.of(
        next(f for f in json_fields(model.staging_events) if f.column == "item_in_session")
    )
    for value, item in INTEGER_SPELLINGS:
        assert (rule.problem(value) is None, rule.value(value) if item is not None else None) == (
            item is not None,
            item,
        )
