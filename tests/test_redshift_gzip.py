"""Redshift with gzipped files: COPY's GZIP holds for all of a statement's files, so a run with
plain and gzipped event files issues two COPYs for staging_events, one manifest each, in one
transaction, reading each COPY's rejects after it; the song files, gzipped ones decompressed,
are combined into objects that one plain COPY reads (through the recording DB-API of
tests/fake_redshift.py)."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, datetime

import orjson
import pytest

from sql.model import SOURCE_FILE_FIELD
from tasks.source.s3 import S3Source
from tasks.warehouse.redshift.load_errors import LoadFailed
from tests import fake_redshift
from tests.test_redshift import (  # noqa: F401 - the fixtures
    CLOCK_QUERY,
    SERVER_CLOCK,
    recorder,
    warehouse,
)


def gzip_some_files(source: S3Source, *days: int) -> None:
    """Replace these days' event files, and one song file in two, by gzipped copies."""
    client = source.client()
    keys = [f"raw/log_data/2018/11/2018-11-{day:02d}-events.json" for day in days]
    songs = sorted(s.split("/", 3)[3] for s in source.run_files(None, None).song_files)
    for key in keys + songs[::2]:
        body = client.get_object(Bucket=source.bucket, Key=key)["Body"].read()
        client.put_object(Bucket=source.bucket, Key=key + ".gz", Body=gzip.compress(body))
        client.delete_object(Bucket=source.bucket, Key=key)


def stored(source: S3Source, uri: str) -> bytes:
    """An object's bytes, as S3 holds them."""
    return source.client().get_object(Bucket=source.bucket, Key=uri.split("/", 3)[3])["Body"].read()


def manifest_entries(source: S3Source, copy: str) -> list[str]:
    uri = re.search(r"FROM '([^']+)'", copy).group(1)
    return [entry["url"] for entry in json.loads(stored(source, uri))["entries"]]


def test_plain_and_gzipped_files_are_two_copies_in_one_transaction(
    recorder: fake_redshift.Recorder,  # noqa: F811
    s3_week: S3Source,
    bucket_name: str,
) -> None:
    gzip_some_files(s3_week, 2)
    combined: dict[str, bytes] = {}

    def load_errors():
        # The combined objects the last COPY read, kept before they are deleted after it.
        copy = next(s for s in reversed(recorder.statements) if s.startswith("COPY"))
        entries = manifest_entries(s3_week, copy)
        for uri in entries:
            if "/_sparkify/bundles/" in uri:
                combined[uri] = stored(s3_week, uri)
        row = (entries[0], 3, "ts", "Invalid timestamp")  # a file of that COPY's manifest
        return ["file_name", "line_number", "column_name", "error_message"], [row]

    recorder.answer(r"pg_last_copy_count", ["pg_last_copy_count"], [(100,)])
    recorder.answers.append((r"from sys_load_error_detail", load_errors))
    block = warehouse()
    files = s3_week.run_files(date(2018, 11, 1), date(2018, 11, 3))
    with block.get_engine().begin() as conn:
        events = block.stage_events(conn, s3_week, files.event_files, datetime(2024, 1, 1))
        songs = block.stage_songs(conn, s3_week, files.song_files, datetime(2024, 1, 1))

    statements = recorder.executed()
    copies = [i for i, s in enumerate(statements) if s.startswith("COPY ")]
    assert [statements[i].split()[1] for i in copies] == ["staging_events"] * 2 + ["staging_songs"]
    assert ["GZIP" in statements[i].split() for i in copies] == [False, True, False]
    # One transaction: a single COMMIT, after the last COPY; each COPY's load errors are read
    # right after it: the session's logged since the server's clock read just before it.
    assert statements.count("COMMIT") == 1
    assert statements.index("COMMIT") > copies[-1]
    for i in copies:
        assert statements[i - 1] == CLOCK_QUERY
        assert statements[i + 1] == "SELECT pg_last_copy_count() AS pg_last_copy_count_1"
        assert "FROM sys_load_error_detail WHERE" in statements[i + 2]
    assert statements[copies[1] + 3].startswith("SELECT count(*) AS count_1 FROM staging_events")
    # Each manifest names its own files: plain, then gzipped.
    uri = f"s3://{bucket_name}/raw/log_data/2018/11/2018-11-0"
    entries = [manifest_entries(s3_week, statements[i]) for i in copies]
    assert entries[0] == [uri + "1-events.json", uri + "3-events.json"]
    assert entries[1] == [uri + "2-events.json.gz"]
    assert ".gzip.manifest" in statements[copies[1]]
    assert ".gzip.manifest" not in statements[copies[0]]
    # The song files, the 30 gzipped ones decompressed, went to one COPY combined into one
    # object (tests/test_song_bundles.py): each line the file's own, with its name first.
    assert len(entries[2]) == 1
    assert "/_sparkify/bundles/" in entries[2][0]
    assert sum(f.endswith(".json.gz") for f in files.song_files) == 30
    lines = combined[entries[2][0]].splitlines()
    names = [orjson.loads(line)[SOURCE_FILE_FIELD] for line in lines]
    assert names == files.song_files  # one record per file here
    for name, line in zip(names, lines, strict=True):
        content = stored(s3_week, name)
        content = gzip.decompress(content) if name.endswith(".gz") else content
        prefix = b'{"__sparkify_source_file":' + json.dumps(name).encode() + b","
        assert line == prefix + content.strip()[1:]
    # Rows and rejects of the COPYs add up.
    assert (events.files, events.rows, events.rejects) == (3, 200, 2)
    assert (songs.files, songs.rows, songs.rejects) == (60, 100, 1)


def test_a_failed_gzip_copy_rolls_back_the_plain_one_and_reports_its_own_rejects(
    recorder: fake_redshift.Recorder,  # noqa: F811
    s3_week: S3Source,
) -> None:
    gzip_some_files(s3_week, 2)
    recorder.fail_on = r"^copy staging_events .* gzip"
    block = warehouse()
    files = s3_week.run_files(date(2018, 11, 1), date(2018, 11, 3))
    with (
        pytest.raises(LoadFailed, match="COPY into staging_events failed"),
        block.get_engine().begin() as conn,
    ):
        block.stage_events(conn, s3_week, files.event_files, datetime(2024, 1, 1))
    statements = recorder.executed()
    copies = [i for i, s in enumerate(statements) if s.startswith("COPY ")]
    assert len(copies) == 2
    assert statements[copies[1] + 1] == "ROLLBACK"
    assert "COMMIT" not in statements
    errors = next(s for s in statements[copies[1] :] if "FROM sys_load_error_detail" in s)
    assert "sys_load_error_detail.session_id = pg_backend_pid()" in errors
    assert f"sys_load_error_detail.start_time >= {SERVER_CLOCK}" in errors
