"""A source on the local disk: a directory in Sparkify's layout (the bundled sample, a laptop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tasks.source.files import EVENTS_PREFIX, SONGS_PREFIX, RunFiles, select_event_files


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

    def local_copies(self, files: list[str]) -> dict[str, str]:
        """Local files are read where they are."""
        return {name: name for name in files}

    def describe(self) -> str:
        """The directory."""
        return str(self.root)
