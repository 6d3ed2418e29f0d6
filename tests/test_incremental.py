"""Incremental loads: a run stages only the files new or changed since the warehouse loaded them
(the ledger, loaded_files), a changed song file's content replaces what it loaded before, plays
loaded earlier are matched again when the catalog changes, and `reload` stages every file. A
history of incremental runs gives exactly the tables of one full load of the final files, on
DuckDB (a local directory: modification times) and on the PostgreSQL stand-in for Redshift
(S3 on moto: ETags)."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from flows.etl import etl
from tasks.source.s3 import S3Source
from tests.conftest import upload_tree
from tests.helpers import event_records, query, snapshot
from tests.postgres_redshift import (
    PostgresRedshiftWarehouse,
    create_database,
    drop_database,
    stand_in,
    star_rows,
)

BLOCK_TYPE = PostgresRedshiftWarehouse.get_block_type_slug()
DAY = [date(2018, 11, d) for d in range(1, 7)]


def played_song_files(root: Path) -> list[Path]:
    """The source's song files whose song some NextSong event plays (title, artist, length)."""
    played = {
        (e["song"], e["artist"], e["length"])
        for e in event_records(root)
        if e["page"] == "NextSong"
    }
    return [
        path
        for path in sorted((root / "song_data").rglob("*.json"))
        if (lambda s: (s["title"], s["artist_name"], s["duration"]) in played)(
            json.loads(path.read_text(encoding="utf-8"))
        )
    ]


def rewrite(path: Path, **changes: Any) -> None:
    """Change fields of a one-record JSON file."""
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**record, **changes}), encoding="utf-8")


class History:
    """A source directory that changes between runs: first without some played song files,
    then (`finish`) with them back, one song's title corrected, another song credited to a new
    artist id, and a play added to an already loaded day."""

    def __init__(self, week_source: Path, root: Path) -> None:
        self.root = root
        shutil.copytree(week_source, root)
        played = played_song_files(root)
        assert len(played) >= 6, "the generated week has too few played songs for this test"
        self.held_back = played[:3]
        self.retitled, self.recredited = played[3], played[4]
        self.aside = root.parent / f"{root.name}-aside"
        self.aside.mkdir()
        for path in self.held_back:
            path.rename(self.aside / path.name)

    def finish(self) -> None:
        """The final files."""
        for path in self.held_back:
            (self.aside / path.name).rename(path)
        title = json.loads(self.retitled.read_text(encoding="utf-8"))["title"]
        rewrite(self.retitled, title=f"{title} (corrected)")
        rewrite(self.recredited, artist_id="ARCREDITED00001")
        day_two = self.root / "log_data" / "2018" / "11" / "2018-11-02-events.json"
        lines = day_two.read_text(encoding="utf-8").splitlines()
        extra = json.loads(next(line for line in lines if '"NextSong"' in line))
        extra.update(itemInSession=extra["itemInSession"] + 500, ts=extra["ts"] + 1)
        day_two.write_text("\n".join([*lines, json.dumps(extra)]) + "\n", encoding="utf-8")


# (finished source?, start, end) of each incremental run: days 1-3 on the first files, days
# 4-6 on the final ones, then every day (only the changed day 2 is staged again).
RUNS = ((False, DAY[0], DAY[2]), (True, DAY[3], DAY[5]), (True, None, None))


def test_incremental_runs_on_duckdb_give_the_full_load(
    prefect_server, week_source: Path, tmp_path: Path
) -> None:
    history = History(week_source, tmp_path / "source")
    db = tmp_path / "incremental.duckdb"
    summaries = []
    for finished, start, end in RUNS:
        if finished and any(history.aside.iterdir()):
            history.finish()
        summaries.append(etl(str(history.root), str(db), start, end))
    full = tmp_path / "full.duckdb"
    etl(str(history.root), str(full))
    assert snapshot(db) == snapshot(full)
    assert_play_songs_follow_plays(db)

    first, second, third = summaries
    assert (first["event_files"], first["song_files"]) == (3, 57)
    # The second run stages its three days, the three songs held back and the two changed.
    assert (second["event_files"], second["song_files"]) == (3, 5)
    assert second["unchanged_files"] == {"events": 0, "songs": 55}
    # The third stages only the changed day; the five others and every song file are skipped.
    assert (third["event_files"], third["song_files"]) == (1, 0)
    assert third["unchanged_files"] == {"events": 5, "songs": 60}

    # The corrected title is the song's, and the song credited anew belongs to its new artist.
    corrected = json.loads(history.retitled.read_text(encoding="utf-8"))
    assert query(db, f"select title from songs where song_id = '{corrected['song_id']}'") == [
        (corrected["title"],)
    ]
    recredited = json.loads(history.recredited.read_text(encoding="utf-8"))["song_id"]
    assert query(db, f"select artist_id from songs where song_id = '{recredited}'") == [
        ("ARCREDITED00001",)
    ]
    assert query(
        db, f"select distinct artist_id from songplays where song_id = '{recredited}'"
    ) == [("ARCREDITED00001",)]
    # Plays of the first days were matched to the songs that arrived later.
    held = [json.loads(p.read_text(encoding="utf-8"))["song_id"] for p in history.held_back]
    matched = query(
        db,
        "select count(*) from songplays where start_time < '2018-11-04' and song_id in "
        f"({', '.join(repr(h) for h in held)})",
    )
    assert matched[0][0] > 0


