"""The source a run names: a directory, an s3://bucket/prefix URI or a saved S3Bucket block."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prefect_aws import S3Bucket

from tasks.common.aws import load_credentials
from tasks.common.errors import SOURCE_FIX, BadSource, SourceNotFound, UnreadableFile
from tasks.source.files import EVENTS_PREFIX, Source, no_events_folder
from tasks.source.local import LocalSource
from tasks.source.s3 import S3Source

S3_BUCKET_BLOCK = "s3-bucket/"
S3_SCHEME = "s3://"
# A URI's scheme ("s3:", "gs:", "https:"); one letter is a Windows drive ("C:"), not a scheme.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
# What S3 accepts in a bucket name, old us-east-1 names included (today's rules are stricter).
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
REDSHIFT_FIX = (
    "Redshift loads by COPY from S3: give the source (--source) s3://bucket/prefix "
    "or s3-bucket/NAME"
)


def resolve_source(spec: str, aws_credentials: str | None = None) -> Source:
    """A source from a directory, an s3://bucket/prefix URI (with an optional AwsCredentials
    block name), or `s3-bucket/NAME`, a saved prefect-aws S3Bucket block."""
    check_source(spec)
    credentials = load_credentials(aws_credentials) if aws_credentials else None
    if spec.startswith(S3_SCHEME):
        return S3Source.from_uri(spec, credentials)
    if spec.startswith(S3_BUCKET_BLOCK):
        block = S3Bucket.load(spec.removeprefix(S3_BUCKET_BLOCK))
        return S3Source(
            block.bucket_name,
            (block.bucket_folder or "").strip("/"),
            credentials or block.credentials,
        )
    return LocalSource(Path(spec).expanduser())


def is_s3_spec(spec: str) -> bool:
    """True for a source on S3: s3://bucket/prefix or s3-bucket/NAME."""
    return spec.startswith((S3_SCHEME, S3_BUCKET_BLOCK))


def check_source(spec: str) -> None:
    """Refuse a source that cannot be right, without a network call or the Prefect API: a
    malformed s3:// URI or S3Bucket block name, a directory that is missing, unreadable or
    without log_data/."""
    if not spec.strip():
        raise BadSource(f"no source given: {SOURCE_FIX}")
    if spec.startswith(S3_BUCKET_BLOCK):
        if not spec.removeprefix(S3_BUCKET_BLOCK).strip("/"):
            raise BadSource(f"source {spec} names no S3Bucket block: give s3-bucket/NAME")
        return
    if _SCHEME.match(spec):
        check_s3_uri(spec)
        return
    check_local_source(Path(spec).expanduser(), spec)


def check_s3_uri(spec: str) -> None:
    """Refuse an s3:// URI without a well-formed bucket name (or another scheme), or with a `.`
    or `..` segment in its prefix (its keys' copies would land outside the cache)."""
    if not spec.startswith(S3_SCHEME):
        raise BadSource(
            f"source {spec} is neither a directory nor s3://bucket/prefix: {SOURCE_FIX}"
        )
    bucket = spec.removeprefix(S3_SCHEME).split("/", 1)[0]
    if not _BUCKET.fullmatch(bucket):
        named = f"bucket name {bucket!r} is not valid" if bucket else "it names no bucket"
        raise BadSource(f"source {spec}: {named}: give the source (--source) s3://bucket/prefix")
    prefix = spec.removeprefix(S3_SCHEME).partition("/")[2]
    if any(part in (".", "..") for part in prefix.split("/")):
        raise BadSource(
            f"source {spec} holds a . or .. segment: S3 keys are taken as they are written; give "
            "the exact prefix, e.g. s3://bucket/raw"
        )


def check_local_source(path: Path, spec: str) -> None:
    """Refuse a local source that is missing, not a directory, unreadable or without log_data/."""
    if not path.exists():
        raise SourceNotFound(spec)
    if not path.is_dir():
        raise BadSource(f"source {spec} is a file, not a directory: {SOURCE_FIX}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UnreadableFile(
            f"source {spec} cannot be read (permission denied): give the run read access to it"
        )
    if not (path / EVENTS_PREFIX).is_dir():
        raise no_events_folder(spec)


def check_s3_source(spec: str) -> None:
    """Refuse a source that is not on S3 where Redshift is to load it (a cluster's COPY)."""
    if not is_s3_spec(spec):
        raise BadSource(f"source {spec} is not on S3: {REDSHIFT_FIX}")
    check_source(spec)
    if spec.startswith("s3://"):
        check_exact_prefix(spec)


def check_exact_prefix(uri: str) -> None:
    """Refuse an S3 prefix a cluster's role would be granted read on that holds a wildcard (an
    IAM policy would match every key it fits); check_s3_uri refused `.`/`..` segments."""
    prefix = uri.removeprefix("s3://").partition("/")[2]
    wildcard = next((c for c in "*?" if c in prefix), None)
    if wildcard:
        raise BadSource(
            f"source {uri} holds a wildcard ({wildcard}): the cluster's role would be granted "
            "read on every prefix it matches; give the exact prefix, e.g. s3://bucket/raw"
        )
