"""The run's song files combined into a few objects before Redshift's COPY
(tasks/warehouse/song_bundles.py): which files are combined, the objects' sizes, where each of
their lines came from, the objects in S3 (moto over HTTP) and gone after their COPY, and COPY's
rejects traced back to the song file and line (through the recording DB-API of
tests/fake_redshift.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tasks.source.s3 import S3Source
from tasks.warehouse import song_bundles
from tasks.warehouse.base import Reject
from tasks.warehouse.load_errors import traced_to_origins
from tasks.warehouse.song_bundles import (
    MAX_BUNDLE_BYTES,
    MIN_BUNDLE_BYTES,
    CopyFiles,
    bundle_count,
    combine_song_files,
    delete_combined,
    plan_bundles,
    record_lines,
)
from tests import fake_redshift
from tests.test_redshift import recorder, warehouse  # noqa: F401 - the fixture

MiB = 2**20


def song_line(n: int, padding: int = 0) -> bytes:
    """One song record on one line (padding makes its length vary)."""
    record = {"song_id": f"SO{n:07d}", "title": "t" * padding, "artist_id": "AR1"}
    return orjson.dumps(record)


def test_a_file_of_one_object_per_line_gives_its_lines_with_their_numbers() -> None:
    body = b'{"a": 1}\n\n  \t\n{"b": 2}\r\n'
    assert record_lines(body) == [(1, b'{"a": 1}'), (4, b'{"b": 2}\r')]
    assert record_lines(b"\n \n") == []  # blank lines hold no record, as everywhere


@pytest.mark.parametrize(
    "body",
    [
        b'{\n  "song_id": "SO1"\n}\n',  # one object over several lines
        b"not json\n",
        b'{"a": 1} {"b": 2}\n',  # two objects on one line
        b"[1, 2]\n",  # JSON, but no object
        b'{"a": "\xff"}\n',  # not UTF-8
        b'\0\0{"a": 1}\n',  # binary
        b'{"a": "' + b"x" * MIN_BUNDLE_BYTES + b'"}\n',  # no song record is this long
    ],
    ids=["multi_line", "malformed", "two_objects", "not_object", "bad_utf8", "binary", "long"],
)
def test_any_other_file_is_left_for_copy_to_read_as_itself(body: bytes) -> None:
    assert record_lines(body) is None


def test_the_number_of_objects_follows_redshifts_file_size_advice() -> None:
    line = 300
    assert bundle_count(200_000, line) == 1  # under 1 MB: one object, smaller than advised
    assert bundle_count(4 * MiB, line) == 3  # as many as keep 1 MB each
    assert bundle_count(100 * MiB, line) == 16  # the goal, 6+ MB each
    assert bundle_count(2048 * MiB, line) == 33  # more than the goal, to stay within 64 MiB


def plan_of(files: dict[str, list[bytes]]) -> song_bundles.BundlePlan:
    return plan_bundles({name: b"\n".join(lines) + b"\n" for name, lines in files.items()})


@pytest.mark.parametrize("files", [3_000, 20_000])
def test_objects_hold_every_line_in_order_and_stay_within_the_bounds(
    monkeypatch: pytest.MonkeyPatch, files: int
) -> None:
    # Bounds a thousand times smaller, so that a few thousand lines make many objects.
    monkeypatch.setattr(song_bundles, "MIN_BUNDLE_BYTES", 1_000)
    monkeypatch.setattr(song_bundles, "MAX_BUNDLE_BYTES", 64_000)
    songs = {f"s3://b/song_data/TR{n:05d}.json": [song_line(n, n % 97)] for n in range(files)}
    plan = plan_of(songs)

    assert plan.alone == [] and plan.combined == files
    assert 1 < len(plan.bundles) <= max(16, -(-sum(len(b.body) for b in plan.bundles) // 64_000))
    longest = max(len(line) + 1 for lines in songs.values() for line in lines)
    for bundle in plan.bundles:
        assert 1_000 <= len(bundle.body) <= 64_000, len(bundle.body)
        assert bundle.body.endswith(b"\n") and bundle.body.count(b"\n") == len(bundle.origins)
    sizes = [len(b.body) for b in plan.bundles]
    assert max(sizes) - min(sizes) <= 2 * longest  # close in size
    # Line n of an object is the line its origins name, byte for byte, in the files' order.
    lines = [line for bundle in plan.bundles for line in bundle.body.splitlines()]
    origins = [origin for bundle in plan.bundles for origin in bundle.origins]
    assert origins == [(name, 1) for name in songs]
    assert lines == [songs[name][0] for name, _ in origins]


def test_files_combine_with_their_own_line_numbers_and_odd_ones_stay_alone() -> None:
    plan = plan_bundles(
        {
            "s3://b/a.json": b'\n{"song_id": "A"}\n\n{"song_id": "A2"}',  # no final newline
            "s3://b/pretty.json": b'{\n "song_id": "P"\n}\n',
            "s3://b/blank.json": b"\n\n",
            "s3://b/c.json": b'{"song_id": "C"}\n',
        }
    )
    assert plan.alone == ["s3://b/pretty.json"] and plan.combined == 3
    [bundle] = plan.bundles
    assert bundle.body == b'{"song_id": "A"}\n{"song_id": "A2"}\n{"song_id": "C"}\n'
    assert bundle.origins == [("s3://b/a.json", 2), ("s3://b/a.json", 4), ("s3://b/c.json", 1)]
    assert plan_bundles({"s3://b/blank.json": b" \n"}) == song_bundles.BundlePlan([], [], 1)


def test_rejects_of_combined_objects_name_the_song_file_and_line() -> None:
    origins = {"s3://b/_sparkify/bundles/x.0001.json": [("s3://b/z.json", 1), ("s3://b/a.json", 3)]}
    rejects = [
        Reject("s3://b/_sparkify/bundles/x.0001.json", 1, "title: missing", '{"x": 1}'),
        Reject("s3://b/_sparkify/bundles/x.0001.json", 2, "year: bad"),
        Reject("s3://b/alone.json", 5, "Invalid JSON."),  # a file COPY read as itself
        Reject("s3://b/_sparkify/bundles/x.0001.json", 9, "beyond the object's lines"),
    ]
    assert traced_to_origins(rejects, origins) == [
        Reject("s3://b/_sparkify/bundles/x.0001.json", 9, "beyond the object's lines"),
        Reject("s3://b/a.json", 3, "year: bad"),
        Reject("s3://b/alone.json", 5, "Invalid JSON."),
        Reject("s3://b/z.json", 1, "title: missing", '{"x": 1}'),
    ]
    assert traced_to_origins(rejects[2:3], {}) == rejects[2:3]


@pytest.fixture()
def songs_on_s3(aws_credentials, bucket_name: str, tmp_path: Path) -> S3Source:
    """Five song files (one of them pretty-printed) under s3://<bucket>/raw/song_data/."""
    source = S3Source(bucket_name, "raw", aws_credentials, cache_dir=tmp_path / "cache")
    client = source.client()
    client.create_bucket(Bucket=bucket_name)
    for n in range(4):
        client.put_object(Bucket=bucket_name, Key=f"raw/song_data/TR{n}.json", Body=song_line(n))
    pretty = json.dumps({"song_id": "SOPRETTY"}, indent=2).encode()
    client.put_object(Bucket=bucket_name, Key="raw/song_data/TRP.json", Body=pretty)
    return source


