"""A source on S3: a prefix holding Sparkify's layout, listed and downloaded with boto3."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.common.aws import aws_client
from tasks.common.logs import run_logger
from tasks.common.retry import RETRY_TRANSIENT
from tasks.source.files import (
    EVENTS_PREFIX,
    SONGS_PREFIX,
    FileVersion,
    RunFiles,
    choose_run_files,
    no_events_folder,
)

DOWNLOAD_WORKERS = 16
# Below boto3's multipart threshold an object moves in one GET or PUT of its own: boto3's
# download_file/upload_file would add a HEAD request and a transfer manager (threads, futures)
# per object, most of the work for the many small song files. Larger ones keep boto3's
# transfer manager, which moves them in parts at once.
SINGLE_REQUEST_BYTES = 8 * 1024 * 1024
DELETE_BATCH = 1000  # S3 DeleteObjects takes at most 1,000 keys


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
    # Sizes seen when listing, so that an empty object is known without reading it.
    sizes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    # Clients made so far, shared with the sources `replace` derives from this one.
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_uri(cls, uri: str, credentials: AwsCredentials | None = None) -> S3Source:
        """A source for s3://bucket/prefix."""
        bucket, prefix = parse_s3_uri(uri)
        return cls(bucket, prefix.strip("/"), credentials or AwsCredentials())

    def client(self) -> Any:
        """The source's boto3 S3 client, made on first use and kept: a client is thread-safe,
        and making one (its session, its service model) costs a good part of a second."""
        client = self._clients.get("s3")
        if client is None:
            client = self._clients.setdefault("s3", aws_client(self.credentials, "s3"))
        return client

    def __getstate__(self) -> dict[str, Any]:
        """What a copy of the source keeps: everything but its client, which is made again."""
        return {**self.__dict__, "_clients": {}}

    def key(self, *parts: str) -> str:
        """A key under the source's prefix."""
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def uri(self, key: str) -> str:
        """The s3:// URI of a key."""
        return f"s3://{self.bucket}/{key}"

    def open(self, uri: str) -> Any:
        """An object's content as a stream, read as it is consumed (botocore's StreamingBody)."""
        bucket, key = parse_s3_uri(uri)
        return self.client().get_object(Bucket=bucket, Key=key)["Body"]

    def put_json(self, key: str, document: Any) -> str:
        """Write a JSON document (a COPY manifest, JSONPaths) to a key of the bucket; its URI."""
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        self.client().put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
        )
        return self.uri(key)

    def listing(self, folder: str) -> dict[str, str] | None:
        """Every object under a folder of the prefix: its URI → its path under the folder, ETags
        and sizes noted; folder markers (keys ending in /) are left out. None when the folder
        holds no object at all, not even a marker."""
        base = self.key(folder) + "/"
        paginator = self.client().get_paginator("list_objects_v2")
        found: dict[str, str] = {}
        anything = False
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                anything = True
                if item["Key"].endswith("/"):
                    continue
                uri = self.uri(item["Key"])
                self.etags[uri] = item["ETag"]
                self.sizes[uri] = item["Size"]
                found[uri] = item["Key"].removeprefix(base)
        return found if anything else None

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event objects of the run's days, every song object, and the objects skipped."""
        events = self.listing(EVENTS_PREFIX)
        if events is None:
            raise no_events_folder(self.describe())
        files = choose_run_files(events, self.listing(SONGS_PREFIX) or {}, start, end)
        chosen = [*files.event_files, *files.song_files]
        return replace(
            files, versions={uri: FileVersion(self.sizes[uri], self.etags[uri]) for uri in chosen}
        )

    def local_copies(self, files: list[str]) -> dict[str, str]:
        """Download the objects concurrently into the cache (kept while their ETag is the same),
        each under its own key, so a gzipped object's copy keeps its `.gz` suffix."""
        client = self.client()

        def fetch(uri: str) -> tuple[str, str]:
            bucket, key = parse_s3_uri(uri)
            target = self.cache_dir / bucket / key
            if not target.resolve().is_relative_to((self.cache_dir / bucket).resolve()):
                raise ValueError(f"{uri} would be copied outside the cache {self.cache_dir}")
            tag_file = target.with_name(target.name + ".etag")
            etag = self.etags.get(uri) or client.head_object(Bucket=bucket, Key=key)["ETag"]
            if target.exists() and tag_file.exists() and tag_file.read_text() == etag:
                return uri, str(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            size = self.sizes.get(uri)
            if size is not None and size < SINGLE_REQUEST_BYTES:
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                with body, partial.open("wb") as out:
                    shutil.copyfileobj(body, out)
            else:
                client.download_file(bucket, key, str(partial))
            partial.replace(target)
            tag_file.write_text(etag)
            return uri, str(target)

        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            return dict(pool.map(fetch, files))

    def content_digests(self, files: list[str]) -> dict[str, str | None]:
        """What the listing says of each object's content without reading it: None for an empty
        object, else its ETag (the same content uploaded the same way has the same ETag)."""
        return {
            uri: None if self.sizes.get(uri) == 0 else self.etags.get(uri, uri) for uri in files
        }

    def describe(self) -> str:
        """The source's URI."""
        return self.uri(self.prefix)


@task(name="upload-tree", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def upload_tree(sample: str, target: S3Source) -> int:
    """Upload every file of a local directory under the target prefix; the number of files."""
    root = Path(sample)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    client = target.client()

    def upload(path: Path) -> None:
        key = target.key(path.relative_to(root).as_posix())
        if path.stat().st_size < SINGLE_REQUEST_BYTES:
            with path.open("rb") as body:
                client.put_object(Bucket=target.bucket, Key=key, Body=body)
        else:
            client.upload_file(str(path), target.bucket, key)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
        list(pool.map(upload, files))
    run_logger().info("uploaded %d files to %s", len(files), target.describe())
    return len(files)


@task(name="delete-prefix", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def delete_prefix(target: S3Source) -> int:
    """Delete every object under the source's prefix; the number deleted."""
    client = target.client()
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=target.bucket, Prefix=target.prefix + "/"
        )
        for item in page.get("Contents", [])
    ]
    for start in range(0, len(keys), DELETE_BATCH):
        batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
        client.delete_objects(Bucket=target.bucket, Delete={"Objects": batch, "Quiet": True})
    run_logger().info("deleted %d objects under %s", len(keys), target.describe())
    return len(keys)
