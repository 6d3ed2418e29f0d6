"""Redshift: exact statement text, manifests on S3 (moto over HTTP), and the pipeline's order of
statements through a real SQLAlchemy engine with the Redshift dialect over a recording DB-API."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlfluff
from sqlalchemy import create_engine
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

from flows.etl import etl
from sql import model
from sql.fields import jsonpaths
from tasks.run.quality import default_checks
from tasks.source.s3 import S3Source
from tasks.warehouse.protocol import Reject
from tasks.warehouse.redshift.load_errors import LoadFailed, load_errors_query, parse_load_errors
from tasks.warehouse.redshift.staging_copy import copy_statement, manifest
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests import fake_redshift

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
DIALECT = RedshiftDialect_redshift_connector()


def normal(sql: str) -> str:
    return " ".join(str(sql).split())


def warehouse(**changes) -> RedshiftWarehouse:
    fields = {
        "host": "sparkify.abc123.us-west-2.redshift.amazonaws.com",
        "user": "sparkify",
        "password": "Not-a-real-0ne",
        "iam_role_arn": ROLE,
        "region": "us-west-2",
        "max_errors": 10,
    }
    return RedshiftWarehouse(**{**fields, **changes})


def test_ddl_of_every_table_is_exact() -> None:
    ddl = {t.name: normal(CreateTable(t).compile(dialect=DIALECT)) for t in model.ALL_TABLES}
    assert ddl["songplays"] == (
        "CREATE TABLE songplays ( songplay_id VARCHAR(32) NOT NULL, start_time TIMESTAMP WITHOUT "
        "TIME ZONE NOT NULL, user_id INTEGER NOT NULL, level VARCHAR(16), song_id VARCHAR(32), "
        "artist_id VARCHAR(32), session_id INTEGER NOT NULL, location VARCHAR(256), user_agent "
        "VARCHAR(1024) ) DISTSTYLE KEY DISTKEY (start_time) SORTKEY (start_time)"
    )
    assert ddl["users"] == (
        "CREATE TABLE users ( user_id INTEGER NOT NULL, first_name VARCHAR(256), last_name "
        "VARCHAR(256), gender VARCHAR(32), level VARCHAR(16), last_seen_at TIMESTAMP WITHOUT TIME "
        "ZONE NOT NULL ) SORTKEY (user_id)"
    )
    assert ddl["songs"] == (
        "CREATE TABLE songs ( song_id VARCHAR(32) NOT NULL, title VARCHAR(512), artist_id "
        "VARCHAR(32), year INTEGER, duration DOUBLE PRECISION ) SORTKEY (song_id)"
    )
    assert ddl["artists"] == (
        "CREATE TABLE artists ( artist_id VARCHAR(32) NOT NULL, name VARCHAR(512), location "
        "VARCHAR(512), latitude DOUBLE PRECISION, longitude DOUBLE PRECISION ) "
        "SORTKEY (artist_id)"
    )
    assert ddl["time"] == (
        "CREATE TABLE time ( start_time TIMESTAMP WITHOUT TIME ZONE NOT NULL, hour INTEGER, day "
        "INTEGER, week INTEGER, month INTEGER, year INTEGER, weekday INTEGER ) DISTSTYLE KEY "
        "DISTKEY (start_time) SORTKEY (start_time)"
    )
    assert ddl["staging_songs"] == (
        "CREATE TABLE staging_songs ( num_songs INTEGER, artist_id VARCHAR(32) NOT NULL, "
        "artist_latitude DOUBLE PRECISION, artist_longitude DOUBLE PRECISION, artist_location "
        "VARCHAR(65535), artist_name VARCHAR(512) NOT NULL, song_id VARCHAR(32) NOT NULL, title "
        "VARCHAR(512) NOT NULL, duration DOUBLE PRECISION, year INTEGER, source_file "
        "VARCHAR(1093) NOT NULL ) DISTSTYLE EVEN"
    )
    files = (
        "( source_file VARCHAR(1093) NOT NULL, kind VARCHAR(8) NOT NULL, size BIGINT NOT NULL, "
        "version VARCHAR(256) NOT NULL, records BIGINT, flow_run_id VARCHAR(64), loaded_at "
        "TIMESTAMP WITHOUT TIME ZONE NOT NULL )"
    )
    assert (
        ddl["loaded_files"]
        == f"CREATE TABLE loaded_files {files} DISTSTYLE EVEN SORTKEY (source_file)"
    )
    assert ddl["staging_files"] == f"CREATE TABLE staging_files {files} DISTSTYLE EVEN"
    assert ddl["song_catalog"] == (
        "CREATE TABLE song_catalog ( source_file VARCHAR(1093) NOT NULL, song_id VARCHAR(32) NOT "
        "NULL, title VARCHAR(512) NOT NULL, artist_id VARCHAR(32) NOT NULL, artist_name "
        "VARCHAR(512) NOT NULL, artist_location VARCHAR(512), artist_latitude DOUBLE PRECISION, "
        "artist_longitude DOUBLE PRECISION, year INTEGER, duration DOUBLE PRECISION ) "
        "SORTKEY (source_file)"
    )
    assert ddl["songplay_songs"] == (
        "CREATE TABLE songplay_songs ( songplay_id VARCHAR(32) NOT NULL, start_time TIMESTAMP "
        "WITHOUT TIME ZONE NOT NULL, song VARCHAR(65535), artist VARCHAR(65535), length DOUBLE "
        "PRECISION ) DISTSTYLE KEY DISTKEY (start_time) SORTKEY (start_time)"
    )
    # Required fields are NOT NULL, so COPY itself rejects a record without them; text is
    # staged up to Redshift's widest VARCHAR (what is too wide for a star column is cut there).
    events = ddl["staging_events"]
    for required in ("item_in_session INTEGER", "page VARCHAR(65535)", "session_id INTEGER"):
        assert f"{required} NOT NULL," in events
    assert events.endswith(
        "ts TIMESTAMP WITHOUT TIME ZONE NOT NULL, ts_ms BIGINT, user_agent VARCHAR(65535), "
        "user_id VARCHAR(65535) ) DISTSTYLE EVEN"
    )
    assert events.startswith("CREATE TABLE staging_events ( artist VARCHAR(65535), ")
    assert ddl["load_rejects"].endswith(
        "raw_line VARCHAR(65535), recorded_at TIMESTAMP WITHOUT TIME ZONE NOT NULL ) DISTSTYLE EVEN"
    )


@pytest.mark.parametrize("target", [model.staging_events, model.staging_songs])
def test_copy_statements_are_exact_and_carry_no_bind_markers(target) -> None:
    text = copy_statement(
        target,
        f"s3://raw-bucket/sparkify/_sparkify/manifests/20181101T000000000000/{target.name}.manifest",
        f"s3://raw-bucket/sparkify/_sparkify/jsonpaths/{target.name}.json",
        warehouse(),
    )
    columns = ", ".join(c.name for c in target.columns)
    assert normal(text) == (
        f"COPY {target.name} ({columns}) FROM "
        f"'s3://raw-bucket/sparkify/_sparkify/manifests/20181101T000000000000/{target.name}.manifest'"
        f" IAM_ROLE '{ROLE}' "
        f"FORMAT AS JSON 's3://raw-bucket/sparkify/_sparkify/jsonpaths/{target.name}.json' "
        "MANIFEST TIMEFORMAT 'epochmillisecs' COMPUPDATE OFF "
        "MAXERROR 10 REGION 'us-west-2'"
    )
    assert not re.search(r"%s|%\(|\$\d|\?", text)


def test_gzip_copy_is_the_same_statement_with_gzip_after_manifest() -> None:
    uris = ("s3://raw-bucket/m/staging_songs.gzip.manifest", "s3://raw-bucket/j.json")
    plain = copy_statement(model.staging_songs, *uris, warehouse())
    text = copy_statement(model.staging_songs, *uris, warehouse(), gzip=True)
    assert normal(text) == normal(plain).replace(" MANIFEST ", " MANIFEST GZIP ")
    assert "GZIP" not in plain
    sqlfluff.parse(text, dialect="redshift")  # raises if Redshift's grammar refuses it


def test_copy_values_are_quoted_by_the_dialect() -> None:
    text = copy_statement(
        model.staging_songs, "s3://b/it's/m.manifest", "s3://b/it's/j.json", warehouse()
    )
    assert "'s3://b/it''s/m.manifest'" in text


def test_copy_literals_double_backslashes_so_a_prefix_cannot_end_them() -> None:
    # Redshift reads a backslash in a literal as an escape: \' would not close it.
    text = copy_statement(
        model.staging_songs, "s3://b/a\\'; drop table songs; --/m.manifest", "s3://b/j", warehouse()
    )
    assert "FROM 's3://b/a\\\\''; drop table songs; --/m.manifest'" in text
    literal = re.search(r"FROM '((?:[^'\\]|''|\\\\)*)'\n", text)
    assert literal is not None  # the whole URI is one literal up to the line's end


def test_copy_with_the_clusters_default_role_says_iam_role_default() -> None:
    block = warehouse(iam_role_arn="Default")
    assert block.iam_role_arn == "default"
    text = copy_statement(model.staging_events, "s3://b/m", "s3://b/j", block)
    assert "\nIAM_ROLE default\n" in text
    assert ROLE not in text
    assert normal(text) == normal(
        copy_statement(model.staging_events, "s3://b/m", "s3://b/j", warehouse())
    ).replace(f"IAM_ROLE '{ROLE}'", "IAM_ROLE default")
    sqlfluff.parse(text, dialect="redshift")
    with pytest.raises(ValueError, match="not an IAM role ARN, nor 'default'"):
        warehouse(iam_role_arn="'default'")


def test_copy_uses_iam_role_and_never_the_legacy_credentials_string() -> None:
    text = copy_statement(model.staging_events, "s3://b/m", "s3://b/j", warehouse())
    assert f"IAM_ROLE '{ROLE}'" in text
    assert "CREDENTIALS" not in text
    assert "aws_iam_role=" not in text


def test_maxerror_defaults_to_redshifts_limit_and_refuses_more() -> None:
    fields = {k: v for k, v in warehouse().model_dump().items() if k != "max_errors"}
    fields["password"] = "Not-a-real-0ne"
    assert RedshiftWarehouse(**fields).max_errors == 100_000
    with pytest.raises(ValueError, match="less than or equal to 100000"):
        warehouse(max_errors=100_001)
    text = copy_statement(model.staging_events, "s3://b/m", "s3://b/j", warehouse(max_errors=0))
    assert "MAXERROR 0" in text


def test_engine_sets_no_socket_timeout_that_would_cut_long_statements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "tasks.warehouse.redshift.warehouse.create_engine",
        lambda url, **kwargs: seen.update(kwargs),
    )
    warehouse().get_engine()
    assert "timeout" not in seen["connect_args"]
    assert seen["connect_args"]["tcp_keepalive"] is True


def test_block_refuses_what_is_not_a_role_arn() -> None:
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        warehouse(iam_role_arn="AKIAEXAMPLE")


def test_block_url_and_description_never_show_the_password() -> None:
    block = warehouse()
    assert block.url().drivername == "redshift+redshift_connector"
    assert "Not-a-real-0ne" not in block.describe()
    assert "Not-a-real-0ne" not in repr(block)
    assert "Not-a-real-0ne" not in str(block.url())


def test_manifest_names_exactly_the_files() -> None:
    files = ["s3://b/p/log_data/2018/11/2018-11-01-events.json"]
    assert manifest(files) == {"entries": [{"url": files[0], "mandatory": True}]}


def test_load_error_rows_become_rejects() -> None:
    since = "2024-01-01 12:00:00.000000"
    query = normal(load_errors_query("stl_load_errors", since).compile(dialect=DIALECT))
    assert query.startswith("SELECT trim(stl_load_errors.filename) AS filename")
    assert (
        "WHERE stl_load_errors.session = pg_backend_pid() AND stl_load_errors.starttime >= "
        "CAST(%s AS TIMESTAMP WITHOUT TIME ZONE) ORDER BY" in query
    )
    sys_query = normal(load_errors_query("sys_load_error_detail", since).compile(dialect=DIALECT))
    assert "trim(sys_load_error_detail.error_message) AS error_message" in sys_query
    assert (
        "WHERE sys_load_error_detail.session_id = pg_backend_pid() "
        "AND sys_load_error_detail.start_time >= CAST(%s AS TIMESTAMP WITHOUT TIME ZONE) "
        "ORDER BY" in sys_query
    )
    rows = [
        {
            "filename": "s3://b/p/log_data/2018/11/2018-11-02-events.json   ",
            "line_number": 7,
            "colname": "ts      ",
            "err_reason": "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]   ",
            "raw_line": '{"ts": "yesterday"}   ',
        }
    ]
    assert parse_load_errors("stl_load_errors", rows) == [
        Reject(
            "s3://b/p/log_data/2018/11/2018-11-02-events.json",
            7,
            "ts: Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]",
            '{"ts": "yesterday"}',
        )
    ]


# The server's clock the fake answers, as the load-error query casts it.
SERVER_CLOCK = "CAST('2024-01-01 12:00:00.000000' AS TIMESTAMP WITHOUT TIME ZONE)"
# How the clock is read before each COPY: GETDATE() in UTC, as text.
CLOCK_QUERY = (
    "SELECT to_char(timezone(%s, CAST(getdate() AS TIMESTAMP WITH TIME ZONE)), %s) AS to_char_1"
)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> fake_redshift.Recorder:
    """Every engine of a RedshiftWarehouse records into a fresh recorder; the song files it
    combines are cached under the test's directory."""
    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "s3-cache"))
    fresh = fake_redshift.Recorder()
    monkeypatch.setattr(fake_redshift, "RECORDER", fresh)
    url = warehouse().url()
    monkeypatch.setattr(
        RedshiftWarehouse, "get_engine", lambda self: create_engine(url, module=fake_redshift)
    )
    return fresh