def keys_under(source: S3Source, prefix: str) -> list[str]:
    pages = (
        source.client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=source.bucket, Prefix=source.key(prefix))
    )
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_combined_objects_are_written_under_the_control_prefix_and_deleted(
    songs_on_s3: S3Source,
) -> None:
    files = sorted(songs_on_s3.listing("song_data"))  # notes the ETags the cache checks
    prefix = songs_on_s3.key("_sparkify/bundles/20240101T000000000000/staging_songs")
    copied = combine_song_files(songs_on_s3, files, prefix)

    [combined] = list(copied.origins)
    assert combined == f"s3://{songs_on_s3.bucket}/{prefix}.0001.json"
    assert copied.files == [combined, files[-1]]  # the pretty-printed file as itself
    assert copied.combined == 4
    assert copied.describe() == "4 files in 1 combined objects and 1 files as they are by one COPY"
    body = songs_on_s3.client().get_object(Bucket=songs_on_s3.bucket, Key=f"{prefix}.0001.json")
    assert body["Body"].read() == b"".join(song_line(n) + b"\n" for n in range(4))
    assert copied.origins[combined] == [(uri, 1) for uri in files[:4]]

    delete_combined(songs_on_s3, copied)
    assert keys_under(songs_on_s3, "_sparkify/bundles") == []
    assert len(keys_under(songs_on_s3, "song_data")) == 5  # the song files themselves stay


