"""Where the raw JSON lives, and which files a run reads: a local directory or an S3 prefix."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import orjson
from prefect_aws import AwsCredentials, S3Bucket

EVENTS_PREFIX = "log_data"
SONGS_PREFIX = "song_data"
# Manifests and JSONPaths are written beside the data, where the COPY role may read.
CONTROL_PREFIX = "_sparkify"
S3_BUCKET_BLOCK = "s3-bucket/"
DOWNLOAD_WORKERS = 16
_EVENT_FILE = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})-events\.json$")


def event_file_date(name: str) -> date | None:
    """The day an event file holds, from its `YYYY-MM-DD-events.json` name; None if not one."""
    match = _EVENT_FILE.search(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group("day"))
    except ValueError:
        return None


def select_event_files(names: list[str], start: date | None, end: date | None) -> list[str]:
    """The event files whose day lies in [start, end] (either bound open when None), sorted."""
    chosen = []
    for name in names:
        day = event_file_date(name)
        if day is None:
            continue
        if (start is None or day >= start) and (end is None or day <= end):
            chosen.append(name)
    return sorted(chosen)


@dataclass(frozen=True)
class RunFiles:
    """The exact files one run stages, by name (a local path or an s3:// URI)."""

    event_files: list[str]
    song_files: list[str]


class Source(Protocol):
    """What the pipeline needs of a source of raw JSON."""

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event files of the run's days and every song file."""
        ...

    def localize(self, files: list[str]) -> dict[str, str]:
        """A local path for each file, for warehouses that read local files."""
        ...

    def describe(self) -> str:
        """Where the source is, for logs."""
        ...


@dataclass(frozen=True)
class LocalSource:
    """A directory holding `log_data/` and `song_data/` in Sparkify's layout."""

    root: Path

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event files of the run's days and every song file."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"source directory {self.root} does not exist")
        events = [str(p) for p in (self.root / EVENTS_PREFIX).rglob("*.json")]
        songs = sorted(str(p) for p in (self.root / SONGS_PREFIX).rglob("*.json"))
        return RunFiles(select_event_files(events, start, end), songs)

    def localize(self, files: list[str]) -> dict[str, str]:
        """Local files are read where they are."""
        return {name: name for name in files}

    def describe(self) -> str:
        """The directory."""
        return str(self.root)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Bucket and key (or prefix) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def default_cache_dir() -> Path:
    """Where S3 objects are cached for DuckDB (SPARKIFY_CACHE_DIR overrides)."""
    configured = os.environ.get("SPARKIFY_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "sparkify-etl" / "s3"


@dataclass(frozen=True)
class S3Source:
    """An S3 prefix holding `log_data/` and `song_data/`, reached with prefect-aws credentials
    (with no block: boto3's standard chain, AWS_ENDPOINT_URL included)."""

    bucket: str
    prefix: str = ""
    credentials: AwsCredentials = field(default_factory=AwsCredentials)
    cache_dir: Path = field(default_factory=default_cache_dir)
    # ETags seen when listing, so that a cached copy is checked without a request per object.
    etags: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_uri(cls, uri: str, credentials: AwsCredentials | None = None) -> S3Source:
        """A source for s3://bucket/prefix."""
        bucket, prefix = parse_s3_uri(uri)
        return cls(bucket, prefix.strip("/"), credentials or AwsCredentials())

    def client(self) -> Any:
        """A new boto3 S3 client (not prefect-aws's per-block cache: endpoints may change)."""
        overrides = self.credentials.aws_client_parameters.get_params_override()
        return self.credentials.get_boto3_session().client("s3", **overrides)

    def key(self, *parts: str) -> str:
        """A key under the source's prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def uri(self, key: str) -> str:
        """The s3:// URI of a key."""
        return f"s3://{self.bucket}/{key}"

    def list_uris(self, folder: str) -> list[str]:
        """Every .json object under a folder of the prefix, as URIs."""
        paginator = self.client().get_paginator("list_objects_v2")
        uris = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(folder) + "/"):
            for item in page.get("Contents", []):
                uris.append(self.uri(item["Key"]))
                self.etags[uris[-1]] = item["ETag"]
        return [u for u in uris if u.endswith(".json")]

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event objects of the run's days and every song object."""
        events = select_event_files(self.list_uris(EVENTS_PREFIX), start, end)
        return RunFiles(events, sorted(self.list_uris(SONGS_PREFIX)))

    def put_json(self, key: str, document: Any) -> str:
        """Write a JSON document to a key of the bucket; returns its URI."""
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        self.client().put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
        )
        return self.uri(key)

    def localize(self, files: list[str]) -> dict[str, str]:
        """Download the objects concurrently into the cache (kept while their ETag is the same)."""
        client = self.client()

        def fetch(uri: str) -> tuple[str, str]:
            bucket, key = parse_s3_uri(uri)
            target = self.cache_dir / bucket / key
            tag_file = target.with_name(target.name + ".etag")
            etag = self.etags.get(uri) or client.head_object(Bucket=bucket, Key=key)["ETag"]
            if target.exists() and tag_file.exists() and tag_file.read_text() == etag:
                return uri, str(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            client.download_file(bucket, key, str(partial))
            partial.replace(target)
            tag_file.write_text(etag)
            return uri, str(target)

        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            return dict(pool.map(fetch, files))

    def describe(self) -> str:
        """The source's URI."""
        return self.uri(self.prefix)


def resolve_source(spec: str, aws_credentials: str | None = None) -> Source:
    """A source from a directory, an s3://bucket/prefix URI (with an optional AwsCredentials
    block name), or `s3-bucket/NAME`, a saved prefect-aws S3Bucket block."""
    credentials = AwsCredentials.load(aws_credentials) if aws_credentials else None
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
