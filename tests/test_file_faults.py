"""File-system faults in a local source cost the file they touch, never the run: a file that
cannot be read (deleted after the run listed it, a dangling link) is a whole-file reject with its
reason, a loop of symbolic links is skipped with a warning, and every other file loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flows.etl import etl
from tasks.source.local import LocalSource
from tests.helpers import expected_from_json, query, table_counts

pytestmark = pytest.mark.usefixtures("prefect_server")

NOT_FOUND = "file not found: deleted after the run listed it, or a dangling symbolic link"


@pytest.fixture
def source(week_source: Path, tmp_path: Path) -> Path:
    """A copy of the generated week, the test's own to break."""
    return Path(shutil.copytree(week_source, tmp_path / "source"))


def rejects(db: Path) -> list[tuple[str, int, str]]:
    """The warehouse's rejects: file (under the source), line and reason."""
    rows = query(db, "select source_file, line_number, reason from load_rejects order by 1")
    return [(f.split("/source/", 1)[1], n, reason) for f, n, reason in rows]


def test_files_deleted_after_the_listing_are_rejects_and_the_rest_loads(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_file = sorted((source / "log_data").rglob("*.json"))[2]
    song_file = sorted((source / "song_data").rglob("*.json"))[0]
    list_files = LocalSource.run_files

    def list_then_lose_two(self: LocalSource, *dates: object):
        listed = list_files(self, *dates)
        event_file.unlink()
        song_file.unlink()
        return listed

    monkeypatch.setattr(LocalSource, "run_files", list_then_lose_two)
    db = tmp_path / "wh.duckdb"

    summary = etl(str(source), str(db))

    assert rejects(db) == [
        (str(event_file.relative_to(source)), 0, NOT_FOUND),
        (str(song_file.relative_to(source)), 0, NOT_FOUND),
    ]
    assert summary["staged"]["events"]["rejects"] == summary["staged"]["songs"]["rejects"] == 1
    # Every other file loaded: the figures of the source as it is now, without those two.
    assert table_counts(db) == expected_from_json(source).counts


def test_a_dangling_link_is_a_reject_and_a_loop_of_links_is_skipped(
    source: Path, week_source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    songs = sorted((source / "song_data").rglob("*.json"))[0].parent
    (songs / "TRLOOP.json").symlink_to(songs / "TRLOOP.json")
    (songs / "TRLOOPA.json").symlink_to(songs / "TRLOOPB.json")
    (songs / "TRLOOPB.json").symlink_to(songs / "TRLOOPA.json")
    days = source / "log_data" / "2018" / "11"
    (days / "2018-11-20-events.json").symlink_to(days / "gone.json")
    db = tmp_path / "wh.duckdb"

    etl(str(source), str(db))

    assert rejects(db) == [("log_data/2018/11/2018-11-20-events.json", 0, NOT_FOUND)]
    assert table_counts(db) == expected_from_json(week_source).counts
    skipped = [r.getMessage() for r in caplog.records if "loop of symbolic links" in r.getMessage()]
    assert sorted(skipped) == [
        f"skipped {songs / name}: a loop of symbolic links"
        for name in ("TRLOOP.json", "TRLOOPA.json", "TRLOOPB.json")
    ]
    assert all(os.path.islink(songs / name) for name in ("TRLOOP.json", "TRLOOPA.json"))