def test_a_failed_delete_is_logged_not_raised(
    songs_on_s3: S3Source, caplog: pytest.LogCaptureFixture
) -> None:
    gone = S3Source("no-such-bucket-" + songs_on_s3.bucket, "raw", songs_on_s3.credentials)
    delete_combined(gone, CopyFiles(["s3://x/k.json"], {"s3://x/k.json": [("s3://x/a", 1)]}))
    assert "could not delete 1 combined song objects" in caplog.text


def test_copy_reads_the_combined_objects_and_its_rejects_name_the_song_files(
    recorder: fake_redshift.Recorder,  # noqa: F811
    songs_on_s3: S3Source,
) -> None:
    client = songs_on_s3.client()
    seen: dict[str, list[str]] = {}

    def load_errors():
        # What Redshift logs for line 3 of the first object the last COPY's manifest names.
        copy = next(s for s in reversed(recorder.statements) if s.startswith("COPY"))
        uri = re.search(r"FROM '([^']+)'", copy).group(1)
        body = client.get_object(Bucket=songs_on_s3.bucket, Key=uri.split("/", 3)[3])["Body"]
        entries = [e["url"] for e in json.loads(body.read())["entries"]]
        seen[uri] = entries
        row = (entries[0], 3, "title", "Missing data for not-null field")
        return ["file_name", "line_number", "column_name", "error_message"], [row]

    recorder.answer(r"pg_last_copy_id", ["pg_last_copy_id"], [(5,)])
    recorder.answer(r"pg_last_copy_count", ["pg_last_copy_count"], [(3,)])
    recorder.answers.append((r"from sys_load_error_detail", load_errors))
    files = sorted(songs_on_s3.listing("song_data"))
    block = warehouse()
    with block.get_engine().begin() as conn:
        report = block.stage_songs(conn, songs_on_s3, files, datetime(2024, 1, 1))

    [(manifest_uri, entries)] = seen.items()
    assert "/_sparkify/manifests/20240101T000000000000/staging_songs.manifest" in manifest_uri
    assert re.fullmatch(
        r".*/_sparkify/bundles/20240101T000000000000/staging_songs\.0001\.json", entries[0]
    )
    assert entries[1:] == [files[-1]]
    # Line 3 of the combined object is the first line of the third song file.
    assert [(r.source_file, r.line_number) for r in report.reject_samples] == [(files[2], 1)]
    assert (report.files, report.rows, report.rejects) == (5, 3, 1)
    # The combined objects are gone once their COPY ran; the manifest stays, as before.
    assert keys_under(songs_on_s3, "_sparkify/bundles") == []
    assert keys_under(songs_on_s3, "_sparkify/manifests")
    # Once loaded (and checked), the staging table's statistics are updated, in the transaction.
    statements = recorder.executed()
    analyze = statements.index("analyze staging_songs")
    assert analyze > max(i for i, s in enumerate(statements) if s.startswith("COPY"))
    assert statements[analyze + 1].startswith("INSERT INTO load_rejects")
    assert statements[analyze + 2] == "COMMIT"


def test_bounds_are_redshifts_advice() -> None:
    # "from 1 MB to 1 GB after compression" for files COPY cannot split, such as JSON.
    assert (MIN_BUNDLE_BYTES, MAX_BUNDLE_BYTES) == (MiB, 64 * MiB)
