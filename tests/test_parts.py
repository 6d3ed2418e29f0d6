"""A run in parts (tasks/run/parts.py): its files split by whole days within the warehouse's part
size, the song files with the first part; staged and transformed part after part in the run's
one transaction, it gives the tables, ledger, rejects and checks of the same run in one part."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

import tasks.run.pipeline
import tasks.run.transform
from flows.etl import etl
from tasks.common.progress import Progress, in_part
from tasks.run.parts import split_run
from tasks.run.quality import QualityCheckFailed, default_checks, reads_staged
from tasks.source.files import FileVersion, RunFiles
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse, size_in_bytes
from tests.helpers import snapshot

LOG = "/data/log_data/2018/11"


def run_files(sizes: dict[str, int]) -> RunFiles:
    """A run's files: event files of the given sizes (listed in this order), two song files."""
    names = [f"{LOG}/{name}" for name in sizes]
    songs = ["/data/song_data/A/A/A/TRA.json", "/data/song_data/A/A/B/TRB.json"]
    versions = {n: FileVersion(size, "v1") for n, size in zip(names, sizes.values(), strict=True)}
    return RunFiles(names, songs, versions=versions)


def event_names(part: RunFiles) -> list[str]:
    return [Path(name).name for name in part.event_files]


def test_a_run_without_a_part_size_or_within_it_is_one_part() -> None:
    files = run_files({"2018-11-01-events.json": 100, "2018-11-02-events.json": 100})
    assert split_run(files, None) == [files]
    assert split_run(files, 200) == [files]


def test_parts_hold_whole_days_in_order_within_the_part_size() -> None:
    files = run_files(
        {
            "2018-11-03-events.json": 101,
            "2018-11-01-events.json": 100,
            "2018-11-02-events.json": 60,
            "2018-11-02-events.json.gz": 61,
            "2018-11-04-events.json": 500,  # larger than a part: a part of its own
            "2018-11-05-events.json": 150,
        }
    )
    parts = split_run(files, 250)
    assert [event_names(p) for p in parts] == [
        ["2018-11-01-events.json", "2018-11-02-events.json", "2018-11-02-events.json.gz"],
        ["2018-11-03-events.json"],
        ["2018-11-04-events.json"],
        ["2018-11-05-events.json"],
    ]
    # Every event file once; the song files with the first part only; the listing's versions
    # (the ledger's) in each.
    assert sorted(n for p in parts for n in p.event_files) == sorted(files.event_files)
    assert [p.song_files for p in parts] == [files.song_files, [], [], []]
    assert all(p.versions == files.versions for p in parts)


def test_a_file_the_listing_gave_no_size_counts_as_empty() -> None:
    files = run_files({"2018-11-01-events.json": 100, "2018-11-02-events.json": 100})
    files.versions.pop(files.event_files[1])
    assert split_run(files, 100) == [files]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("768MB", 768_000_000),
        ("1GiB", 2**30),
        ("2.5 gb", 2_500_000_000),
        ("1000000B", 1_000_000),
        ("80%", None),
        ("lots", None),
    ],
)
def test_duckdb_memory_limits_read_as_sizes(limit: str, expected: int | None) -> None:
    assert size_in_bytes(limit) == expected


def test_duckdb_parts_are_two_thirds_of_its_memory_limit() -> None:
    assert DuckDBWarehouse(memory_limit="768MB").part_bytes() == 512_000_000
    assert DuckDBWarehouse(memory_limit="80%").part_bytes() is None


def test_the_checks_run_after_each_part_are_those_reading_what_it_staged() -> None:
    assert sorted(c.name for c in default_checks() if reads_staged(c)) == [
        "relationships_songplays_start_time__time_start_time",
        "row_count_artists",
        "row_count_songplays",
        "row_count_songs",
        "row_count_time",
        "row_count_users",
        "unique_songplays_songplay_id",
        "unique_time_start_time",
    ]


@pytest.fixture
def day_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Runs on DuckDB go in parts of a day each (any event file is over a byte); the number of
    parts of each run is noted."""
    noted: list[int] = []

    def noting(files: RunFiles, part_bytes: int | None) -> list[RunFiles]:
        parts = split_run(files, part_bytes)
        noted.append(len(parts))
        return parts

    monkeypatch.setattr(DuckDBWarehouse, "part_bytes", lambda self: 1)
    monkeypatch.setattr(tasks.run.pipeline, "split_run", noting)
    return noted


@pytest.fixture
def flawed_week(week_source: Path, tmp_path: Path) -> Path:
    """The generated week with a malformed line in two days' files, and the sixth day's file a
    copy of the third's (a duplicate file, rejected whole)."""
    root = tmp_path / "source"
    shutil.copytree(week_source, root)
    days = root / "log_data" / "2018" / "11"
    for day in (2, 5):
        events = days / f"2018-11-0{day}-events.json"
        events.write_text(events.read_text(encoding="utf-8") + '{"ts": oops}\n', encoding="utf-8")
    shutil.copyfile(days / "2018-11-03-events.json", days / "2018-11-06-events.json")
    return root


def bookkeeping(db: Path) -> dict[str, list[tuple]]:
    """The tables a run keeps besides the star tables, without its run id and times."""
    queries = {
        "loaded_files": "select source_file, kind, size, version, records from loaded_files",
        "song_catalog": "select * from song_catalog",
        "songplay_songs": "select * from songplay_songs",
        "load_rejects": "select source_file, line_number, reason, raw_line from load_rejects",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: sorted(con.execute(q).fetchall(), key=repr) for t, q in queries.items()}


