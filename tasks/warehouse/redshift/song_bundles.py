"""The run's song files combined into a few objects before Redshift's COPY, each record
carrying the file it came from.

A run stages the whole song catalog, one small file per song (some 15,000 a run), and COPY pays
for every object it opens; Redshift's advice for JSON, which it cannot split, is files of 1 MB to
1 GB, close in size, their number a multiple of the cluster's slices. So the song files whose
every non-blank line is one JSON object, gzipped ones once decompressed, are combined line by
line into a few newline-delimited objects under the run's control prefix, and the manifest names
those. COPY keeps no file name with the rows it loads, and staging_songs needs one (its NOT NULL
source_file: a changed song file's records replace those it loaded before): so each line is
written with the name of its file, as the run knows it (the s3:// URI), in a first field
`__sparkify_source_file` (model.SOURCE_FILE_FIELD) inserted after the line's opening brace, and
the rest of the line byte for byte as the file has it. Each combined object keeps the file and
line of each of its lines, so that a record COPY rejects is reported against the song file and
line it came from (`tasks/warehouse/redshift/load_errors.py`, `traced_to_origins`). The objects are
deleted once their COPY has run: each is a copy of the catalog, written again by every run.

The catalog can be larger than the memory of the machine that runs the flow: each file is read
once, its written lines go to a temporary spool file, and each object is cut from the spool and
uploaded from a file of its own (their sizes depend on the total, known once every file is read).
What stays in memory is one file at a time, a chunk of an object, and each line's origin.

A file that is anything else (an object spread over lines, malformed JSON, binary, not UTF-8,
a gzipped file that does not decompress) is left alone: COPY reads it as itself, a gzipped one
in a COPY with GZIP, and rejects what it cannot read as before. Its records lack the field, so
COPY rejects each record it does read for NULL in the NOT NULL source_file ("missing data for
not-null field") into its load-error log, whence the run reports it against that file and line.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import zlib
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from sql.model import SOURCE_FILE_FIELD
from tasks.common.logs import run_logger
from tasks.source.files import is_gzipped
from tasks.source.s3 import DELETE_BATCH, S3Source, parse_s3_uri
from tasks.warehouse.redshift.load_errors import Origins, logged_name

# Redshift's advice: files of at least 1 MB (and at most 1 GB; 64 MiB keeps well inside it
# and keeps the objects many enough to spread over the slices).
MIN_BUNDLE_BYTES = 2**20
MAX_BUNDLE_BYTES = 64 * 2**20
# How many objects a run aims at when its songs fill them: a multiple of the slices of one, two,
# four or eight dc2.large nodes (two slices each) and of one dc2.8xlarge (sixteen).
BUNDLE_COUNT_GOAL = 16
# A longer line is no song record of Sparkify's data: its file is left as itself.
LONGEST_LINE = MIN_BUNDLE_BYTES
# A gzipped file that holds more is no song file of Sparkify's data either (nor is it
# decompressed whole into memory): it is left as itself.
LARGEST_SONG_FILE = MAX_BUNDLE_BYTES
# JSON's whitespace besides the line feed: a line of only these holds no record.
_JSON_BLANKS = b" \t\r"
# What decompression raises on a truncated or corrupt gzip file (BadGzipFile is an OSError).
_GZIP_ERRORS = (OSError, EOFError, zlib.error)
# The start of the field each combined line is written with.
_SOURCE_FILE_KEY = orjson.dumps(SOURCE_FILE_FIELD) + b":"
# How much of an object is read from the spool at once when it is copied out.
COPY_CHUNK = 2**18


@dataclass(frozen=True)
class SongBundle:
    """One combined object: where its newline-delimited body lies in the plan's spool and, for
    each of its lines in order, the file and line number it came from."""

    spool: IO[bytes] = field(compare=False, repr=False)
    start: int
    size: int
    origins: list[tuple[str, int]]

    def chunks(self) -> Iterator[bytes]:
        """The object's body, COPY_CHUNK bytes at a time."""
        self.spool.seek(self.start)
        left = self.size
        while left:
            chunk = self.spool.read(min(left, COPY_CHUNK))
            if not chunk:
                raise EOFError(f"the spool ends {left} bytes short of a combined object")
            left -= len(chunk)
            yield chunk

    @property
    def body(self) -> bytes:
        """The object's whole body (for a small object: a large one is copied by chunks)."""
        return b"".join(self.chunks())


