"""S3 sources against a moto server over HTTP."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import boto3

from tasks.source.resolve import resolve_source
from tasks.source.s3 import S3Source


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
