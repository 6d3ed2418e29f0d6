"""Transforms: the staged plays they share, and what the run reports of them."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import insert, select, text

from sql import model
from tasks.run.transform import run_transforms, transform_files
from tests import test_quality

T0 = test_quality.T0
# T0 as the log carries it: epoch milliseconds (2018-11-01 10:00:00 UTC).
T0_MS = 1541066400000
# The data tests' fixture: a DuckDB connection with the model's tables, inside a transaction.
conn = test_quality.conn


def event(page: str, user_id: str | None, item: int) -> dict:
    return {
        "page": page,
        "user_id": user_id,
        "ts": T0,
        "ts_ms": T0_MS,
        "session_id": 5,
        "item_in_session": item,
    }


def test_staged_plays_come_before_the_tables_that_read_them() -> None:
    names = [p.stem.split("_", 1)[1] for p in transform_files()]
    assert names.index("staged_plays") < names.index("songplays") < names.index("time")


def test_staged_plays_are_the_nextsong_events_of_identified_users(conn) -> None:
    conn.execute(
        insert(model.staging_events),
        [
            event("NextSong", "7", 0),
            event("NextSong", "", 1),  # logged out
            event("NextSong", None, 2),  # logged out, as DuckDB's staging writes it
            event("Home", "7", 3),
        ],
    )
    changes = run_transforms(conn)

    plays = conn.execute(text("select songplay_id, user_id from staged_plays")).all()
    assert len(plays) == 1
    assert plays[0].user_id == 7
    # Golden key, computed here from the event's raw fields alone: md5 of sessionId, itemInSession,
    # userId and ts as the log's integer of epoch milliseconds, joined by '|' (no engine's
    # timestamp text, which depends on the engine and DATESTYLE).
    key = hashlib.md5(b"5|0|7|1541066400000").hexdigest()
    assert plays[0].songplay_id == key
    assert conn.execute(select(model.songplays.c.songplay_id)).scalars().all() == [key]
    assert conn.execute(select(model.time.c.start_time)).scalars().all() == [T0]
    # A temp relation the files prepare is no table change of the run.
    assert [c.table for c in changes] == ["artists", "songs", "users", "songplays", "time"]
    assert {c.table: c.inserted for c in changes}["songplays"] == 1


def test_a_second_run_on_the_same_connection_rebuilds_the_staged_plays(conn) -> None:
    conn.execute(insert(model.staging_events), [event("NextSong", "7", 0)])
    run_transforms(conn)
    conn.execute(insert(model.staging_events), [event("NextSong", "8", 1)])
    changes = {c.table: c for c in run_transforms(conn)}
    assert conn.execute(text("select count(*) from staged_plays")).scalar_one() == 2
    assert (changes["songplays"].deleted, changes["songplays"].inserted) == (1, 2)


def test_a_play_logged_twice_is_one_songplay_chosen_by_its_values(conn) -> None:
    repeated = [{**event("NextSong", "7", 0), "location": loc} for loc in ("Zeta", None, "Alpha")]
    conn.execute(
        insert(model.staging_events), [*repeated, {**event("NextSong", "7", 1), "location": None}]
    )
    changes = {c.table: c for c in run_transforms(conn)}

    kept = conn.execute(
        select(model.songplays.c.location).where(model.songplays.c.location.is_not(None))
    ).scalars()
    assert list(kept) == ["Alpha"]  # the smallest value, not the first or the NULL one
    assert changes["songplays"].inserted == 2  # the repeated play once, and item 1


def test_each_file_names_at_its_top_the_temp_tables_it_reads_which_earlier_files_make() -> None:
    """A transform file's leading comment ends with `-- reads: a, b` naming every temp table
    (made by another file) its statements read, in order, and each one was made before it."""
    files = transform_files()
    made_by = {
        name: path.name
        for path in files
        for name in re.findall(r"create temp table (\w+)", path.read_text())
    }
    assert {"staged_plays", "replaced_plays", "song_matches"} <= set(made_by)
    for path in files:
        text = path.read_text()
        makes = set(re.findall(r"create temp table (\w+)", text))
        body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        read = sorted(n for n in made_by if n not in makes and re.search(rf"\b{n}\b", body))
        header = re.search(r"\A(?:--[^\n]*\n)*", text).group(0)
        declared = re.findall(r"^-- reads: (.*)$", header, re.MULTILINE)
        assert declared == ([", ".join(read)] if read else []), path.name
        assert all(made_by[n] < path.name for n in read), path.name
