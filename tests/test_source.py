"""Choosing the files of a run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tasks.source.files import event_file_date, select_event_files
from tasks.source.local import LocalSource

NAMES = [
    "log_data/2018/11/2018-11-02-events.json",
    "log_data/2018/11/2018-11-01-events.json",
    "log_data/2018/12/2018-12-01-events.json",
    "log_data/2018/11/notes.json",
    "log_data/2018/11/2018-11-31-events.json",
]


def test_event_file_date_reads_the_name() -> None:
    assert event_file_date(NAMES[0]) == date(2018, 11, 2)
    assert event_file_date("log_data/2018/11/notes.json") is None
    assert event_file_date("2018-11-31-events.json") is None  # no such day


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, [NAMES[1], NAMES[0], NAMES[2]]),
        (date(2018, 11, 2), None, [NAMES[0], NAMES[2]]),
        (None, date(2018, 11, 1), [NAMES[1]]),
        (date(2018, 11, 2), date(2018, 11, 30), [NAMES[0]]),
        (date(2019, 1, 1), None, []),
    ],
)
def test_select_event_files_by_inclusive_range(start, end, expected) -> None:
    assert select_event_files(NAMES, start, end) == expected


def test_local_source_lists_run_files(tmp_path: Path) -> None:
    for name in NAMES + ["song_data/A/B/C/TRABC.json", "song_data/A/A/A/TRAAA.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    files = LocalSource(tmp_path).run_files(date(2018, 11, 1), date(2018, 11, 30))
    assert files.event_files == [str(tmp_path / NAMES[1]), str(tmp_path / NAMES[0])]
    assert files.song_files == [
        str(tmp_path / "song_data/A/A/A/TRAAA.json"),
        str(tmp_path / "song_data/A/B/C/TRABC.json"),
    ]


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalSource(tmp_path / "nope").run_files(None, None)
