"""The run's song files combined into a few objects before Redshift's COPY
(tasks/warehouse/redshift/song_bundles.py): which files are combined (gzipped ones
decompressed), each line written with its file's name and otherwise byte for byte, the
objects' sizes, where each of their lines came from, the objects in S3 (moto over HTTP) and
gone after their COPY, and COPY's rejects traced back to the song file and line: through the
recording DB-API of tests/fake_redshift.py, and through COPY as tests/redshift_copy.py
emulates it on the embedded PostgreSQL, which loads the field into staging_songs.source_file."""

from __future__ import annotations

import gzip
import json
import re
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from sql import model
from sql.model import SOURCE_FILE_FIELD
from tasks.common.aws import aws_client
from tasks.source.s3 import S3Source, parse_s3_uri
from tasks.warehouse.protocol import Reject
from tasks.warehouse.redshift import song_bundles
from tasks.warehouse.redshift.load_errors import traced_to_origins
from tasks.warehouse.redshift.song_bundles import (
    MAX_BUNDLE_BYTES,
    MIN_BUNDLE_BYTES,
    CopyFiles,
    bundle_count,
    combine_song_files,
    delete_combined,
    gunzipped,
    plan_bundles,
    record_lines,
    with_source_file,
)
from tests import fake_redshift
from tests.postgres_redshift import PostgresRedshiftWarehouse, stand_in
from tests.redshift_copy import parse_copy
from tests.test_redshift import recorder, warehouse  # noqa: F401 - the fixture

MiB = 2**20


def song_line(n: int, padding: int = 0) -> bytes:
    """One song record on one line (padding makes its length vary)."""
    record = {"song_id": f"SO{n:07d}", "title": "t" * padding, "artist_id": "AR1"}
    return orjson.dumps(record)


def tagged(name: str, line: bytes) -> bytes:
    """A non-empty object's line as a combined object holds it: the file's name first."""
    assert line.startswith(b"{")
    assert not line.startswith(b"{}")
    return (
        b'{"__sparkify_source_file":'
        + json.dumps(name, ensure_ascii=False).encode()
        + b","
        + line[1:]
    )


def test_a_file_of_one_object_per_line_gives_its_lines_with_their_numbers() -> None:
    body = b'{"a": 1}\n\n  \t\n{"b": 2}\r\n'
    assert record_lines(body) == [(1, b'{"a": 1}', {"a": 1}), (4, b'{"b": 2}\r', {"b": 2})]
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


@pytest.mark.parametrize(
    ("line", "written"),
    [
        (b'{"a": 1}', b'{"__sparkify_source_file":"s3://b/k.json","a": 1}'),
        (b"{}", b'{"__sparkify_source_file":"s3://b/k.json"}'),
        (b" {\t}\r", b' {"__sparkify_source_file":"s3://b/k.json"\t}\r'),
        (
            b'\t{ "a":{"b":[1,2]} , "c":"}"}\r',
            b'\t{"__sparkify_source_file":"s3://b/k.json", "a":{"b":[1,2]} , "c":"}"}\r',
        ),
    ],
    ids=["object", "empty", "empty_with_blanks", "blanks_and_nesting"],
)
def test_a_line_is_written_with_its_files_name_first_and_its_own_bytes_after(
    line: bytes, written: bytes
) -> None:
    record = orjson.loads(line)
    assert with_source_file(line, record, "s3://b/k.json") == written
    assert orjson.loads(written) == {SOURCE_FILE_FIELD: "s3://b/k.json", **record}


def test_a_files_name_is_escaped_as_json() -> None:
    name = "s3://b/song_data/it's \"\\é\u2028\t.json"
    written = with_source_file(b'{"a": 1}', {"a": 1}, name)
    assert orjson.loads(written) == {SOURCE_FILE_FIELD: name, "a": 1}
    assert written.endswith(b',"a": 1}')
    assert written.count(b"\n") == 0


def test_a_record_with_the_field_of_its_own_gets_the_files_name_once() -> None:
    line = b'{"__sparkify_source_file": "elsewhere", "a": 1.5E3}'
    written = with_source_file(line, orjson.loads(line), "s3://b/k.json")
    assert written.count(b"__sparkify_source_file") == 1
    assert orjson.loads(written) == {SOURCE_FILE_FIELD: "s3://b/k.json", "a": 1500.0}