@pytest.mark.usefixtures("prefect_server")
def test_redshift_run_is_one_transaction_begun_by_the_run_lock(
    recorder: fake_redshift.Recorder, s3_week: S3Source, aws_credentials, bucket_name: str
) -> None:
    aws_credentials.save("moto-test", overwrite=True)
    warehouse().save("recorded", overwrite=True)
    events_error = (
        f"s3://{bucket_name}/raw/log_data/2018/11/2018-11-02-events.json",
        7,
        "ts",
        "Invalid timestamp format or value",
    )
    recorder.answer(r"pg_last_copy_count", ["pg_last_copy_count"], [(1234,)])
    recorder.answer(r"count\(\*\).*user_id !~", ["count"], [(3,)])
    recorder.answer(
        r"from sys_load_error_detail",
        ["file_name", "line_number", "column_name", "error_message"],
        [events_error],
    )
    recorder.answer(r"^select pg_backend_pid\(\) as", ["pg_backend_pid"], [(4321,)])

    summary = etl(
        f"s3://{bucket_name}/raw",
        "sparkify-redshift-warehouse/recorded",
        date(2018, 11, 2),
        date(2018, 11, 3),
        aws_credentials="moto-test",
    )

    statements = recorder.executed()
    assert not any(s.upper().startswith("TRUNCATE") for s in statements)
    # The run's one transaction begins by locking the run lock table, the session's PID asked
    # first (a second connection would end the LOCK's wait, were it longer than the block's; no
    # statement_timeout, which Redshift does not document for lock waits); then staging,
    # transforms, checks and counts, and one COMMIT at the end.
    lock = statements.index("lock table sparkify_run_lock")
    assert statements[lock - 1] == "SELECT pg_backend_pid() AS pg_backend_pid_1"
    assert not any("set_config" in s for s in statements)
    run = statements[lock : statements.index("COMMIT", lock) + 1]
    assert "ROLLBACK" not in run
    assert run.count("COMMIT") == 1
    copies = [i for i, s in enumerate(run) if s.startswith("COPY ")]
    assert [run[i].split()[1] for i in copies] == ["staging_events", "staging_songs"]
    # Staging: a new table (DELETE leaves ghost rows, TRUNCATE would commit), COPY, count,
    # errors.
    drop = run.index("DROP TABLE staging_events")
    assert run[drop + 1].startswith("CREATE TABLE staging_events (")
    begin = drop + 1
    stage = run[begin:]
    # The files' rejects, each name with its length too: Redshift ignores trailing blanks.
    assert stage[1].startswith(
        "DELETE FROM load_rejects WHERE length(load_rejects.source_file) = %s "
        "AND load_rejects.source_file IN"
    )
    copy = copies[0] - begin
    # The server's clock before this COPY: its errors are the session's logged since then.
    assert stage[copy - 1] == CLOCK_QUERY
    assert stage[copy + 1] == "SELECT pg_last_copy_count() AS pg_last_copy_count_1"
    assert "FROM sys_load_error_detail WHERE sys_load_error_detail.session_id" in stage[copy + 2]
    # Levels the tables do not accept and userIds that are not numbers INTEGER holds would fail
    # a check or the transform's cast: checked after COPY, in column order (no bad level here).
    assert stage[copy + 3] == (
        "SELECT count(*) AS count_1 FROM staging_events WHERE staging_events.level IS NOT NULL "
        "AND staging_events.level !~ %s"
    )
    assert stage[copy + 4] == (
        "SELECT count(*) AS count_1 FROM staging_events WHERE staging_events.user_id IS NOT NULL "
        "AND staging_events.user_id !~ %s"
    )
    assert stage[copy + 5] == (
        "DELETE FROM staging_events WHERE staging_events.user_id IS NOT NULL "
        "AND staging_events.user_id !~ %s"
    )
    # A play needs a user: NextSong events without a userId are counted (none here).
    assert stage[copy + 6] == (
        "SELECT count(*) AS count_1 FROM staging_events WHERE rtrim(staging_events.page, %s) = %s "
        "AND coalesce(staging_events.user_id, %s) = %s"
    )
    # The staging table's statistics, once its rows are final (after every COPY and removal).
    assert stage[copy + 7] == "analyze staging_events"
    # One reject row from the load-error log, one for the bad userIds, in one multi-row INSERT
    # (an executemany would be a statement per row on redshift_connector).
    assert stage[copy + 8].startswith("INSERT INTO load_rejects")
    assert stage[copy + 8].count("%s") == 2 * len(model.load_rejects.columns)
    assert stage[copy + 9] == "DROP TABLE staging_songs"
    assert run.index("analyze staging_songs") > copies[1]
    # The files staged, with their versions, for the ledger: 2 days and the 60 song files,
    # in one statement.
    files = run.index("DELETE FROM staging_files")
    assert files > run.index("analyze staging_songs")
    assert run[files + 1].startswith("INSERT INTO staging_files")
    assert run[files + 1].count("%s") == 62 * len(model.staging_files.columns)
    # Transforms and checks after staging, in the same transaction, then the row counts.
    publish = run[files:]
    first_transform = next(i for i, s in enumerate(publish) if s.startswith("create temp"))
    assert publish[first_transform].startswith("create temp table catalog_changes")
    assert any(s.startswith("insert into loaded_files") for s in publish)
    assert any(s.startswith("insert into songplays") for s in publish)
    last_transform = max(i for i, s in enumerate(publish) if s.startswith("insert into loaded"))
    # Then the quality checks, one query counting the failing rows of each, and the counts.
    checks, *counts = publish[last_transform + 1 : -1]
    assert checks.startswith("SELECT (SELECT count(*)")
    assert checks.count(" AS check_") == len(default_checks())
    assert counts
    assert all(s.startswith("SELECT count(*)") for s in counts)
    # The manifest COPY read names exactly the run's two days; it and the JSONPaths are in S3.
    manifest_uri = re.search(r"FROM '([^']+)'", run[copies[0]]).group(1)
    jsonpaths_uri = re.search(r"FORMAT AS JSON '([^']+)'", run[copies[0]]).group(1)
    client = s3_week.client()
    body = client.get_object(Bucket=bucket_name, Key=manifest_uri.split("/", 3)[3])["Body"]
    entries = [e["url"] for e in json.loads(body.read())["entries"]]
    assert entries == [
        f"s3://{bucket_name}/raw/log_data/2018/11/2018-11-02-events.json",
        f"s3://{bucket_name}/raw/log_data/2018/11/2018-11-03-events.json",
    ]
    for uri in entries:
        client.head_object(Bucket=bucket_name, Key=uri.split("/", 3)[3])
    paths = client.get_object(Bucket=bucket_name, Key=jsonpaths_uri.split("/", 3)[3])["Body"]
    assert json.loads(paths.read()) == jsonpaths(model.staging_events)
    # The 60 song files went to COPY combined into one object (tests/test_song_bundles.py),
    # deleted once the COPY ran.
    songs_manifest = re.search(r"FROM '([^']+)'", run[copies[1]]).group(1)
    body = client.get_object(Bucket=bucket_name, Key=songs_manifest.split("/", 3)[3])["Body"]
    [combined] = [e["url"] for e in json.loads(body.read())["entries"]]
    assert re.fullmatch(
        rf"s3://{bucket_name}/raw/_sparkify/bundles/\d{{8}}T\d{{12}}/"
        r"staging_songs\.0001\.json",
        combined,
    )
    assert "Contents" not in client.list_objects_v2(Bucket=bucket_name, Prefix="raw/_sparkify/b")
    # The load error is in the run's rejects report.
    assert summary["staged"]["events"]["rejects"] == 1 + 3
    assert summary["staged"]["events"]["reject_samples"][1]["reason"] == (
        "bad value for userId: not empty nor a number from 0 to 2147483647 (3 records)"
    )
    assert summary["staged"]["events"]["reject_samples"][:1] == [
        {
            "source_file": events_error[0],
            "line_number": 7,
            "reason": "ts: Invalid timestamp format or value",
            "raw_line": None,
        }
    ]
    assert summary["staged"]["events"]["rows"] == 1234 - 3


