"""S3 sources against a moto server over HTTP."""

from __future__ import annotations

import gzip
import pickle
from dataclasses import replace
from datetime import date
from pathlib import Path

import boto3
import pytest

import tasks.source.s3
from tasks.common.errors import BadSource
from tasks.source.files import SkippedFile, SourceLayoutError
from tasks.source.resolve import check_source, resolve_source
from tasks.source.s3 import S3Source, upload_tree


def test_run_files_select_days_by_name(s3_week: S3Source) -> None:
    files = s3_week.run_files(date(2018, 11, 2), date(2018, 11, 3))
    assert files.event_files == [
        f"s3://{s3_week.bucket}/raw/log_data/2018/11/2018-11-02-events.json",
        f"s3://{s3_week.bucket}/raw/log_data/2018/11/2018-11-03-events.json",
    ]
    assert len(files.song_files) == 60
    assert all(f.startswith(f"s3://{s3_week.bucket}/raw/song_data/") for f in files.song_files)


def test_local_copies_downloads_once_and_refreshes_changed_objects(
    s3_week: S3Source, tmp_path: Path, aws_credentials
) -> None:
    source = S3Source(s3_week.bucket, "raw", aws_credentials, cache_dir=tmp_path / "cache")
    files = source.run_files(date(2018, 11, 1), date(2018, 11, 1)).event_files
    local = source.local_copies(files)
    path = Path(local[files[0]])
    assert path.is_relative_to(tmp_path / "cache")
    original = path.read_bytes()
    key = files[0].removeprefix(f"s3://{source.bucket}/")
    source.client().put_object(Bucket=source.bucket, Key=key, Body=original + b"\n")
    again = S3Source(source.bucket, "raw", aws_credentials, cache_dir=tmp_path / "cache")
    again.run_files(date(2018, 11, 1), date(2018, 11, 1))
    assert Path(again.local_copies(files)[files[0]]).read_bytes() == original + b"\n"


def test_small_and_large_objects_go_up_and_come_back_byte_for_byte(
    aws_credentials, bucket_name: str, week_source: Path, tmp_path: Path, monkeypatch
) -> None:
    """Objects below the single-request size move in one PUT or GET, larger ones through
    boto3's transfer manager: with the limit between the song and the event files, both ways
    are taken, and every copy is the file uploaded."""
    local = sorted(p for p in week_source.rglob("*") if p.is_file())
    sizes = sorted(p.stat().st_size for p in local)
    limit = (sizes[0] + sizes[-1]) // 2
    assert sizes[0] < limit <= sizes[-1]
    monkeypatch.setattr(tasks.source.s3, "SINGLE_REQUEST_BYTES", limit)
    target = S3Source(bucket_name, "raw", aws_credentials, cache_dir=tmp_path / "cache")
    target.client().create_bucket(Bucket=bucket_name)
    assert upload_tree.fn(str(week_source), target) == len(local)

    files = target.run_files(None, None)
    copies = target.local_copies([*files.event_files, *files.song_files])
    assert len(copies) == len(local)
    for uri, copy in copies.items():
        original = week_source / uri.removeprefix(f"s3://{bucket_name}/raw/")
        assert Path(copy).read_bytes() == original.read_bytes(), uri


def test_default_chain_reaches_the_endpoint_from_the_environment(
    aws_env: str, bucket_name: str
) -> None:
    boto3.client("s3").create_bucket(Bucket=bucket_name)
    boto3.client("s3").put_object(
        Bucket=bucket_name, Key="p/log_data/2018/11/2018-11-05-events.json", Body=b"{}"
    )
    source = resolve_source(f"s3://{bucket_name}/p")
    assert isinstance(source, S3Source)
    assert source.run_files(None, None).event_files == [
        f"s3://{bucket_name}/p/log_data/2018/11/2018-11-05-events.json"
    ]


def test_gzipped_and_upper_case_objects_are_read_the_rest_skipped_with_reasons(
    s3_week: S3Source, bucket_name: str
) -> None:
    client = s3_week.client()
    day = "raw/log_data/2018/11/2018-11-02-events.json"
    body = client.get_object(Bucket=bucket_name, Key=day)["Body"].read()
    client.delete_object(Bucket=bucket_name, Key=day)
    extra = {
        day + ".gz": gzip.compress(body),
        "raw/log_data/2018/11/2018-11-07-events.JSON": b"{}",
        "raw/log_data/2018/11/": b"",  # a folder marker, as the S3 console makes them
        "raw/log_data/2018/11/2018-11-04-events.json.zip": b"PK",
        "raw/log_data/2018/11/summary.json": b"{}",
        "raw/song_data/Z/Z/Z/TRZZZ.json.gz": gzip.compress(b"{}"),
        "raw/song_data/Z/Z/Z/._TRZZZ.json": b"",
    }
    for key, content in extra.items():
        client.put_object(Bucket=bucket_name, Key=key, Body=content)
    fresh = S3Source(bucket_name, "raw", s3_week.credentials)
    files = fresh.run_files(date(2018, 11, 2), date(2018, 11, 2))
    uri = f"s3://{bucket_name}/"
    assert files.event_files == [uri + "raw/log_data/2018/11/2018-11-02-events.json.gz"]
    assert uri + "raw/song_data/Z/Z/Z/TRZZZ.json.gz" in files.song_files
    assert len(files.song_files) == 61
    assert [(s.name.removeprefix(uri), s.reason) for s in files.skipped] == [
        ("raw/log_data/2018/11/2018-11-04-events.json.zip", "not a .json or .json.gz file"),
        ("raw/log_data/2018/11/summary.json", "name is not YYYY-MM-DD-events.json (or .json.gz)"),
        ("raw/song_data/Z/Z/Z/._TRZZZ.json", "hidden file or folder"),
    ]
    assert files.missing_days == []
    later = fresh.run_files(date(2018, 11, 7), date(2018, 11, 8))
    assert later.event_files == [uri + "raw/log_data/2018/11/2018-11-07-events.JSON"]
    assert later.missing_days == [date(2018, 11, 8)]


