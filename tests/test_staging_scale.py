"""Staging on DuckDB at any size and with any bytes: event lines staged a batch at a time (the
same rows and rejects however the files are cut), gzipped files read by their .gz name, and
every byte-level fault a reject with file, line and reason, never a failed run."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from flows.etl import etl
from sql import model
from sql.fields import json_fields
from tasks.warehouse.duckdb import lines
from tasks.warehouse.duckdb.records import FieldRule
from tasks.warehouse.duckdb.staging import parse_songs, stage_events_duckdb, stage_songs_duckdb
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.hold import transaction
from tasks.warehouse.tables import create_tables
from tests import test_postgres as postgres_tests
from tests.helpers import query
from tests.test_staging import SONG, event

AT = datetime(2024, 1, 1)
OUT_OF_RANGE = "value out of range for ts: epoch milliseconds outside years 1 to 9999"


def stage(
    tmp_path: Path, files: Sequence[Path], songs: Sequence[Path] = (), **options: Any
) -> dict[str, Any]:
    """Stage event (and song) files into a fresh DuckDB file: staged rows and rejects."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb"))
    names = [str(f) for f in files]
    with transaction(warehouse.get_engine()) as conn:
        create_tables(conn)
        stage_events_duckdb(conn, names, AT, **options)
        song_files = [str(s) for s in songs]
        stage_songs_duckdb(conn, song_files, AT, parse_songs(song_files))
        rows = conn.execute(
            select(model.staging_events).order_by("session_id", "item_in_session")
        ).all()
        song_rows = conn.execute(select(model.staging_songs).order_by("song_id")).all()
        rejects = conn.execute(
            select(
                model.load_rejects.c.source_file,
                model.load_rejects.c.line_number,
                model.load_rejects.c.reason,
                model.load_rejects.c.raw_line,
            ).order_by("source_file", "line_number")
        ).all()
    return {
        "rows": [tuple(r) for r in rows],
        "songs": [tuple(r) for r in song_rows],
        "rejects": [(Path(f).name, n, reason, raw) for f, n, reason, raw in rejects],
    }


def write(path: Path, data: bytes) -> Path:
    """A file of these bytes (its folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def day_lines(session: int, count: int) -> list[str]:
    """A day's good events of one session."""
    return [event(sessionId=session, itemInSession=n, ts=1541105830796 + n) for n in range(count)]


def text(records: list[str]) -> bytes:
    """Newline-delimited lines as UTF-8."""
    return ("\n".join(records) + "\n").encode()