def test_a_run_in_parts_gives_the_run_in_one_part(
    prefect_server, flawed_week: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    whole = tmp_path / "whole.duckdb"
    in_one = etl(str(flawed_week), str(whole))
    noted = request.getfixturevalue("day_parts")
    parted = tmp_path / "parts.duckdb"
    in_parts = etl(str(flawed_week), str(parted))

    assert noted == [5]  # a part a day, the duplicate's with its original's
    assert snapshot(parted) == snapshot(whole)
    assert bookkeeping(parted) == bookkeeping(whole)
    for kind in ("events", "songs"):
        one, parts = in_one["staged"][kind], in_parts["staged"][kind]
        for figure in ("files", "rows", "rejects", "reject_samples", "records_by_file"):
            assert parts[figure] == one[figure], (kind, figure)
    assert in_parts["staged"]["events"]["rejects"] == 3
    assert bookkeeping(parted)["load_rejects"][-1][1:3] == (
        0,
        "duplicate file: same content as "
        f"{flawed_week / 'log_data' / '2018' / '11' / '2018-11-03-events.json'}",
    )
    assert in_parts["checks"] == in_one["checks"]
    assert all(c["passed"] for c in in_one["checks"])
    assert in_parts["counts"] == in_one["counts"]
    inserted = {c["table"]: c["inserted"] for c in in_parts["changes"]}
    assert inserted["songplays"] == in_one["counts"]["songplays"]
    # The seconds of the parts add up in the run's stages.
    assert list(in_parts["seconds"])[:6] == [
        "list files",
        "warehouse lock",
        "hold warehouse",
        "create tables",
        "stage",
        "transform + check",
    ]


def test_days_loaded_again_in_parts_change_nothing(
    prefect_server, week_source: Path, tmp_path: Path, day_parts: list[int]
) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db), date(2018, 11, 1), date(2018, 11, 3))
    loaded = snapshot(db)
    etl(str(week_source), str(db), reload=True)
    etl(str(week_source), str(db), date(2018, 11, 1), date(2018, 11, 3), reload=True)
    assert day_parts == [3, 6, 3]
    full = tmp_path / "full.duckdb"
    etl(str(week_source), str(full))
    assert snapshot(db) == snapshot(full) != loaded


@pytest.fixture
def failing_transforms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the transform folder, with a statement added by each test."""
    folder = tmp_path / "transform"
    shutil.copytree(tasks.run.transform.TRANSFORM_DIR, folder)
    monkeypatch.setattr(tasks.run.transform, "TRANSFORM_DIR", folder)
    return folder


@pytest.mark.parametrize(
    ("statement", "check"),
    [
        # A duplicate play in the fourth day's part only: found by that part's checks, kept to
        # its days.
        (
            "insert into songplays select * from songplays "
            "where start_time >= '2018-11-04' and start_time < '2018-11-05' limit 1;",
            "unique_songplays_songplay_id",
        ),
        # A duplicate user: found by the checks of every row, at the end.
        ("insert into users select * from users limit 1;", "unique_users_user_id"),
    ],
    ids=["in-a-part", "at-the-end"],
)
def test_a_check_failing_in_a_run_in_parts_leaves_the_tables_as_they_were(
    prefect_server,
    week_source: Path,
    tmp_path: Path,
    day_parts: list[int],
    failing_transforms: Path,
    statement: str,
    check: str,
) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db), date(2018, 11, 1), date(2018, 11, 1))
    before = snapshot(db)
    (failing_transforms / "99_zz_injected.sql").write_text(statement + "\n")
    with pytest.raises(QualityCheckFailed, match=check):
        etl(str(week_source), str(db), date(2018, 11, 2), date(2018, 11, 6))
    assert day_parts[-1] == 5
    assert snapshot(db) == before


def test_progress_in_a_part_of_a_run_names_its_part() -> None:
    with in_part(2, 3):
        inside = Progress("staging events", 1, "files")
    with in_part(1, 1):
        alone = Progress("staging events", 1, "files")
    after = Progress("staging events", 1, "files")
    assert (inside.title, inside.key) == (
        "staging events (part 2 of 3)",
        "sparkify-progress-staging-events-part-2-of-3",
    )
    assert (
        (alone.title, alone.key)
        == (after.title, after.key)
        == (
            "staging events",
            "sparkify-progress-staging-events",
        )
    )


def test_days_with_files_of_one_size_go_in_one_part() -> None:
    # Staging rejects a file with the content of another of its run: only files of one size
    # can be such twins, so their days stay together, wherever they are.
    files = run_files(
        {
            "2018-11-01-events.json": 100,
            "2018-11-02-events.json": 77,
            "2018-11-03-events.json": 100,
            "2018-11-04-events.json": 120,
            "2018-11-05-events.json": 77,
            "2018-11-06-events.json": 0,
            "2018-11-07-events.json": 0,
        }
    )
    parts = split_run(files, 150)
    assert [event_names(p) for p in parts] == [
        ["2018-11-01-events.json", "2018-11-03-events.json"],
        ["2018-11-02-events.json", "2018-11-05-events.json"],
        ["2018-11-04-events.json", "2018-11-06-events.json", "2018-11-07-events.json"],
    ]
