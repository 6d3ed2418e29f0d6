"""Choosing the files of a run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tasks.source.files import (
    RunFiles,
    SkippedFile,
    SourceLayoutError,
    event_file_date,
    file_notices,
    is_gzipped,
    select_event_files,
)
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
    for name in [*NAMES, "song_data/A/B/C/TRABC.json", "song_data/A/A/A/TRAAA.json"]:
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


def test_event_file_date_reads_gzipped_and_any_case_of_the_suffix() -> None:
    assert event_file_date("log_data/2018/11/2018-11-02-events.json.gz") == date(2018, 11, 2)
    assert event_file_date("log_data/2018/11/2018-11-02-events.JSON") == date(2018, 11, 2)
    assert event_file_date("log_data/2018/11/2018-11-02-Events.Json.GZ") == date(2018, 11, 2)
    assert event_file_date("log_data/2018/11/old-2018-11-02-events.json") is None
    assert event_file_date("log_data/2018/11/2018-11-02-events.json.bak") is None
    assert [is_gzipped(n) for n in ("a.json.gz", "a.JSON.GZ", "a.json")] == [True, True, False]


def write(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")


def test_local_source_reads_gzipped_and_upper_case_files_and_skips_the_rest(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        [
            "log_data/2018/11/2018-11-01-events.json",
            "log_data/2018/11/2018-11-02-events.json.gz",
            "log_data/2018/11/2018-11-03-events.JSON",
            "log_data/2018/12/2018-12-01-events.json",  # outside the dates: not this run's
            "log_data/2018/11/notes.json",
            "log_data/2018/11/2018-11-31-events.json",
            "log_data/2018/11/2018-11-04-events.csv",
            "log_data/2018/11/.2018-11-05-events.json",
            "log_data/.ipynb_checkpoints/2018-11-06-events.json",
            "song_data/A/B/C/TRABC.json",
            "song_data/A/B/C/TRABD.json.gz",
            "song_data/A/B/C/TRABE.JSON",
            "song_data/A/B/C/README.md",
            "song_data/.DS_Store",
        ],
    )
    files = LocalSource(tmp_path).run_files(date(2018, 11, 1), date(2018, 11, 30))
    assert files.event_files == [
        str(tmp_path / "log_data/2018/11/2018-11-01-events.json"),
        str(tmp_path / "log_data/2018/11/2018-11-02-events.json.gz"),
        str(tmp_path / "log_data/2018/11/2018-11-03-events.JSON"),
    ]
    assert files.song_files == [
        str(tmp_path / f"song_data/A/B/C/{name}")
        for name in ("TRABC.json", "TRABD.json.gz", "TRABE.JSON")
    ]
    assert {(Path(s.name).relative_to(tmp_path).as_posix(), s.reason) for s in files.skipped} == {
        ("log_data/2018/11/notes.json", "name is not YYYY-MM-DD-events.json (or .json.gz)"),
        ("log_data/2018/11/2018-11-31-events.json", "no such day in the calendar"),
        ("log_data/2018/11/2018-11-04-events.csv", "not a .json or .json.gz file"),
        ("log_data/2018/11/.2018-11-05-events.json", "hidden file or folder"),
        ("log_data/.ipynb_checkpoints/2018-11-06-events.json", "hidden file or folder"),
        ("song_data/A/B/C/README.md", "not a .json or .json.gz file"),
        ("song_data/.DS_Store", "hidden file or folder"),
    }
    assert [s.name for s in files.skipped] == sorted(s.name for s in files.skipped)
    # Days 4 to 30 of the requested month hold no event file.
    assert files.missing_days[:2] == [date(2018, 11, 4), date(2018, 11, 5)]
    assert len(files.missing_days) == 27


@pytest.mark.parametrize(
    ("start", "end", "missing"),
    [
        (date(2018, 11, 1), date(2018, 11, 3), [date(2018, 11, 2)]),
        (date(2018, 11, 3), date(2018, 11, 3), []),
        (date(2018, 11, 1), None, []),  # an open range asks for no particular day
        (None, None, []),
    ],
)
def test_requested_days_without_an_event_file_are_listed(tmp_path: Path, start, end, missing):
    write(tmp_path, ["log_data/2018/11/2018-11-01-events.json", "log_data/2018-11-03-events.json"])
    assert LocalSource(tmp_path).run_files(start, end).missing_days == missing


def test_a_source_without_log_data_is_a_one_line_error_naming_the_source_and_the_fix(
    tmp_path: Path,
) -> None:
    write(tmp_path, ["song_data/A/B/C/TRABC.json"])
    with pytest.raises(SourceLayoutError) as raised:
        LocalSource(tmp_path).run_files(None, None)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path} has no log_data/ folder: ")
    assert "--source" in message
    assert "song_data/" in message
    # An empty log_data/ is the layout, with no event yet: not an error.
    (tmp_path / "log_data").mkdir()
    assert LocalSource(tmp_path).run_files(None, None).event_files == []


def test_notices_name_each_skipped_file_and_missing_day_then_count_the_rest() -> None:
    files = RunFiles(
        [],
        [],
        [SkippedFile(f"log_data/{n}.txt", "not a .json or .json.gz file") for n in range(3)]
        + [SkippedFile("song_data/.DS_Store", "hidden file or folder")],
        [date(2018, 11, d) for d in (4, 5, 6)],
    )
    assert file_notices(files, shown=2) == [
        ("skipped file", "log_data/0.txt: not a .json or .json.gz file"),
        ("skipped file", "log_data/1.txt: not a .json or .json.gz file"),
        ("skipped file", "2 more: 1 hidden file or folder, 1 not a .json or .json.gz file"),
        ("missing day", "2018-11-04: requested, but no event file holds it"),
        ("missing day", "2018-11-05: requested, but no event file holds it"),
        ("missing day", "1 more"),
    ]
    assert file_notices(RunFiles(["a"], ["b"])) == []
