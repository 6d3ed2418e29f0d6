"""Re-matching plays of earlier runs when the song catalog changes (07_rematched_plays.sql and the
update of 08_songplays.sql), as PostgreSQL plans them on the stand-in for Redshift: songplays and
songplay_songs are joined on start_time, their distribution and sort key, as well as on the play's
key, and read within the start times of the plays that can change. Their results are compared
with DuckDB's by tests/test_postgres.py and with a full load by tests/test_incremental.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, insert

from sql import model
from tasks.run.transform import TRANSFORM_DIR, run_transform_file, split_statements

pytestmark = pytest.mark.postgres

T0 = datetime(2018, 11, 1)
DAYS = 30
SONGS = 10
# The song whose records this run changes: its plays are on the last day only.
CHANGED = SONGS - 1


def song(n: int) -> dict[str, Any]:
    """Song n's catalog record."""
    return {
        "song_id": f"SO{n:05d}",
        "title": f"Title {n}",
        "artist_id": f"AR{n:05d}",
        "artist_name": f"Artist {n}",
        "duration": 200.0 + n,
    }


def plays() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each play's songplays row and songplay_songs row: a month of plays of every song but the
    changed one, whose plays are on the last day."""
    for day in range(DAYS):
        for n in range(SONGS):
            if (n == CHANGED) != (day == DAYS - 1):
                continue
            for item in range(5):
                start = T0 + timedelta(days=day, minutes=n * 5 + item)
                key = f"{day:03d}{n:03d}{item:026d}"
                record = song(n)
                yield (
                    {
                        "songplay_id": key,
                        "start_time": start,
                        "user_id": 1,
                        "level": "free",
                        "song_id": record["song_id"],
                        "artist_id": record["artist_id"],
                        "session_id": day,
                        "location": None,
                        "user_agent": None,
                    },
                    {
                        "songplay_id": key,
                        "start_time": start,
                        "song": record["title"],
                        "artist": record["artist_name"],
                        "length": record["duration"],
                    },
                )


@pytest.fixture
def catalog_changed(postgres_database: str) -> Iterator[Connection]:
    """A connection to a stand-in whose plays were loaded by earlier runs, in a transaction
    where this run changed one song's artist (catalog_changes, as 00_song_catalog.sql makes it)
    and song_matches is made, as the transforms before 07_rematched_plays.sql leave them."""
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        model.metadata.create_all(conn)
        rows = list(plays())
        conn.execute(insert(model.songplays), [play for play, _ in rows])
        conn.execute(insert(model.songplay_songs), [logged for _, logged in rows])
        songs = [song(n) for n in range(SONGS)]
        conn.execute(
            insert(model.song_catalog),
            [{"source_file": f"TR{n}.json", **record} for n, record in enumerate(songs)],
        )
        conn.execute(
            insert(model.songs),
            [{k: r[k] for k in ("song_id", "title", "artist_id", "duration")} for r in songs],
        )
        conn.exec_driver_sql("analyze")
        columns = "song_id, title, artist_id, artist_name, duration"
        conn.exec_driver_sql(
            f"create temp table catalog_changes as select {columns} from song_catalog "
            "where song_id = %(song_id)s",
            {"song_id": song(CHANGED)["song_id"]},
        )
        run_transform_file(conn, TRANSFORM_DIR / "06_song_matches.sql")
        yield conn


def plan_of(conn: Connection, statement: str) -> dict[str, Any]:
    """PostgreSQL's plan of a statement (not run)."""
    plan = conn.exec_driver_sql("explain (format json) " + statement).scalar_one()
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def ctes_of(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The plans of the CTEs PostgreSQL computes once (InitPlans named `CTE name`), by name."""
    found = {}
    for child in node.get("Plans", []):
        if child.get("Subplan Name", "").startswith("CTE "):
            found[child["Subplan Name"].removeprefix("CTE ")] = child
        found.update(ctes_of(child))
    return found


def relations(node: dict[str, Any], ctes: dict[str, dict[str, Any]]) -> set[str]:
    """The tables a plan node reads, itself, below, and through the CTEs it scans."""
    found = {node["Relation Name"]} if "Relation Name" in node else set()
    if node.get("Node Type") == "CTE Scan":
        found |= relations(ctes[node["CTE Name"]], ctes)
    for child in node.get("Plans", []):
        found |= relations(child, ctes)
    return found


def joins_of(plan: dict[str, Any], left: str, right: str) -> list[dict[str, Any]]:
    """The join nodes whose one side reads `left` and not `right`, the other `right` and not
    `left` (their InitPlans are no side of the join)."""
    ctes = ctes_of(plan)
    found = []
    nodes = [plan]
    while nodes:
        node = nodes.pop()
        children = node.get("Plans", [])
        nodes += children
        sides = [
            relations(c, ctes) for c in children if c["Parent Relationship"] in ("Outer", "Inner")
        ]
        if len(sides) == 2 and any(
            left in a and right not in a and right in b and left not in b
            for a, b in (sides, sides[::-1])
        ):
            found.append(node)
    return found


def conditions(join: dict[str, Any]) -> str:
    """A join node's conditions."""
    return " ".join(join[k] for k in ("Hash Cond", "Merge Cond", "Join Filter") if k in join)


def scans_of(node: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The nodes below a node that scan a table."""
    found = [node] if "Scan" in node["Node Type"] and node.get("Relation Name") == table else []
    for child in node.get("Plans", []):
        found += scans_of(child, table)
    return found


def statement_of(file: str, verb: str) -> str:
    """The statement of a transform file that starts with a verb."""
    [statement] = [
        s for s in split_statements((TRANSFORM_DIR / file).read_text()) if s.startswith(verb)
    ]
    return statement


def test_plays_matched_to_changed_songs_are_read_by_key_and_start_time(
    catalog_changed: Connection,
) -> None:
    conn = catalog_changed
    plan = plan_of(conn, statement_of("07_rematched_plays.sql", "create temp table"))
    # songplays and songplay_songs are joined on start_time too, never on the key alone.
    [join] = joins_of(plan, "songplays", "songplay_songs")
    assert "start_time" in conditions(join), json.dumps(join, indent=1)
    # The songplay_songs read for that join keeps only the start times of the changed plays.
    [played] = scans_of(join, "songplay_songs")
    assert "start_time" in played.get("Filter", ""), json.dumps(played, indent=1)


def test_the_update_reads_songplays_within_the_rematched_plays_start_times(
    catalog_changed: Connection,
) -> None:
    conn = catalog_changed
    run_transform_file(conn, TRANSFORM_DIR / "07_rematched_plays.sql")
    changed = song(CHANGED)["song_id"]
    rematched = conn.exec_driver_sql("select song_id, count(*) from rematched_plays group by 1")
    assert rematched.all() == [(changed, 5)]  # the changed song's plays, matched again
    plan = plan_of(conn, statement_of("08_songplays.sql", "update"))
    [join] = joins_of(plan, "songplays", "rematched_plays")
    assert "start_time" in conditions(join), json.dumps(join, indent=1)
    [scan] = scans_of(plan, "songplays")
    assert "start_time" in scan.get("Filter", ""), json.dumps(scan, indent=1)
