"""The run's song files combined into a few objects before Redshift's COPY.

A run stages the whole song catalog, one small file per song (some 15,000 a run), and COPY pays
for every object it opens; Redshift's advice for JSON, which it cannot split, is files of 1 MB to
1 GB, close in size, their number a multiple of the cluster's slices. So the song files whose
every non-blank line is one JSON object are combined, line by line and byte for byte, into a few
newline-delimited objects under the run's control prefix, and the manifest names those. A file
that is anything else (an object spread over lines, malformed JSON, binary, not UTF-8) is left
as itself, so COPY reads and rejects it exactly as before. Each combined object keeps the file
and line of each of its lines, so that a record COPY rejects is reported against the song file
and line it came from (`tasks/warehouse/load_errors.py`, `traced_to_origins`). The objects are
deleted once their COPY has run: each is a copy of the catalog, written again by every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from tasks.logs import run_logger
from tasks.source.s3 import DELETE_BATCH, S3Source, parse_s3_uri
from tasks.warehouse.load_errors import Origins

# Redshift's advice: files of at least 1 MB (and at most 1 GB; 64 MiB keeps well inside it
# and keeps the objects many enough to spread over the slices).
MIN_BUNDLE_BYTES = 2**20
MAX_BUNDLE_BYTES = 64 * 2**20
# How many objects a run aims at when its songs fill them: a multiple of the slices of one, two,
# four or eight dc2.large nodes (two slices each) and of one dc2.8xlarge (sixteen).
BUNDLE_COUNT_GOAL = 16
# A longer line is no song record of Sparkify's data: its file is left as itself.
LONGEST_LINE = MIN_BUNDLE_BYTES
# JSON's whitespace besides the line feed: a line of only these holds no record.
_JSON_BLANKS = b" \t\r"


@dataclass(frozen=True)
class SongBundle:
    """One combined object: its newline-delimited body and, for each of its lines in order,
    the file and line number it came from."""

    body: bytes
    origins: list[tuple[str, int]]


@dataclass(frozen=True)
class BundlePlan:
    """How a run's files are combined: the objects, the files left as themselves, and how
    many files the objects hold (a file of blank lines counts, holding no line)."""

    bundles: list[SongBundle]
    alone: list[str]
    combined: int


def record_lines(body: bytes) -> list[tuple[int, bytes]] | None:
    """The non-blank lines of a file, with their numbers, when each is one JSON object; None
    when the file is anything else, which COPY then reads as itself."""
    lines = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip(_JSON_BLANKS):
            continue
        if len(line) > LONGEST_LINE:
            return None
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict):
            return None
        lines.append((number, line))
    return lines


def bundle_count(total: int, longest: int) -> int:
    """How many objects share `total` bytes of lines, the longest `longest` bytes: up to
    BUNDLE_COUNT_GOAL while each still holds MIN_BUNDLE_BYTES, as many more as MAX_BUNDLE_BYTES
    needs, and one at least. Cut at equal byte offsets, each object is within one line of
    total / count, hence the longest line as headroom on both bounds."""
    filled = total // (MIN_BUNDLE_BYTES + longest)
    needed = -(-total // (MAX_BUNDLE_BYTES - longest))
    return max(1, needed, min(BUNDLE_COUNT_GOAL, filled))


def plan_bundles(contents: Mapping[str, bytes]) -> BundlePlan:
    """The files' record lines, in the files' order, cut into objects of about equal size."""
    lines: list[tuple[str, int, bytes]] = []
    alone: list[str] = []
    combined = 0
    for name, body in contents.items():
        found = record_lines(body)
        if found is None:
            alone.append(name)
            continue
        combined += 1
        lines += [(name, number, line) for number, line in found]
    if not lines:
        return BundlePlan([], alone, combined)
    total = sum(len(line) + 1 for *_, line in lines)
    count = bundle_count(total, max(len(line) + 1 for *_, line in lines))
    parts: list[list[tuple[str, int, bytes]]] = [[] for _ in range(count)]
    offset = 0
    for entry in lines:
        parts[offset * count // total].append(entry)
        offset += len(entry[2]) + 1
    bundles = [
        SongBundle(
            b"".join(line + b"\n" for *_, line in part),
            [(name, number) for name, number, _ in part],
        )
        for part in parts
        if part
    ]
    return BundlePlan(bundles, alone, combined)


@dataclass(frozen=True)
class CopyFiles:
    """What one COPY's manifest names: combined objects and files as they are, where each
    combined object's lines came from, and how many of the run's files were combined."""

    files: list[str]
    origins: Origins = field(default_factory=dict)
    combined: int = 0

    def describe(self) -> str:
        """How the files went to COPY, for the run's progress."""
        plain = len(self.files) - len(self.origins)
        if not self.origins:
            return f"{plain} files by one COPY"
        return (
            f"{self.combined} files in {len(self.origins)} combined objects"
            + (f" and {plain} files as they are" if plain else "")
            + " by one COPY"
        )


def combine_song_files(source: S3Source, files: list[str], prefix: str) -> CopyFiles:
    """Combine the files (plain JSON, not gzipped) into objects `prefix.NNNN.json` of the
    source's bucket, read through the source's local cache (kept while an ETag is the same)."""
    paths = source.local_copies(files)
    plan = plan_bundles({uri: Path(paths[uri]).read_bytes() for uri in files})
    client = source.client()
    origins: dict[str, list[tuple[str, int]]] = {}
    for number, bundle in enumerate(plan.bundles, start=1):
        key = f"{prefix}.{number:04d}.json"
        client.put_object(
            Bucket=source.bucket, Key=key, Body=bundle.body, ContentType="application/x-ndjson"
        )
        origins[source.uri(key)] = bundle.origins
    return CopyFiles([*origins, *plan.alone], origins, plan.combined)


def delete_combined(source: S3Source, copied: CopyFiles) -> None:
    """Delete a COPY's combined objects once it has run (loaded or failed). A failure is
    logged, not raised: it must not hide the COPY's own outcome, and the objects left under
    the control prefix are read by nothing else."""
    keys = [parse_s3_uri(uri)[1] for uri in copied.origins]
    try:
        client = source.client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            client.delete_objects(Bucket=source.bucket, Delete={"Objects": batch, "Quiet": True})
    except (BotoCoreError, ClientError) as error:
        run_logger().warning(
            "could not delete %d combined song objects under %s: %s",
            len(keys),
            source.uri(keys[0].rsplit("/", 1)[0]) if keys else source.describe(),
            error,
        )
