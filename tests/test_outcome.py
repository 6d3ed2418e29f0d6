"""Runs that explain themselves in the Prefect UI's run list: the flow run's name says what it
loads, its final state's name and message what came of it, as the session's Prefect server
records them (the UI reads the same API)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows.etl import etl
from tasks.run.outcome import (
    NOTHING_TO_LOAD,
    WITH_MISSING_DAYS,
    WITH_REJECTS,
    days_label,
    warehouse_label,
)


def recorded(flow_run_id: UUID) -> Any:
    """The flow run as the server has it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


@pytest.mark.usefixtures("prefect_server")
def test_the_run_list_tells_a_load_a_run_with_rejects_and_a_missing_day_apart(
    week_source: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(week_source, source)
    db = tmp_path / "wh.duckdb"
    day = date(2018, 11, 1)
    normal = etl(str(source), str(db), day, day, return_state=True)

    day_file = next((source / "log_data").rglob("2018-11-02-events.json"))
    with day_file.open("a") as f:
        f.write("{not json\n")
    with_rejects = etl(str(source), str(db), date(2018, 11, 2), None, return_state=True)
    missing = etl(str(source), str(db), date(2018, 11, 30), date(2018, 11, 30), return_state=True)

    runs = {
        what: recorded(state.state_details.flow_run_id)
        for what, state in (("normal", normal), ("rejects", with_rejects), ("missing", missing))
    }
    assert runs["normal"].name == "2018-11-01 → wh.duckdb"
    assert runs["rejects"].name == "2018-11-02..… → wh.duckdb"
    assert runs["missing"].name == "2018-11-30 → wh.duckdb"

    plays = normal.result()["changes"]
    loaded = next(c["inserted"] for c in plays if c["table"] == "songplays")
    assert loaded > 0
    assert (runs["normal"].state.name, runs["normal"].state.message) == (
        "Completed",
        f"{loaded:,} plays loaded; 0 rejected",
    )
    assert runs["rejects"].state.name == WITH_REJECTS
    assert runs["rejects"].state.message.split("; ")[1] == "1 rejected"
    assert runs["missing"].state.name == NOTHING_TO_LOAD
    songs = len(list((source / "song_data").rglob("*.json")))
    assert runs["missing"].state.message == (
        f"0 plays loaded; 0 rejected; {songs:,} files unchanged since their last load; "
        "no event file for 2018-11-30"
    )
    assert all(run.state.is_completed() for run in runs.values())


def test_state_names_follow_what_the_run_did() -> None:
    from tasks.run.outcome import outcome

    def summary(files: int, rejects: int, missing: list[str], inserted: int) -> Any:
        staged = {"files": files, "rows": inserted, "rejects": rejects}
        return type(
            "Summary",
            (),
            {
                "staged": {"events": staged, "songs": {"files": 0, "rows": 0, "rejects": 0}},
                "changes": [{"table": "songplays", "inserted": inserted}],
                "unchanged_files": {"events": 0, "songs": 2},
                "missing_days": missing,
            },
        )()

    assert outcome(summary(0, 0, ["2018-11-30"], 0)) == (
        NOTHING_TO_LOAD,
        "0 plays loaded; 0 rejected; 2 files unchanged since their last load; "
        "no event file for 2018-11-30",
    )
    assert outcome(summary(1, 2, ["2018-11-30"], 1500))[0] == WITH_REJECTS
    many = [f"2018-11-{d}" for d in range(10, 16)]
    name, message = outcome(summary(1, 0, many, 1500))
    assert name == WITH_MISSING_DAYS
    assert message.endswith("no event file for 2018-11-10, 2018-11-11, 2018-11-12 and 3 more")
    assert outcome(summary(1, 0, [], 1500)) == (
        "Completed",
        "1,500 plays loaded; 0 rejected; 2 files unchanged since their last load",
    )


def test_labels_are_short() -> None:
    assert days_label(None, None) == "all days"
    assert days_label(date(2018, 11, 1), date(2018, 11, 30)) == "2018-11-01..2018-11-30"
    assert days_label(date(2018, 11, 1), None) == "2018-11-01..…"
    assert warehouse_label("/data/sparkify.duckdb") == "sparkify.duckdb"
    assert warehouse_label("sparkify-redshift-warehouse/prod") == "prod"
    spec = "redshift-data://sparkify/dev?user=etl&iam_role=default"
    assert warehouse_label(spec) == "redshift-data://sparkify/dev"