@dataclass(frozen=True)
class BundlePlan:
    """How a run's files are combined: the objects, the files left as themselves, and how
    many files the objects hold (a file of blank lines counts, holding no line); the objects'
    bodies are in the spool, closed with the plan."""

    bundles: list[SongBundle]
    alone: list[str]
    combined: int
    spool: IO[bytes] | None = field(default=None, compare=False, repr=False)

    def close(self) -> None:
        """Close the spool (a temporary file: its space is freed)."""
        if self.spool is not None:
            self.spool.close()


class StoredFiles(Mapping[str, bytes]):
    """The run's files by URI, each read from its local copy only when asked for, so that
    plan_bundles holds one file at a time."""

    def __init__(self, files: list[str], paths: Mapping[str, str]) -> None:
        self._files = list(dict.fromkeys(files))
        self._paths = paths

    def __getitem__(self, uri: str) -> bytes:
        return Path(self._paths[uri]).read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def gunzipped(data: bytes) -> bytes | None:
    """A gzipped file's content; None when it is not gzip data, ends short, or holds more than
    LARGEST_SONG_FILE bytes."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as file:
            content = file.read(LARGEST_SONG_FILE + 1)
    except _GZIP_ERRORS:
        return None
    return content if len(content) <= LARGEST_SONG_FILE else None


def record_lines(body: bytes) -> list[tuple[int, bytes, dict[str, Any]]] | None:
    """The non-blank lines of a file, with their numbers and their objects, when each is one
    JSON object; None when the file is anything else, which COPY then reads as itself."""
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
        lines.append((number, line, record))
    return lines


def with_source_file(line: bytes, record: dict[str, Any], source_file: str) -> bytes:
    """A record's line with its file's name as a first field, SOURCE_FILE_FIELD, after the
    opening brace (no comma when the object is empty); the rest of the line as it is."""
    if SOURCE_FILE_FIELD in record:
        # No Sparkify record has the field; one that does is written again without its own,
        # since which of two same-named fields COPY reads is not documented.
        record = {key: value for key, value in record.items() if key != SOURCE_FILE_FIELD}
        line = orjson.dumps(record)
    brace = line.index(b"{") + 1  # the object's own: only blanks may come before it
    name = _SOURCE_FILE_KEY + orjson.dumps(source_file) + (b"," if record else b"")
    return line[:brace] + name + line[brace:]


def bundle_count(total: int, longest: int) -> int:
    """How many objects share `total` bytes of lines, the longest `longest` bytes: up to
    BUNDLE_COUNT_GOAL while each still holds MIN_BUNDLE_BYTES, as many more as MAX_BUNDLE_BYTES
    needs, and one at least. Cut at equal byte offsets, each object is within one line of
    total / count, hence the longest line as headroom on both bounds."""
    filled = total // (MIN_BUNDLE_BYTES + longest)
    needed = -(-total // (MAX_BUNDLE_BYTES - longest))
    return max(1, needed, min(BUNDLE_COUNT_GOAL, filled))


def plan_bundles(contents: Mapping[str, bytes]) -> BundlePlan:
    """The files' record lines (gzipped files' once decompressed), each with its file's name,
    in the files' order, cut into objects of about equal size; each file is read once, and the
    lines are written to a temporary spool, not held."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the plan keeps it open, closes it
    origins: list[tuple[str, int]] = []
    ends = array("q")  # where each written line ends in the spool, its newline included
    alone: list[str] = []
    combined = longest = 0
    try:
        for name in contents:
            stored = contents[name]
            body = gunzipped(stored) if is_gzipped(name) else stored
            found = None if body is None else record_lines(body)
            if found is None:
                alone.append(name)
                continue
            combined += 1
            for number, line, record in found:
                written = with_source_file(line, record, name) + b"\n"
                spool.write(written)
                ends.append((ends[-1] if ends else 0) + len(written))
                longest = max(longest, len(written))
                origins.append((name, number))
    except BaseException:
        spool.close()
        raise
    if not origins:
        spool.close()
        return BundlePlan([], alone, combined)
    spool.flush()
    total = ends[-1]
    count = bundle_count(total, longest)
    # A line goes to the object its start offset falls in when the total is cut in `count`
    # equal parts: consecutive lines, so each object is one range of the spool.
    bundles: list[SongBundle] = []
    first = 0
    for last in range(len(ends)):
        start = ends[first - 1] if first else 0
        part = start * count // total
        following = ends[last] * count // total if last + 1 < len(ends) else count
        if following != part:
            bundles.append(SongBundle(spool, start, ends[last] - start, origins[first : last + 1]))
            first = last + 1
    return BundlePlan(bundles, alone, combined, spool)


