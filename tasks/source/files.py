"""What a run reads: the layout of the raw JSON, the files of a run's days, and the protocol every
source (a local directory, an S3 prefix) implements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.run.retry import RETRY_TRANSIENT

EVENTS_PREFIX = "log_data"
SONGS_PREFIX = "song_data"
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

    def local_copies(self, files: list[str]) -> dict[str, str]:
        """A local path holding each file's content (the file itself when it is local)."""
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
    """The event files of the run's days and every song file under the source."""
    files = source.run_files(start, end)
    get_run_logger().info(
        "%d event files and %d song files in %s",
        len(files.event_files),
        len(files.song_files),
        source.describe(),
    )
    return files
