"""How the Redshift path records the records COPY rejects, on the PostgreSQL stand-in (COPY
emulated, S3 on moto): read from the load-error log whatever its query ids, recorded in few
statements, with reasons and file names that fit load_rejects and are cleared on a rerun."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sql import model
from tasks.source.s3 import S3Source
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.protocol import MAX_RAW_LINE, Reject
from tasks.warehouse.rejects import file_rejects
from tasks.warehouse.staging import (
    count_rejects,
    insert_rejects,
    insert_values,
    reject_samples,
    reset_staging,
)
from tasks.warehouse.tables import create_tables
from tests.postgres_redshift import PostgresRedshiftWarehouse, compare_as_redshift, stand_in

pytestmark = pytest.mark.postgres

AT = datetime(2024, 1, 1)
REJECTS = model.load_rejects


@pytest.fixture
def source(aws_credentials, bucket_name: str) -> S3Source:
    """An empty bucket, the run's source."""
    found = S3Source(bucket_name, "raw", aws_credentials)
    found.client().create_bucket(Bucket=bucket_name)
    return found


# The load-error logs the block can read, as indirect parameters of `block`.
BOTH_VIEWS = pytest.mark.parametrize(
    "block", ["sys_load_error_detail", "stl_load_errors"], indirect=True
)


@pytest.fixture
def block(
    postgres_database: str, aws_credentials, request: pytest.FixtureRequest
) -> PostgresRedshiftWarehouse:
    """The stand-in, its tables created, reading the load-error log a test names (SYS's)."""
    view = getattr(request, "param", "sys_load_error_detail")
    created = stand_in(postgres_database, aws_credentials, load_errors_view=view)
    model.metadata.create_all(created.get_engine())
    return created


def put_events(source: S3Source, files: dict[str, list[str]]) -> list[str]:
    """Event files of these lines under log_data/; their URIs, listed as a run lists them."""
    for name, lines in files.items():
        body = "\n".join(lines).encode()
        source.client().put_object(
            Bucket=source.bucket, Key=source.key("log_data", name), Body=body
        )
    listed = source.listing("log_data") or {}
    return [uri for uri in listed if listed[uri] in files]


def kept_rejects(block: PostgresRedshiftWarehouse) -> list[tuple[str, int]]:
    """The files and lines load_rejects holds, in order."""
    with block.get_engine().connect() as conn:
        query = select(REJECTS.c.source_file, REJECTS.c.line_number)
        return sorted(tuple(row) for row in conn.execute(query))


