"""Where the raw JSON lives, and which files a run reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

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
    """The exact files one run stages."""

    event_files: list[str]
    song_files: list[str]


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