@dataclass(frozen=True)
class CopyFiles:
    """What one COPY's manifest names: combined objects and files as they are, all gzipped or
    none (GZIP holds for all of a COPY's files), where each combined object's lines came from,
    and how many of the run's files were combined."""

    files: list[str]
    origins: Origins = field(default_factory=dict)
    combined: int = 0
    gzipped: bool = False

    def run_files(self) -> int:
        """How many of the run's files this COPY stages, combined or as they are."""
        return self.combined + len(self.files) - len(self.origins)

    def describe(self) -> str:
        """How the files went to COPY, for the run's progress."""
        plain = len(self.files) - len(self.origins)
        if not self.origins:
            return f"{plain} {'gzipped ' if self.gzipped else ''}files by one COPY"
        return (
            f"{self.combined} files in {len(self.origins)} combined objects"
            + (f" and {plain} files as they are" if plain else "")
            + " by one COPY"
        )


def apart_as_logged(batches: list[CopyFiles]) -> list[CopyFiles]:
    """The COPYs, each split into as few as keep apart the files whose names the load-error
    logs cut alike (their first 256 bytes the same, under a long prefix), so that each reject
    names its file: a COPY as it is when none are (or it has no file). A combined object
    goes with its origins; the files combined are counted in the first part."""
    split: list[CopyFiles] = []
    for batch in batches:
        parts: list[dict[str, str]] = []  # each part's files by their logged names
        for uri in batch.files:
            name = logged_name(uri)
            part = next((p for p in parts if name not in p), None)
            if part is None:
                parts.append(part := {})
            part[name] = uri
        if len(parts) <= 1:
            split.append(batch)
            continue
        for n, part in enumerate(parts):
            files = list(part.values())
            origins = {uri: batch.origins[uri] for uri in files if uri in batch.origins}
            combined = batch.combined if n == 0 else 0
            split.append(CopyFiles(files, origins, combined, batch.gzipped))
    return split


def by_compression(files: list[str]) -> list[CopyFiles]:
    """The files as they are, the plain ones and the gzipped ones in a COPY each (none for
    neither)."""
    batches = (
        CopyFiles([u for u in files if is_gzipped(u) == gz], gzipped=gz) for gz in (False, True)
    )
    return [batch for batch in batches if batch.files]


def combine_song_files(source: S3Source, files: list[str], prefix: str) -> list[CopyFiles]:
    """Combine the files (plain or gzipped) into objects `prefix.NNNN.json` of the source's
    bucket, read through the source's local cache (kept while an ETag is the same). The COPYs
    they take: the objects with the plain files left alone, then the gzipped ones left alone."""
    if not files:
        return []
    plan = plan_bundles(StoredFiles(files, source.local_copies(files)))
    client = source.client()
    origins: dict[str, list[tuple[str, int]]] = {}
    try:
        for number, bundle in enumerate(plan.bundles, start=1):
            key = f"{prefix}.{number:04d}.json"
            # An object is uploaded from a file of its own (a body botocore streams), never
            # held whole in memory.
            with tempfile.TemporaryFile() as body:
                for chunk in bundle.chunks():
                    body.write(chunk)
                body.seek(0)
                client.put_object(
                    Bucket=source.bucket, Key=key, Body=body, ContentType="application/x-ndjson"
                )
            origins[source.uri(key)] = bundle.origins
    finally:
        plan.close()
    plain = [uri for uri in plan.alone if not is_gzipped(uri)]
    gzipped = by_compression([uri for uri in plan.alone if is_gzipped(uri)])
    return [CopyFiles([*origins, *plain], origins, plan.combined), *gzipped]


def delete_combined(source: S3Source, copied: CopyFiles) -> None:
    """Delete a COPY's combined objects once it has run (loaded or failed). A failure is
    logged, not raised: it must not hide the COPY's own outcome, and the objects left under
    the control prefix are read by nothing else."""
    keys = [parse_s3_uri(uri)[1] for uri in copied.origins]
    if not keys:
        return
    try:
        client = source.client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            client.delete_objects(Bucket=source.bucket, Delete={"Objects": batch, "Quiet": True})
    except (BotoCoreError, ClientError) as error:
        run_logger().warning(
            "could not delete %d combined song objects under %s: %s",
            len(keys),
            source.uri(keys[0].rsplit("/", 1)[0]),
            error,
        )