@BOTH_VIEWS
def test_rejects_are_read_whatever_query_ids_the_load_error_view_logs(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    # The stand-in logs SYS query ids of another space than pg_last_copy_id()'s, as Redshift's
    # SYS views may, and STL's of its: the rejects are found by session, time and file.
    [uri] = put_events(source, {"2018-11-02-events.json": ["not json", "{", "[1]"]})
    with block.get_engine().begin() as conn:
        report = block.stage_events(conn, source, [uri], AT)
    assert (report.rows, report.rejects) == (0, 3)
    assert [(r.source_file, r.line_number) for r in report.reject_samples] == [
        (uri, 1),
        (uri, 2),
        (uri, 3),
    ]
    assert kept_rejects(block) == [(uri, 1), (uri, 2), (uri, 3)]


@BOTH_VIEWS
def test_a_copy_reads_only_its_own_rejects_in_a_session_of_several(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    first, second = put_events(
        source, {"2018-11-02-events.json": ["not json"], "2018-11-03-events.json": ["{", "{"]}
    )
    with block.get_engine().begin() as conn:
        one = block.stage_events(conn, source, [first], AT)
        two = block.stage_events(conn, source, [second], AT)
        count = conn.execute(select(func.count()).select_from(REJECTS)).scalar_one()
    assert [(r.source_file, r.line_number) for r in one.reject_samples] == [(first, 1)]
    assert [(r.source_file, r.line_number) for r in two.reject_samples] == [
        (second, 1),
        (second, 2),
    ]
    assert count == 3  # each staging forgets earlier rejects of its own files only


@BOTH_VIEWS
def test_rejects_of_a_key_over_256_bytes_are_kept_under_its_uri_and_cleared_on_a_rerun(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    # The load-error log keeps 256 bytes of a file's name (the stand-in as Redshift does); the
    # rejects are recorded under the manifest's full URI, which a rerun of the file clears.
    folder = "é" * 150  # 300 bytes
    uri, other = put_events(
        source, {f"a{folder}/2018-11-02-events.json": ["{"], f"b{folder}/x.json": ["{", "{"]}
    )
    assert len(uri.encode()) > len(other.encode()) > 256
    for _ in range(2):
        with block.get_engine().begin() as conn:
            report = block.stage_events(conn, source, [uri, other], AT)
        assert report.rejects == 3
    assert kept_rejects(block) == sorted([(uri, 1), (other, 1), (other, 2)])


def test_many_rejects_are_recorded_in_a_few_statements(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    # The stand-in's driver sends an executemany as redshift_connector does, one statement per
    # row: the rejects go in multi-row INSERTs, of ROWS_PER_INSERT rows at most.
    [uri] = put_events(source, {"2018-11-02-events.json": ["{"] * 5000})
    with block.get_engine().begin() as conn:
        report = block.stage_events(conn, source, [uri], AT)
        sent = conn.connection.dbapi_connection.sent
    assert report.rejects == 5000
    assert sum(s.startswith("INSERT INTO load_rejects") for s in sent) == 2
    assert len(sent) < 50
    assert kept_rejects(block) == [(uri, n) for n in range(1, 5001)]


def test_inserts_of_long_raw_lines_stay_within_a_statements_bytes(
    block: PostgresRedshiftWarehouse,
) -> None:
    # A raw line of 4,096 characters is up to 16 KB: the rows of one INSERT are bounded in
    # bytes too (here 20,000 bytes: two rows of 8 KB raw lines a statement).
    rows = [Reject("s3://b/f.json", n, "x", "é" * MAX_RAW_LINE).row(AT) for n in range(1, 11)]
    with block.get_engine().begin() as conn:
        insert_values(conn, REJECTS, rows, most_bytes=20_000)
        sent = conn.connection.dbapi_connection.sent
        kept = conn.execute(select(func.count()).select_from(REJECTS)).scalar_one()
    assert sum(s.startswith("INSERT INTO load_rejects") for s in sent) == 5
    assert kept == 10


def test_a_duplicate_files_reason_naming_a_long_key_fits_load_rejects(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    # Keys of up to 1,024 bytes make a reason naming one longer than load_rejects.reason.
    folder = "a" * 980
    first, copy = put_events(source, {f"{folder}/1.json": ["{"], f"{folder}/2.json": ["{"]})
    with block.get_engine().begin() as conn:
        block.stage_events(conn, source, [first, copy], AT)
        query = select(REJECTS.c.reason).where(REJECTS.c.line_number == 0)
        [reason] = conn.execute(query).scalars()
    assert len(reason.encode()) == REJECTS.c.reason.type.length
    assert reason.startswith(f"duplicate file: same content as {first[:100]}")
    assert reason.endswith("…")


@pytest.mark.parametrize("letter", ["a", "é", "€", "𝄞"])
def test_a_reason_is_cut_at_a_character_boundary_within_the_columns_bytes(letter: str) -> None:
    names = [f"s3://b/{letter * 1000}/{n}.json" for n in (1, 2)]
    [duplicate] = file_rejects(names, {name: "same" for name in names})
    data = duplicate.reason.encode()
    assert len(data) <= REJECTS.c.reason.type.length < len(data) + len(letter.encode())
    assert duplicate.reason.endswith("…")
    assert duplicate.reason.startswith("duplicate file: same content as s3://b/" + letter * 100)
    assert file_rejects(names[:1], {names[0]: None})[0].reason == "empty file"  # short: as is


def test_files_whose_names_differ_by_a_trailing_space_are_told_apart(
    block: PostgresRedshiftWarehouse, tmp_path: Path
) -> None:
    # Redshift ignores trailing blanks when comparing VARCHAR (the stand-in's source_file here
    # as well); DuckDB does not: on both, each file's rejects are its own.
    compare_as_redshift(block, REJECTS.c.source_file)
    duckdb = DuckDBWarehouse(path=str(tmp_path / "wh.duckdb")).get_engine()
    with duckdb.begin() as conn:
        create_tables(conn)
    plain, spaced = "s3://b/raw/song_data/A/TRA.json", "s3://b/raw/song_data/A/TRA.json "
    for engine in (block.get_engine(), duckdb):
        with engine.begin() as conn:
            rejects = [Reject(plain, 1, "plain"), Reject(spaced, 1, "a"), Reject(spaced, 2, "b")]
            insert_rejects(conn, rejects, AT)
            assert (count_rejects(conn, [plain]), count_rejects(conn, [spaced])) == (1, 2)
            assert [r.reason for r in reject_samples(conn, [plain])] == ["plain"]
            reset_staging(conn, model.staging_songs, [spaced])
            kept = conn.execute(select(REJECTS.c.source_file, REJECTS.c.reason)).all()
            assert [tuple(row) for row in kept] == [(plain, "plain")]


@pytest.mark.parametrize(
    "session",
    [
        *({"datestyle": style} for style in ("SQL, DMY", "German", "Postgres, MDY")),
        *({"timezone": zone} for zone in ("Asia/Tokyo", "America/New_York")),
    ],
)
def test_each_copy_reads_its_own_rejects_whatever_the_sessions_settings(
    postgres_database: str, aws_credentials, source: S3Source, session: dict[str, str]
) -> None:
    # The server's clock before a COPY comes back as text of a fixed format, not as a timestamp
    # the driver parses in the session's DATESTYLE. GETDATE() is in the session's time zone and
    # the logs' start times in UTC: ahead of UTC no reject would be found, behind it an earlier
    # COPY's rejects of the file again.
    block = stand_in(postgres_database, aws_credentials, **session)
    model.metadata.create_all(block.get_engine())
    [uri] = put_events(source, {"2018-11-02-events.json": ["{", "{"]})
    with block.get_engine().begin() as conn:
        reports = [block.stage_events(conn, source, [uri], AT) for _ in range(2)]
    assert [r.rejects for r in reports] == [2, 2]


def test_files_alike_in_their_first_256_bytes_are_copied_apart_and_named_in_full(
    block: PostgresRedshiftWarehouse, source: S3Source
) -> None:
    # The logs would give both files one cut name: each goes to a COPY of its own, so each
    # reject names its file, and a rerun clears it.
    folder = "é" * 150
    uri, other = put_events(
        source,
        {
            f"{folder}/2018-11-02-events.json": ["{"],
            f"{folder}/2018-11-03-events.json": ['{"a": 1}', "{", "{"],
        },
    )
    for _ in range(2):
        with block.get_engine().begin() as conn:
            report = block.stage_events(conn, source, [uri, other], AT)
        assert report.rejects == 4  # a record lacking the required fields is one too
    assert kept_rejects(block) == sorted([(uri, 1), (other, 1), (other, 2), (other, 3)])
