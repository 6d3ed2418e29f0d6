"""The embedded warehouse loading from S3 (a moto server over HTTP) through the blocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect_aws import S3Bucket

from flows.etl import etl
from tasks.source.s3 import S3Source
from tests.conftest import upload_tree
from tests.helpers import query, snapshot

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_duckdb_from_s3_matches_the_same_files_from_disk(
    aws_credentials, bucket_name: str, week_source: Path, tmp_path: Path, cache_dir: Path
) -> None:
    client = S3Source(bucket_name, "", aws_credentials).client()
    client.create_bucket(Bucket=bucket_name)
    upload_tree(client, bucket_name, week_source, "sparkify/raw")
    aws_credentials.save("moto-s3", overwrite=True)

    from_disk = tmp_path / "disk.duckdb"
    etl(str(week_source), str(from_disk))
    from_s3 = tmp_path / "s3.duckdb"
    summary = etl(f"s3://{bucket_name}/sparkify/raw", str(from_s3), aws_credentials="moto-s3")

    assert snapshot(from_s3) == snapshot(from_disk)
    assert summary["event_files"] == 6
    assert summary["song_files"] == 60
    assert any(cache_dir.rglob("*-events.json"))

    # The same prefix named by a saved prefect-aws S3Bucket block.
    S3Bucket(
        bucket_name=bucket_name, bucket_folder="sparkify/raw", credentials=aws_credentials
    ).save("raw-data", overwrite=True)
    from_block = tmp_path / "block.duckdb"
    etl("s3-bucket/raw-data", str(from_block))
    assert snapshot(from_block) == snapshot(from_disk)


def test_rejects_of_s3_files_name_the_object(
    aws_credentials, bucket_name: str, tmp_path: Path
) -> None:
    client = S3Source(bucket_name, "", aws_credentials).client()
    client.create_bucket(Bucket=bucket_name)
    key = "p/log_data/2018/11/2018-11-01-events.json"
    good = (
        '{"artist":null,"auth":"Logged In","firstName":"Ana","gender":"F","itemInSession":0,'
        '"lastName":"Lima","length":null,"level":"paid","location":"Porto","method":"GET",'
        '"page":"Home","registration":1.5E12,"sessionId":3,"song":null,"status":200,'
        '"ts":1541030455924,"userAgent":"x","userId":"8"}'
    )
    client.put_object(Bucket=bucket_name, Key=key, Body=f"{good}\nnot json\n".encode())
    aws_credentials.save("moto-s3", overwrite=True)
    db = tmp_path / "wh.duckdb"
    etl(f"s3://{bucket_name}/p", str(db), aws_credentials="moto-s3")
    assert query(db, "select source_file, line_number from load_rejects") == [
        (f"s3://{bucket_name}/{key}", 2)
    ]
    assert query(db, "select user_id, level from users") == [(8, "paid")]