def test_ledger_holds_each_file_with_its_version_and_records(
    prefect_server, week_source: Path, tmp_path: Path
) -> None:
    db = tmp_path / "wh.duckdb"
    summary = etl(str(week_source), str(db))
    rows = query(
        db, "select source_file, kind, size, version, records, flow_run_id from loaded_files"
    )
    assert len(rows) == summary["event_files"] + summary["song_files"] == 6 + 60
    by_file = {row[0]: row[1:] for row in rows}
    day_one = week_source / "log_data" / "2018" / "11" / "2018-11-01-events.json"
    kind, size, version, records, run_id = by_file[str(day_one)]
    stat = day_one.stat()
    lines = [line for line in day_one.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert (kind, size, version, records) == (
        "events",
        stat.st_size,
        str(stat.st_mtime_ns),
        len(lines),
    )
    assert run_id
    assert uuid.UUID(run_id)
    assert {row[1:] for row in rows if row[1] == "songs"} == {
        (row[1], row[2], row[3], 1, row[5]) for row in rows if row[1] == "songs"
    }


def test_unchanged_files_are_skipped_and_reload_stages_them_again(
    prefect_server, week_source: Path, tmp_path: Path
) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db))
    loaded = snapshot(db)
    again = etl(str(week_source), str(db))
    assert (again["event_files"], again["song_files"]) == (0, 0)
    assert again["unchanged_files"] == {"events": 6, "songs": 60}
    assert snapshot(db) == loaded
    reloaded = etl(str(week_source), str(db), reload=True)
    assert (reloaded["event_files"], reloaded["song_files"]) == (6, 60)
    assert reloaded["unchanged_files"] == {"events": 0, "songs": 0}
    assert snapshot(db) == loaded
    assert_play_songs_follow_plays(db)


def assert_play_songs_follow_plays(db: Path) -> None:
    """songplay_songs holds one row for each play of songplays, by key and start time, and no
    other: its rows go and come with the plays' rows."""
    keys = "select songplay_id, start_time from {} order by songplay_id, start_time"
    plays = query(db, keys.format("songplays"))
    assert plays
    assert query(db, keys.format("songplay_songs")) == plays


@pytest.fixture
def second_database(postgres_server: str):
    """Another database on the stand-in's server, for the full load."""
    name = "sparkify_" + uuid.uuid4().hex[:12]
    yield create_database(postgres_server, name)
    drop_database(postgres_server, name)


def test_incremental_runs_on_postgres_give_the_full_load(
    prefect_server,
    postgres_database: str,
    second_database: str,
    aws_credentials,
    bucket_name: str,
    week_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "cache"))
    aws_credentials.save("moto-test", overwrite=True)
    client = S3Source(bucket_name, "", aws_credentials).client()
    client.create_bucket(Bucket=bucket_name)
    history = History(week_source, tmp_path / "source")
    uri = f"s3://{bucket_name}/raw"

    def block(url: str, name: str) -> str:
        stand_in(url, aws_credentials).save(name, overwrite=True)
        return f"{BLOCK_TYPE}/{name}"

    incremental = block(postgres_database, f"inc-{bucket_name}")
    summaries = []
    for finished, start, end in RUNS:
        if finished and any(history.aside.iterdir()):
            history.finish()
        upload_tree(client, bucket_name, history.root, "raw")
        summaries.append(etl(uri, incremental, start, end, aws_credentials="moto-test"))
    etl(uri, block(second_database, f"full-{bucket_name}"), aws_credentials="moto-test")

    after = star_rows(create_engine(postgres_database))
    assert after == star_rows(create_engine(second_database))
    assert all(after.values())
    assert [(s["event_files"], s["song_files"]) for s in summaries] == [(3, 57), (3, 5), (1, 0)]