def test_a_prefix_without_log_data_is_a_clear_error(aws_credentials, bucket_name: str) -> None:
    source = S3Source(bucket_name, "raw", aws_credentials)
    source.client().create_bucket(Bucket=bucket_name)
    source.client().put_object(Bucket=bucket_name, Key="raw/song_data/A/TRA.json", Body=b"{}")
    source.client().put_object(Bucket=bucket_name, Key="raw/log_data.json", Body=b"{}")
    with pytest.raises(SourceLayoutError, match=rf"^s3://{bucket_name}/raw has no log_data/ "):
        source.run_files(None, None)
    # A folder made in the S3 console (a marker object) is there, though empty.
    source.client().put_object(Bucket=bucket_name, Key="raw/log_data/", Body=b"")
    assert source.run_files(None, None).event_files == []


def test_local_copies_of_gzipped_objects_keep_the_gz_suffix(
    aws_credentials, bucket_name: str, tmp_path: Path
) -> None:
    source = S3Source(bucket_name, "p", aws_credentials, cache_dir=tmp_path / "cache")
    source.client().create_bucket(Bucket=bucket_name)
    content = gzip.compress(b'{"ts": 1}\n')
    for key in ("p/log_data/2018-11-05-events.json.gz", "p/log_data/2018-11-06-events.JSON.GZ"):
        source.client().put_object(Bucket=bucket_name, Key=key, Body=content)
    files = source.run_files(None, None).event_files
    local = source.local_copies(files)
    assert [Path(local[f]).name for f in files] == [
        "2018-11-05-events.json.gz",
        "2018-11-06-events.JSON.GZ",
    ]
    assert all(Path(path).read_bytes() == content for path in local.values())


def test_a_source_keeps_its_client_and_a_copy_carries_none(aws_env: str) -> None:
    source = S3Source("any-bucket", "raw")
    client = source.client()
    assert source.client() is client
    copied = pickle.loads(pickle.dumps(source))  # as Prefect copies task parameters
    assert copied == source
    assert copied._clients == {}
    assert copied.client() is client  # the process's client for these credentials


def test_a_client_is_made_once_for_the_same_credentials_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect_aws import AwsCredentials

    from tasks.common.aws import aws_client

    def credentials(secret: str) -> AwsCredentials:
        return AwsCredentials(
            aws_access_key_id="key", aws_secret_access_key=secret, region_name="us-east-1"
        )

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    first = aws_client(credentials("one"), "s3")
    assert aws_client(credentials("one"), "s3") is first
    assert aws_client(credentials("two"), "s3") is not first  # another secret, another client
    assert aws_client(credentials("one"), "redshift") is not first
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    moved = aws_client(credentials("one"), "s3")
    assert moved is not first
    assert moved.meta.endpoint_url == "http://127.0.0.1:2"


@pytest.mark.usefixtures("prefect_server")
def test_blocks_saved_under_two_names_with_the_same_settings_share_a_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uuid

    from prefect_aws import AwsClientParameters, AwsCredentials

    from tasks.common.aws import aws_client

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    names = [f"shared-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    settings = {
        "aws_access_key_id": "key",
        "aws_secret_access_key": "s",
        "region_name": "eu-west-1",
    }
    AwsCredentials(**settings).save(names[0])
    AwsCredentials(**settings).save(names[1])
    elsewhere = AwsClientParameters(endpoint_url="http://127.0.0.1:3")
    AwsCredentials(**settings, aws_client_parameters=elsewhere).save(names[2])
    first, second, third = (aws_client(AwsCredentials.load(name), "s3") for name in names)
    assert second is first
    assert third is not first  # a nested setting differs
    assert third.meta.endpoint_url == "http://127.0.0.1:3"


def test_no_key_is_copied_outside_the_cache(s3_week: S3Source, tmp_path: Path) -> None:
    """A key with a `..` segment under log_data/ is skipped (a hidden name), never copied; a
    prefix with one is refused before any run; a copy that would land outside the cache is
    refused whatever asked for it."""
    client = s3_week.client()
    escaping = "raw/log_data/../../../escaped/2018-11-01-events.json"
    client.put_object(Bucket=s3_week.bucket, Key=escaping, Body=b"{}\n")
    source = replace(s3_week, cache_dir=tmp_path / "cache")
    files = source.run_files(None, None)
    uri = f"s3://{s3_week.bucket}/{escaping}"
    assert uri not in files.event_files
    assert SkippedFile(uri, "hidden file or folder") in files.skipped
    source.local_copies(files.event_files[:1])
    with pytest.raises(ValueError, match="outside the cache"):
        source.local_copies([uri])
    assert [p for p in tmp_path.rglob("*") if "cache" not in p.relative_to(tmp_path).parts] == []
    with pytest.raises(BadSource, match=r"holds a \. or \.\. segment"):
        check_source(f"s3://{s3_week.bucket}/raw/../other")