def test_gzipped_content_is_read_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"".join(song_line(n) + b"\n" for n in range(50))
    assert gunzipped(gzip.compress(body)) == body
    assert gunzipped(gzip.compress(body[:40]) + gzip.compress(body[40:])) == body  # members
    compressed = gzip.compress(body)
    assert gunzipped(compressed[: len(compressed) // 2]) is None  # truncated
    assert gunzipped(compressed[:-4] + b"\0\0\0\0") is None  # wrong length
    assert gunzipped(body) is None  # not gzip at all
    assert (
        gunzipped(b"") == b""
    )  # an empty file is caught before (tasks/warehouse/duckdb/records.py)
    monkeypatch.setattr(song_bundles, "LARGEST_SONG_FILE", len(body) - 1)
    assert gunzipped(compressed) is None  # no song file holds this much


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

    assert plan.alone == []
    assert plan.combined == files
    assert 1 < len(plan.bundles) <= max(16, -(-sum(len(b.body) for b in plan.bundles) // 64_000))
    longest = max(len(tagged(name, songs[name][0])) + 1 for name in songs)
    for bundle in plan.bundles:
        assert 1_000 <= len(bundle.body) <= 64_000, len(bundle.body)
        assert bundle.body.endswith(b"\n")
        assert bundle.body.count(b"\n") == len(bundle.origins)
    sizes = [len(b.body) for b in plan.bundles]
    assert max(sizes) - min(sizes) <= 2 * longest  # close in size
    # Line n of an object is the line its origins name, in the files' order, with the name of
    # that file first and the rest of the line byte for byte.
    lines = [line for bundle in plan.bundles for line in bundle.body.splitlines()]
    origins = [origin for bundle in plan.bundles for origin in bundle.origins]
    assert origins == [(name, 1) for name in songs]
    assert lines == [tagged(name, songs[name][0]) for name, _ in origins]
    assert [orjson.loads(line)[SOURCE_FILE_FIELD] for line in lines] == list(songs)


def test_files_combine_with_their_own_line_numbers_and_odd_ones_stay_alone() -> None:
    pretty = b'{\n "song_id": "P"\n}\n'
    compressed = gzip.compress(b'{"song_id": "G"}\n\n{"song_id": "G2"}\n')
    plan = plan_bundles(
        {
            "s3://b/a.json": b'\n{"song_id": "A"}\n\n{"song_id": "A2"}',  # no final newline
            "s3://b/pretty.json": pretty,
            "s3://b/blank.json": b"\n\n",
            "s3://b/g.json.gz": compressed,
            "s3://b/truncated.json.gz": compressed[:-8],
            "s3://b/pretty.json.GZ": gzip.compress(pretty),
            "s3://b/plain.json.gz": b'{"song_id": "N"}\n',  # named .gz, not gzip data
            "s3://b/c.json": b"{}\n",
        }
    )
    assert plan.alone == [
        "s3://b/pretty.json",
        "s3://b/truncated.json.gz",
        "s3://b/pretty.json.GZ",
        "s3://b/plain.json.gz",
    ]
    assert plan.combined == 4
    [bundle] = plan.bundles
    assert bundle.body == (
        b'{"__sparkify_source_file":"s3://b/a.json","song_id": "A"}\n'
        b'{"__sparkify_source_file":"s3://b/a.json","song_id": "A2"}\n'
        b'{"__sparkify_source_file":"s3://b/g.json.gz","song_id": "G"}\n'
        b'{"__sparkify_source_file":"s3://b/g.json.gz","song_id": "G2"}\n'
        b'{"__sparkify_source_file":"s3://b/c.json"}\n'
    )
    assert bundle.origins == [
        ("s3://b/a.json", 2),
        ("s3://b/a.json", 4),
        ("s3://b/g.json.gz", 1),
        ("s3://b/g.json.gz", 3),
        ("s3://b/c.json", 1),
    ]
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


@pytest.fixture
def song_bucket(aws_credentials, bucket_name: str, tmp_path: Path) -> S3Source:
    """A source at s3://<bucket>/raw, its bucket created and empty."""
    source = S3Source(bucket_name, "raw", aws_credentials, cache_dir=tmp_path / "cache")
    source.client().create_bucket(Bucket=bucket_name)
    return source


@pytest.fixture
def songs_on_s3(song_bucket: S3Source, bucket_name: str) -> S3Source:
    """Seven song files under s3://<bucket>/raw/song_data/: four plain, one gzipped, one
    pretty-printed and one truncated gzip file."""
    source = song_bucket
    client = source.client()
    for n in range(4):
        client.put_object(Bucket=bucket_name, Key=f"raw/song_data/TR{n}.json", Body=song_line(n))
    zipped = gzip.compress(song_line(4))
    client.put_object(Bucket=bucket_name, Key="raw/song_data/TR4.json.gz", Body=zipped)
    pretty = json.dumps({"song_id": "SOPRETTY"}, indent=2).encode()
    client.put_object(Bucket=bucket_name, Key="raw/song_data/TRP.json", Body=pretty)
    client.put_object(Bucket=bucket_name, Key="raw/song_data/TRX.json.gz", Body=zipped[:-6])
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
    plain, zipped = combine_song_files(songs_on_s3, files, prefix)

    [combined] = list(plain.origins)
    assert combined == f"s3://{songs_on_s3.bucket}/{prefix}.0001.json"
    assert [uri.rsplit("/", 1)[-1] for uri in files] == [
        *("TR0.json", "TR1.json", "TR2.json", "TR3.json"),
        *("TR4.json.gz", "TRP.json", "TRX.json.gz"),
    ]
    # The plain and the gzipped song files combined; what is left alone goes to COPY as itself,
    # the gzipped file that does not decompress by a COPY with GZIP.
    assert (plain.files, plain.gzipped, plain.combined) == ([combined, files[5]], False, 5)
    assert (zipped.files, zipped.gzipped, zipped.origins) == ([files[6]], True, {})
    assert plain.describe() == "5 files in 1 combined objects and 1 files as they are by one COPY"
    assert zipped.describe() == "1 gzipped files by one COPY"
    assert plain.run_files() + zipped.run_files() == len(files)
    body = songs_on_s3.client().get_object(Bucket=songs_on_s3.bucket, Key=f"{prefix}.0001.json")
    assert body["Body"].read() == b"".join(tagged(files[n], song_line(n)) + b"\n" for n in range(5))
    assert plain.origins[combined] == [(uri, 1) for uri in files[:5]]

    delete_combined(songs_on_s3, plain)
    assert keys_under(songs_on_s3, "_sparkify/bundles") == []
    assert len(keys_under(songs_on_s3, "song_data")) == 7  # the song files themselves stay
    assert combine_song_files(songs_on_s3, [], prefix) == []


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

    # One COPY: the combined object with the plain file left alone. The truncated gzip file
    # is a reject before it (a COPY with GZIP would fail whole on it).
    copies = [s for s in recorder.executed() if s.startswith("COPY")]
    assert ["GZIP" in copy.split() for copy in copies] == [False]
    [(plain_uri, plain)] = seen.items()
    assert plain_uri.endswith("/_sparkify/manifests/20240101T000000000000/staging_songs.manifest")
    assert re.fullmatch(
        r".*/_sparkify/bundles/20240101T000000000000/staging_songs\.0001\.json", plain[0]
    )
    assert plain[1:] == [files[5]]
    # Line 3 of the combined object is the first line of the third song file.
    assert [(r.source_file, r.line_number) for r in report.reject_samples] == [
        (files[6], 0),
        (files[2], 1),
    ]
    assert report.reject_samples[0].reason.startswith("corrupt gzip data: ")
    assert (report.files, report.rows, report.rejects) == (7, 3, 2)
    # The combined objects are gone once their COPY ran; the manifests stay, as before.
    assert keys_under(songs_on_s3, "_sparkify/bundles") == []
    assert len(keys_under(songs_on_s3, "_sparkify/manifests")) == 1
    # Once loaded (and checked), the staging table's statistics are updated, in the transaction.
    statements = recorder.executed()
    analyze = statements.index("analyze staging_songs")
    assert analyze > max(i for i, s in enumerate(statements) if s.startswith("COPY"))
    [kept] = statements[analyze + 1 : statements.index("COMMIT")]  # one multi-row INSERT
    assert kept.startswith("INSERT INTO load_rejects")
    assert kept.count("%s") == 2 * len(model.load_rejects.columns)


def test_bounds_are_redshifts_advice() -> None:
    # "from 1 MB to 1 GB after compression" for files COPY cannot split, such as JSON.
    assert (MiB, 64 * MiB) == (MIN_BUNDLE_BYTES, MAX_BUNDLE_BYTES)


# COPY as tests/redshift_copy.py emulates it, on the embedded PostgreSQL: what staging_songs and
# the load-error log get from combined objects and from files left alone.


def song(song_id: str, **changes: Any) -> dict[str, Any]:
    """A song file's whole record."""
    return {
        **{"num_songs": 1, "artist_id": "AR" + song_id, "artist_latitude": 64.1},
        **{"artist_longitude": -21.9, "artist_location": "Reykjavík", "artist_name": "Sigur Rós"},
        **{"song_id": song_id, "title": "Title " + song_id, "duration": 201.5, "year": 1999},
        **changes,
    }


def read_s3(client: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def copies_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, bytes]]]:
    """Each COPY statement the stand-in runs, with the bytes of each object its manifest names,
    read when the COPY runs (the combined objects are deleted after it)."""
    seen: list[tuple[str, dict[str, bytes]]] = []
    copy = PostgresRedshiftWarehouse.copy

    def spy(self: PostgresRedshiftWarehouse, conn: Any, statement: str) -> None:
        client = aws_client(self.aws_credentials, "s3")
        entries = json.loads(read_s3(client, parse_copy(statement).source))["entries"]
        seen.append((statement, {e["url"]: read_s3(client, e["url"]) for e in entries}))
        copy(self, conn, statement)

    monkeypatch.setattr(PostgresRedshiftWarehouse, "copy", spy)
    return seen


@pytest.fixture
def song_warehouse(postgres_database: str, aws_credentials) -> PostgresRedshiftWarehouse:
    """The PostgreSQL stand-in for Redshift, its tables created."""
    block = stand_in(postgres_database, aws_credentials)
    with block.get_engine().begin() as conn:
        model.metadata.create_all(conn)
    return block


def put_songs(source: S3Source, bodies: dict[str, bytes]) -> list[str]:
    """Song files under song_data/ of the source; their URIs, as the run lists them."""
    client = source.client()
    for name, body in bodies.items():
        client.put_object(Bucket=source.bucket, Key=source.key("song_data", name), Body=body)
    return sorted(source.listing("song_data"))


@pytest.mark.postgres
def test_copy_loads_each_combined_record_with_its_file_and_rejects_files_left_alone(
    song_warehouse: PostgresRedshiftWarehouse,
    song_bucket: S3Source,
    copies_seen: list[tuple[str, dict[str, bytes]]],
) -> None:
    source, block = song_bucket, song_warehouse
    line = {n: orjson.dumps(song(f"SO{n}")) for n in range(4)}
    bad_year = orjson.dumps(song("SOBAD", year="x"))
    pretty = json.dumps(song("SOPRETTY"), indent=1).encode()
    last = pretty.count(b"\n") + 1  # the line COPY reads the object to
    files = put_songs(
        source,
        {
            "A/TRA.json": line[0] + b"\n\n" + bad_year + b"\n",
            "B/TRB.json.gz": gzip.compress(line[1] + b"\n" + line[2]),
            'C/it\'s "é".json': line[3],
            "P/TRP.json": pretty,
            "Q/TRQ.json.gz": gzip.compress(pretty.replace(b"SOPRETTY", b"SOPRETTYGZ")),
        },
    )
    a, b, c, p, q = files
    with block.get_engine().begin() as conn:
        report = block.stage_songs(conn, source, files, datetime(2024, 1, 1))
        staged = conn.execute(
            select(model.staging_songs.c.source_file, model.staging_songs.c.song_id)
        ).all()
        kept = conn.execute(
            select(model.load_rejects.c.source_file, model.load_rejects.c.line_number)
        ).all()

    # The combined object, as COPY read it: every line with its file's name first and the
    # file's own bytes after, the gzipped file's decompressed; the pretty-printed files as
    # themselves, the gzipped one by a COPY with GZIP.
    [(plain_copy, plain), (gzip_copy, zipped)] = copies_seen
    assert "GZIP" not in plain_copy.split()
    assert "GZIP" in gzip_copy.split()
    [combined, alone] = plain
    assert plain[alone] == pretty
    assert list(zipped) == [q]
    assert plain[combined] == b"".join(
        tagged(name, record) + b"\n"
        for name, record in [(a, line[0]), (a, bad_year), (b, line[1]), (b, line[2]), (c, line[3])]
    )
    # Each record COPY loaded has its file in source_file; the bad year is rejected against
    # its file and line; each record of a file left alone, lacking the field, is rejected for
    # the NOT NULL source_file, against that file and the line COPY read it to.
    assert sorted(staged) == [(a, "SO0"), (b, "SO1"), (b, "SO2"), (c, "SO3")]
    assert (report.files, report.rows, report.rejects) == (5, 4, 3)
    assert [(r.source_file, r.line_number, r.reason) for r in report.reject_samples] == [
        (a, 3, "year: Data contained a value outside of the expected range of 0-9. Value 'x'"),
        (p, last, "source_file: A field specified as NOT NULL contained no data."),
        (q, last, "source_file: A field specified as NOT NULL contained no data."),
    ]
    assert sorted(kept) == [(a, 3), (p, last), (q, last)]


@pytest.mark.postgres
def test_a_gzipped_song_file_that_does_not_decompress_is_a_reject_not_a_failed_copy(
    song_warehouse: PostgresRedshiftWarehouse,
    song_bucket: S3Source,
    copies_seen: list[tuple[str, dict[str, bytes]]],
) -> None:
    source, block = song_bucket, song_warehouse
    compressed = gzip.compress(orjson.dumps(song("SOX")))
    files = put_songs(
        source,
        {"TRA.json": orjson.dumps(song("SOA")), "TRX.json.gz": compressed[: len(compressed) // 2]},
    )
    with block.get_engine().begin() as conn:
        report = block.stage_songs(conn, source, files, datetime(2024, 1, 1))
    # Found before COPY, whose GZIP would fail the whole load on it: a reject of the whole
    # file (a song file is one record), and the other song loads.
    [(copy, _)] = copies_seen
    assert "GZIP" not in copy.split()
    assert (report.rows, report.rejects) == (1, 1)
    [reject] = report.reject_samples
    assert (reject.source_file, reject.line_number) == (files[1], 0)
    assert reject.reason.startswith("corrupt gzip data: ")


def test_combining_many_files_holds_a_bounded_part_of_them_in_memory(
    song_bucket: S3Source,
) -> None:
    # Files of a few long lines, some 48 MB in all: with the bounds of production they fill the
    # goal's number of objects. Combining them held about three times that before.
    source = song_bucket
    lines = {
        f"{n:03d}/TR{n:05d}.json": [song_line(n * 10 + i, 16_000 + n % 7) for i in range(10)]
        for n in range(300)
    }
    files = put_songs(source, {name: b"\n".join(rows) + b"\n" for name, rows in lines.items()})
    total = sum(len(line) + 1 for rows in lines.values() for line in rows)
    source.local_copies(files)  # cached, the client made: what is measured is the combining
    prefix = source.key("_sparkify/bundles/20240101T000000000000/staging_songs")

    tracemalloc.start()
    try:
        [copied] = combine_song_files(source, files, prefix)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(copied.origins) == 16
    # Chunks of the object being uploaded and the lines' origins, not the files' bytes (a
    # quarter of them leaves room for the HTTP client's buffers; the files were held thrice).
    assert peak < total // 4, (peak, total)
    # The objects hold every line, in the files' order, each with its file's name first.
    client = source.client()
    bodies = b"".join(read_s3(client, uri) for uri in copied.origins)
    assert bodies == b"".join(
        tagged(uri, line) + b"\n"
        for uri, rows in zip(files, lines.values(), strict=True)
        for line in rows
    )
    assert [o for origins in copied.origins.values() for o in origins] == [
        (uri, i) for uri in files for i in range(1, 11)
    ]
