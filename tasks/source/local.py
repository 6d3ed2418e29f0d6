"""A source on the local disk: a directory in Sparkify's layout (the bundled sample, a laptop)."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from tasks.common.logs import run_logger
from tasks.source.files import (
    EVENTS_PREFIX,
    SONGS_PREFIX,
    FileVersion,
    RunFiles,
    choose_run_files,
    no_events_folder,
)


@dataclass(frozen=True)
class LocalSource:
    """A directory holding `log_data/` and `song_data/` in Sparkify's layout."""

    root: Path

    def run_files(self, start: date | None, end: date | None) -> RunFiles:
        """The event files of the run's days, every song file, and the files skipped."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"source directory {self.root} does not exist")
        if not (self.root / EVENTS_PREFIX).is_dir():
            raise no_events_folder(str(self.root))
        files = choose_run_files(
            self.listing(EVENTS_PREFIX), self.listing(SONGS_PREFIX), start, end
        )
        return replace(files, versions=self.versions([*files.event_files, *files.song_files]))

    def versions(self, files: list[str]) -> dict[str, FileVersion]:
        """Each file's size and modification time (nanoseconds), from the file system; none for
        a file that cannot be looked at (it is staged, and its staging says why it fails)."""
        found = {}
        for name in files:
            try:
                stat = os.stat(name)
            except OSError:
                continue
            found[name] = FileVersion(stat.st_size, str(stat.st_mtime_ns))
        return found

    def listing(self, folder: str) -> dict[str, str]:
        """Every file under a folder of the directory: its path → its path under the folder.
        A symbolic link in a loop is no file: skipped, with a warning."""
        base = str(self.root / folder)
        found = {}
        # os.walk (scandir) rather than Path.rglob: a tenth of the time on 20k song files.
        for directory, _, names in os.walk(base):
            under = os.path.relpath(directory, base).replace(os.sep, "/")
            for name in names:
                path = os.path.join(directory, name)
                if in_a_loop(path):
                    run_logger().warning("skipped %s: a loop of symbolic links", path)
                    continue
                found[path] = name if under == "." else f"{under}/{name}"
        return found

    def local_copies(self, files: list[str]) -> dict[str, str]:
        """Local files are read where they are."""
        return {name: name for name in files}

    def describe(self) -> str:
        """The directory."""
        return str(self.root)


def in_a_loop(path: str) -> bool:
    """Whether the path is a symbolic link that never reaches a file (a loop)."""
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False