def test_invalid_utf8_is_a_reject_of_its_line_only(tmp_path: Path) -> None:
    good = day_lines(1, 3)
    bad = event(sessionId=1, itemInSession=9, firstName="Zo\udcff").encode(
        "utf-8", "surrogateescape"
    )
    data = b"\n".join([good[0].encode(), bad, good[1].encode(), good[2].encode()]) + b"\n"
    day = write(tmp_path / "2018-11-01-events.json", data)
    staged = stage(tmp_path, [day])
    assert [r[4] for r in staged["rows"]] == [0, 1, 2]  # item_in_session of the good lines
    [(name, number, reason, raw)] = staged["rejects"]
    assert (name, number) == ("2018-11-01-events.json", 2)
    assert reason == f"invalid UTF-8: byte 0xff at offset {bad.index(255)}"
    assert '"firstName": "Zo\\xff"' in raw


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bytes(range(256)) * 4, "binary file: NUL bytes, not JSON text"),
        (
            gzip.compress(text(day_lines(2, 3))),
            "binary file: gzip-compressed data in a file not named .gz",
        ),
    ],
    ids=["binary", "gzip_named_json"],
)
def test_a_binary_file_is_one_reject_and_the_others_load(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    day = write(tmp_path / "2018-11-01-events.json", text(day_lines(1, 2)))
    binary = write(tmp_path / "2018-11-02-events.json", content)
    staged = stage(tmp_path, [day, binary])
    assert len(staged["rows"]) == 2
    assert [r[:3] for r in staged["rejects"]] == [("2018-11-02-events.json", 0, reason)]


def test_gzipped_events_and_songs_load_like_plain_ones(tmp_path: Path) -> None:
    events = text([*day_lines(1, 5), "not json"])
    song = json.dumps(SONG).encode()
    plain = stage(
        tmp_path / "plain",
        [write(tmp_path / "p" / "2018-11-01-events.json", events)],
        [write(tmp_path / "p" / "TRA.json", song)],
    )
    zipped = stage(
        tmp_path / "gz",
        [write(tmp_path / "z" / "2018-11-01-events.json.gz", gzip.compress(events))],
        [write(tmp_path / "z" / "TRA.json.GZ", gzip.compress(song))],
    )
    assert zipped["rows"] == plain["rows"]
    assert len(plain["rows"]) == 5
    # The same song, from its own file (the last column).
    assert [r[:-1] for r in zipped["songs"]] == [r[:-1] for r in plain["songs"]]
    assert len(plain["songs"]) == 1
    assert zipped["songs"][0][-1].endswith("TRA.json.GZ")
    assert [r[1:] for r in zipped["rejects"]] == [r[1:] for r in plain["rejects"]]
    assert zipped["rejects"][0][:2] == ("2018-11-01-events.json.gz", 6)


def test_a_truncated_gzip_file_loads_its_whole_lines_and_rejects_the_rest(tmp_path: Path) -> None:
    compressed = gzip.compress(text(day_lines(1, 2000)))
    day = write(tmp_path / "2018-11-01-events.json.gz", compressed[: len(compressed) // 2])
    not_gzip = write(tmp_path / "2018-11-02-events.json.gz", text(day_lines(2, 2)))
    staged = stage(tmp_path, [day, not_gzip])
    loaded = len(staged["rows"])
    assert 0 < loaded < 2000
    broken, wrong = staged["rejects"]
    assert broken[:2] == ("2018-11-01-events.json.gz", loaded + 1)  # the line it broke in
    assert broken[2].startswith("corrupt gzip data: ")
    assert wrong[:2] == ("2018-11-02-events.json.gz", 0)
    assert wrong[2].startswith("corrupt gzip data: Not a gzipped file")


def test_a_timestamp_out_of_range_is_a_reject_naming_the_field(tmp_path: Path) -> None:
    records = [event(ts=99999999999999999), event(ts=-99999999999999), event(itemInSession=3)]
    day = write(tmp_path / "2018-11-01-events.json", text(records))
    staged = stage(tmp_path, [day])
    assert len(staged["rows"]) == 1
    assert [r[1:3] for r in staged["rejects"]] == [(1, OUT_OF_RANGE), (2, OUT_OF_RANGE)]
    # Python-parsed records (the songs' path) apply the same rule to a timestamp field.
    ts = FieldRule.of(next(f for f in json_fields(model.staging_events) if f.column == "ts"))
    assert ts.problem(99999999999999999) == OUT_OF_RANGE
    assert ts.problem(1541105830796) is None


def test_a_line_longer_than_the_limit_is_a_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lines, "READ_BYTES", 256)
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 1000)
    long = event(itemInSession=1, userAgent="x" * 2000)
    day = write(tmp_path / "2018-11-01-events.json", text([event(), long, event(itemInSession=2)]))
    staged = stage(tmp_path, [day])
    assert [r[4] for r in staged["rows"]] == [0, 2]
    assert [r[1:3] for r in staged["rejects"]] == [(2, "line too long: more than 1000 bytes")]


def test_song_files_with_byte_faults_are_rejects(tmp_path: Path) -> None:
    song = json.dumps(SONG).encode()
    files = [
        write(tmp_path / "TRA.json", song),
        write(tmp_path / "TRB.json", gzip.compress(json.dumps({**SONG, "song_id": "B"}).encode())),
        write(tmp_path / "TRC.json", bytes(range(256))),
        write(tmp_path / "TRE.json", song.replace(b"Sigur R\\u00f3s", b"Sigur R\xf3s")),
        write(tmp_path / "TRF.json.gz", gzip.compress(song)[:20]),
    ]
    staged = stage(tmp_path, [], files)
    assert len(staged["songs"]) == 1
    rejects = {name: (number, reason, raw) for name, number, reason, raw in staged["rejects"]}
    assert rejects["TRB.json"][:2] == (
        0,
        "binary file: gzip-compressed data in a file not named .gz",
    )
    assert rejects["TRC.json"][:2] == (0, "binary file: NUL bytes, not JSON text")
    number, reason, raw = rejects["TRE.json"]
    assert (number, reason.split(":")[0]) == (1, "invalid UTF-8")
    assert "Sigur R\\xf3s" in raw
    assert rejects["TRF.json.gz"][:1] == (0,)
    assert rejects["TRF.json.gz"][1].startswith("corrupt gzip data: ")


@pytest.fixture
def many_files(tmp_path: Path) -> list[Path]:
    """Days of good lines and every kind of bad one, a duplicated day among them, and a
    last line without its line break."""
    bad = [
        "not json",
        event(sessionId="five"),
        event(ts=...),
        event(userId="abc"),
        "",
        "   ",
        event(level="é" * 9),
        event(ts=99999999999999999),
        "[1, 2]",
    ]
    files = []
    for day in range(1, 6):
        body = [*day_lines(day, 40), *bad, *day_lines(100 + day, 7)]
        files.append(write(tmp_path / "src" / f"2018-11-0{day}-events.json", text(body)))
    files.append(write(tmp_path / "src" / "2018-11-06-events.json", files[2].read_bytes()))
    files.append(write(tmp_path / "src" / "2018-11-07-events.json", text(day_lines(7, 3))[:-1]))
    files.append(write(tmp_path / "src" / "2018-11-08-events.json", b""))
    lf = b"\r\n".join(line.encode() for line in day_lines(9, 3))
    files.append(write(tmp_path / "src" / "2018-11-09-events.json", lf + b"\r\n\xfe\r\n"))
    return files


def test_any_batch_size_stages_the_same_rows_and_rejects(
    tmp_path: Path, many_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = stage(tmp_path / "one", many_files)
    monkeypatch.setattr(lines, "READ_BYTES", 100)  # lines cut across reads, too
    batched = stage(tmp_path / "many", many_files, batch_lines=3)
    assert batched["rows"] == whole["rows"]
    assert batched["rejects"] == whole["rejects"]
    assert len(whole["rows"]) == 5 * 47 + 3 + 3
    reasons = {(name, reason.split(":")[0]) for name, _, reason, _ in whole["rejects"]}
    assert ("2018-11-06-events.json", "duplicate file") in reasons
    assert ("2018-11-08-events.json", "empty file") in reasons
    assert ("2018-11-09-events.json", "invalid UTF-8") in reasons
    assert sum(name == "2018-11-03-events.json" for name, *_ in whole["rejects"]) == 7
    assert len(whole["rejects"]) == 5 * 7 + 3


@pytest.mark.usefixtures("prefect_server")
def test_a_run_with_byte_faults_succeeds_and_accounts_for_every_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    days = src / "log_data" / "2018" / "11"
    write(days / "2018-11-01-events.json", text(day_lines(1, 5)) + b"\xc3\x28\n")
    write(days / "2018-11-02-events.json.gz", gzip.compress(text(day_lines(2, 5))))
    write(days / "2018-11-03-events.json", bytes(range(256)))
    write(src / "song_data" / "A" / "TRA.json.gz", gzip.compress(json.dumps(SONG).encode()))
    db = tmp_path / "wh.duckdb"
    summary = etl(str(src), str(db))
    assert summary["staged"]["events"]["rows"] == 10
    assert summary["staged"]["events"]["rejects"] == 2
    assert summary["staged"]["songs"]["rows"] == 1
    rejects = query(
        db,
        "select regexp_extract(source_file, '[^/]+$'), line_number, reason, raw_line "
        "from load_rejects order by 1",
    )
    assert rejects[0] == (
        "2018-11-01-events.json",
        6,
        "invalid UTF-8: byte 0xc3 at offset 0",
        "\\xc3(",
    )
    assert rejects[1][:3] == ("2018-11-03-events.json", 0, "binary file: NUL bytes, not JSON text")
    assert query(db, "select count(*) from songplays")[0][0] == 10


# The PostgreSQL stand-in for Redshift loads the same files (its COPY emulated after Redshift's
# documentation): both warehouses reject the same lines, and the same star tables result.
load_both = postgres_tests.load_both
edge_source = postgres_tests.edge_source


@pytest.mark.postgres
def test_both_warehouses_reject_invalid_utf8_and_timestamps_out_of_range(
    load_both, edge_source
) -> None:
    edge = postgres_tests.event
    root = edge_source([edge(userId="9010"), edge(userId="9010", ts=99999999999999999)])
    day = root / "log_data" / "2018" / "11" / "2018-11-08-events.json"
    good = json.dumps(edge(userId="9011", ts=postgres_tests.EDGE_TS + 86_400_000)).encode()
    bad = json.dumps(edge(userId="9012", firstName="Zo\udcff"), ensure_ascii=False)
    day.write_bytes(good + b"\n" + bad.encode("utf-8", "surrogateescape") + b"\n")
    loaded = load_both(root)
    assert loaded.postgres == loaded.duckdb
    assert loaded.rejects == {"postgres": (2, 0), "duckdb": (2, 0)}
    assert {row[0] for row in loaded.duckdb["users"]} >= {9010, 9011}