@pytest.mark.usefixtures("prefect_server")
def test_failed_copy_rolls_back_and_reports_the_rejected_records(
    recorder: fake_redshift.Recorder, s3_week: S3Source, bucket_name: str
) -> None:
    recorder.fail_on = r"^copy staging_events"
    day = f"s3://{bucket_name}/raw/log_data/2018/11/2018-11-02-events.json"  # of the manifest
    recorder.answer(
        r"from sys_load_error_detail",
        ["file_name", "line_number", "column_name", "error_message"],
        [(day, n, "ts", "Invalid timestamp") for n in range(1, 12)],
    )
    block = warehouse()

    def stage_events() -> None:
        with block.get_engine().begin() as conn:
            files = s3_week.run_files(None, None)
            block.stage_events(conn, s3_week, files.event_files, datetime(2024, 1, 1))

    with pytest.raises(LoadFailed, match=r"COPY into staging_events failed with 11 rejected"):
        stage_events()
    statements = recorder.executed()
    copy = next(i for i, s in enumerate(statements) if s.startswith("COPY"))
    assert statements[copy + 1] == "ROLLBACK"
    assert "COMMIT" not in statements
    # A rolled-back COPY leaves pg_last_copy_id() on the COPY before it: the errors read are
    # this session's logged since the server's clock read just before the failed COPY.
    errors = next(s for s in statements[copy:] if "FROM sys_load_error_detail" in s)
    assert "sys_load_error_detail.session_id = pg_backend_pid()" in errors
    assert f"sys_load_error_detail.start_time >= {SERVER_CLOCK}" in errors


def test_redshift_needs_an_s3_source(tmp_path: Path) -> None:
    from tasks.source.local import LocalSource

    with pytest.raises(ValueError, match="Redshift loads by COPY from S3"):
        warehouse().stage_events(None, LocalSource(tmp_path), [], datetime(2024, 1, 1))
