"""Small shared assertion helpers: what is in a DuckDB warehouse, and what the JSON says."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun

from tests.conftest import PROJECT_ROOT

STAR_TABLES = ("songplays", "users", "songs", "artists", "time")


def table_counts(db: Path) -> dict[str, int]:
    """Row counts of the star tables in a DuckDB file."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in STAR_TABLES}


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every star table's rows, sorted, for comparing two warehouses."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr) for t in STAR_TABLES
        }


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of one query on a DuckDB file (read-only), with its bind values."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def event_records(source: Path) -> Iterator[dict[str, Any]]:
    """Every event of a source directory, parsed with the standard library."""
    for path in sorted((source / "log_data").rglob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def song_records(source: Path) -> list[dict[str, Any]]:
    """Every song record of a source directory."""
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((source / "song_data").rglob("*.json"))
    ]


@dataclass
class Expected:
    """Figures computed in plain Python from the JSON, independent of the project's SQL."""

    counts: dict[str, int]
    matched_plays: int
    paid_users: int
    user_levels: dict[int, str]


def expected_from_json(source: Path) -> Expected:
    """What the star schema must hold after loading every file of a source directory."""
    events = list(event_records(source))
    songs = song_records(source)
    catalog = {(s["title"], s["artist_name"], s["duration"]) for s in songs}
    plays = {}
    latest: dict[int, tuple[int, str]] = {}
    for e in events:
        if e["userId"] == "":
            continue
        user = int(e["userId"])
        if user not in latest or e["ts"] >= latest[user][0]:
            latest[user] = (e["ts"], e["level"])
        if e["page"] == "NextSong":
            key = (e["sessionId"], e["itemInSession"], e["userId"], e["ts"])
            plays[key] = (e["song"], e["artist"], e["length"])
    levels = {user: level for user, (_, level) in latest.items()}
    return Expected(
        counts={
            "songplays": len(plays),
            "users": len(latest),
            "songs": len({s["song_id"] for s in songs}),
            "artists": len({s["artist_id"] for s in songs}),
            "time": len({key[3] for key in plays}),
        },
        matched_plays=sum(1 for play in plays.values() if play in catalog),
        paid_users=sum(1 for level in levels.values() if level == "paid"),
        user_levels=levels,
    )


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python flows/SCRIPT ARGS...` from the project's root, as a user does."""
    return subprocess.run(
        [sys.executable, f"flows/{script}", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def task_runs(flow_run_id: uuid.UUID, expected: set[str]) -> list[TaskRun]:
    """The task runs of the flow run, once every expected task (by name) is recorded in a final
    state (the server records task runs from their events, in batches, a moment after they end)."""
    final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
    deadline = time.monotonic() + 60
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        states = {task_name(run): run.state_type.value for run in runs}
        if all(states.get(name) in final for name in expected) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def task_run_states(flow_run_id: uuid.UUID, expected: set[str]) -> dict[str, str]:
    """The state of each task the flow run ran, by task name, once every expected task is
    recorded in a final state (task_runs)."""
    return {task_name(run): run.state_type.value for run in task_runs(flow_run_id, expected)}


def task_name(run: TaskRun) -> str:
    """A task run's task: its name without the run's suffix (`quality-checks-3a1`)."""
    return run.name.rsplit("-", 1)[0]
