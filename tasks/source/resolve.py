"""The source a run names: a directory, an s3://bucket/prefix URI or a saved S3Bucket block."""

from __future__ import annotations

from pathlib import Path

from prefect_aws import S3Bucket

from tasks.aws import load_credentials
from tasks.source.files import Source
from tasks.source.local import LocalSource
from tasks.source.s3 import S3Source

S3_BUCKET_BLOCK = "s3-bucket/"


def resolve_source(spec: str, aws_credentials: str | None = None) -> Source:
    """A source from a directory, an s3://bucket/prefix URI (with an optional AwsCredentials
    block name), or `s3-bucket/NAME`, a saved prefect-aws S3Bucket block."""
    credentials = load_credentials(aws_credentials) if aws_credentials else None
    if spec.startswith("s3://"):
        return S3Source.from_uri(spec, credentials)
    if spec.startswith(S3_BUCKET_BLOCK):
        block = S3Bucket.load(spec.removeprefix(S3_BUCKET_BLOCK))
        return S3Source(
            block.bucket_name,
            (block.bucket_folder or "").strip("/"),
            credentials or block.credentials,
        )
    return LocalSource(Path(spec))
