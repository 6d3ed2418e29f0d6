"""What a run reads: the layout of the raw JSON, the files of a run's days (and those it skips,
with the reason), and the protocol every source (a local directory, an S3 prefix) implements."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.common.errors import UserError
from tasks.common.retry import RETRY_TRANSIENT

EVENTS_PREFIX = "log_data"
SONGS_PREFIX = "song_data"
# Data files are JSON, plain or gzipped, whatever the case of the suffix.
DATA_SUFFIXES = (".json", ".json.gz")
_EVENT_FILE = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})-events\.json(?:\.gz)?", re.IGNORECASE)
EVENT_NAME = "YYYY-MM-DD-events.json (or .json.gz)"
# Skipped files and missing days named one by one in a run's log and load artifact; the rest
# are counted (a copied tree can hold a .DS_Store in each of song_data's 17,576 folders).
NOTICES_SHOWN = 100


class SourceLayoutError(UserError, ValueError):
    """The source is not in Sparkify's layout: the message names the source and the fix."""


def no_events_folder(where: str) -> SourceLayoutError:
    """The error for a source without log_data/ (a run of it would load no event at all)."""
    return SourceLayoutError(
        f"{where} has no {EVENTS_PREFIX}/ folder: give the source (--source) the directory or "
        "s3:// prefix "
        f"that holds {EVENTS_PREFIX}/ and {SONGS_PREFIX}/"
    )


def is_gzipped(name: str) -> bool:
    """True for a gzipped data file (a `.gz` suffix, any case)."""
    return name.lower().endswith(".gz")


def event_file_date(name: str) -> date | None:
    """The day an event file holds, from its `YYYY-MM-DD-events.json[.gz]` name; None if not one."""
    match = _EVENT_FILE.fullmatch(name.rsplit("/", 1)[-1])
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


def skip_reason(relative: str, is_events: bool) -> str | None:
    """Why a file at this path under log_data/ (events) or song_data/ is not read; None if it
    is read (for events, when its day is in the run's dates)."""
    parts = relative.split("/")
    if any(part.startswith(".") for part in parts):
        return "hidden file or folder"
    if not parts[-1].lower().endswith(DATA_SUFFIXES):
        return "not a .json or .json.gz file"
    if is_events and event_file_date(parts[-1]) is None:
        if _EVENT_FILE.fullmatch(parts[-1]):
            return "no such day in the calendar"
        return f"name is not {EVENT_NAME}"
    return None


@dataclass(frozen=True)
class SkippedFile:
    """A file under log_data/ or song_data/ that the run does not read, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class FileVersion:
    """What tells one content of a file from another without reading it: its size, and its
    ETag (S3) or modification time in nanoseconds (a local file)."""

    size: int
    version: str


@dataclass(frozen=True)
class RunFiles:
    """The files of one run's days and every song file, by name (a local path or an s3://
    URI), with the version of each seen when listing; the files under log_data/ and song_data/
    it skips; the requested days without an event file."""

    event_files: list[str]
    song_files: list[str]
    skipped: list[SkippedFile] = field(default_factory=list)
    missing_days: list[date] = field(default_factory=list)
    versions: dict[str, FileVersion] = field(default_factory=dict, repr=False)


def missing_days(event_files: list[str], start: date | None, end: date | None) -> list[date]:
    """The days of [start, end] that no event file holds (none when either bound is open)."""
    if start is None or end is None:
        return []
    present = {event_file_date(name) for name in event_files}
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [day for day in days if day not in present]


def choose_run_files(
    events: Mapping[str, str], songs: Mapping[str, str], start: date | None, end: date | None
) -> RunFiles:
    """A run's files from a source's listing (each file's name → its path under log_data/ or
    song_data/): the event files of [start, end], every song file, the others skipped with the
    reason. An event file outside the dates is not skipped: it is simply not this run's."""
    event_names, skipped_events = _readable(events, is_events=True)
    song_names, skipped_songs = _readable(songs, is_events=False)
    event_files = select_event_files(event_names, start, end)
    return RunFiles(
        event_files,
        sorted(song_names),
        sorted(skipped_events + skipped_songs, key=lambda s: s.name),
        missing_days(event_files, start, end),
    )


def _readable(listing: Mapping[str, str], is_events: bool) -> tuple[list[str], list[SkippedFile]]:
    """The files of a folder's listing that are data, and the others with their reason."""
    readable, skipped = [], []
    for name, relative in listing.items():
        reason = skip_reason(relative, is_events)
        if reason is None:
            readable.append(name)
        else:
            skipped.append(SkippedFile(name, reason))
    return readable, skipped


def file_notices(files: RunFiles, shown: int = NOTICES_SHOWN) -> list[tuple[str, str]]:
    """What a run's log and load artifact say of its listing: ("skipped file", "name: reason")
    and ("missing day", "YYYY-MM-DD: …"), at most `shown` of each, then one line counting the
    rest (by reason, for skipped files)."""
    notices = [("skipped file", f"{s.name}: {s.reason}") for s in files.skipped[:shown]]
    rest = Counter(s.reason for s in files.skipped[shown:])
    if rest:
        by_reason = ", ".join(f"{n:,} {reason}" for reason, n in sorted(rest.items()))
        notices.append(("skipped file", f"{sum(rest.values()):,} more: {by_reason}"))
    notices += [
        ("missing day", f"{day.isoformat()}: requested, but no event file holds it")
        for day in files.missing_days[:shown]
    ]
    if len(files.missing_days) > shown:
        notices.append(("missing day", f"{len(files.missing_days) - shown:,} more"))
    return notices


class Source(Protocol):
    """What the pipeline needs of a source of raw JSON."""

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event files of the run's days, every song file (each with its version), and
        the files skipped; raises SourceLayoutError when the source has no log_data/."""
        ...

    def local_copies(self, files: list[str]) -> dict[str, str]:
        """A local path holding each file's content (the file itself when it is local); a
        gzipped file's copy keeps its `.gz` suffix."""
        ...

    def describe(self) -> str:
        """Where the source is, for logs."""
        ...


@task(
    name="list-run-files",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def list_run_files(source: Source, start: date | None, end: date | None) -> RunFiles:
    """The event files of the run's days and every song file under the source; the files it
    skips and the requested days without events are warnings in the run's log."""
    files = source.run_files(start, end)
    logger = get_run_logger()
    logger.info(
        "%d event files (%d gzipped) and %d song files (%d gzipped) in %s; %d files skipped",
        len(files.event_files),
        sum(map(is_gzipped, files.event_files)),
        len(files.song_files),
        sum(map(is_gzipped, files.song_files)),
        source.describe(),
        len(files.skipped),
    )
    for kind, detail in file_notices(files):
        logger.warning("%s: %s", kind, detail)
    return files
