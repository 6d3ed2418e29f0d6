"""Artifacts: the pure builders, and what the ETL and analytics flows publish under stable keys."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.etree import ElementTree

import pytest

import tasks.run.transform
from flows.analytics import analytics
from flows.etl import etl
from tasks.run.artifacts import (
    LOAD_COLUMNS,
    LOAD_KEY,
    QUALITY_KEY,
    REJECTS_KEY,
    artifact_key,
    jsonable,
    load_description,
    load_rows,
    quality_description,
    quality_rows,
    rejects_markdown,
    result_table,
)
from tasks.run.load_card import LOAD_CARD_KEY, load_card
from tasks.run.quality import CheckResult
from tasks.run.transform import TableChange
from tasks.source.files import RunFiles, SkippedFile
from tasks.warehouse.protocol import Reject, StageReport
from tests.helpers import table_counts, task_name, task_runs

EVENTS = StageReport("staging_events", files=2, rows=100, rejects=0, seconds=0.5)
SONGS = StageReport("staging_songs", files=10, rows=10, rejects=0, seconds=0.25)


def test_keys_are_lowercase_letters_digits_and_dashes() -> None:
    assert artifact_key("sparkify-analytics", "plays_by_hour") == "sparkify-analytics-plays-by-hour"
    assert artifact_key("Most Played", "songs_2") == "most-played-songs-2"
    with pytest.raises(ValueError, match="cannot make an artifact key of"):
        artifact_key("__")


def test_load_rows_split_inserted_from_updated_and_carry_rows_and_timings() -> None:
    changes = [
        TableChange("users", deleted=30, inserted=80, seconds=0.1234),  # 30 rewritten, 50 new
        TableChange("songplays", deleted=0, inserted=90, seconds=0.2),
    ]
    counts = {"users": 80, "songplays": 90, "load_rejects": 3}
    rows = {r["table"]: r for r in load_rows([EVENTS, SONGS], changes, counts)}

    assert list(rows) == ["staging_events", "staging_songs", "users", "songplays", "load_rejects"]
    assert rows["staging_events"] == {
        "table": "staging_events",
        "files": 2,
        "staged": 100,
        "rejected": 0,
        "inserted": None,
        "updated": None,
        "rows": None,
        "seconds": 0.5,
        "detail": None,
    }
    assert (rows["users"]["inserted"], rows["users"]["updated"]) == (50, 30)
    assert rows["users"]["rows"] == 80
    assert rows["users"]["seconds"] == 0.123
    assert (rows["songplays"]["inserted"], rows["songplays"]["updated"]) == (90, 0)
    assert rows["load_rejects"]["rows"] == 3


def test_load_rows_list_skipped_files_and_missing_days_after_the_tables() -> None:
    files = RunFiles(
        ["log_data/2018-11-01-events.json"],
        [],
        [SkippedFile("log_data/notes.txt", "not a .json or .json.gz file")],
        [date(2018, 11, 2)],
    )
    rows = load_rows([EVENTS, SONGS], [], {}, files)
    assert [r["table"] for r in rows] == [
        "staging_events",
        "staging_songs",
        "skipped file",
        "missing day",
    ]
    assert rows[2] == {
        **dict.fromkeys(LOAD_COLUMNS),
        "table": "skipped file",
        "detail": "log_data/notes.txt: not a .json or .json.gz file",
    }
    assert rows[3]["detail"] == "2018-11-02: requested, but no event file holds it"
    assert load_description("duckdb:/x", {}, files).endswith(
        "1 file skipped, 1 requested day without an event file "
        "(rows `skipped file` and `missing day`)."
    )
    assert load_description("duckdb:/x", {}, RunFiles([], [])) == (
        "Loaded into `duckdb:/x`. Stages: none timed."
    )


def test_the_load_card_writes_figures_as_people_do() -> None:
    rows = load_rows(
        [StageReport("staging_events", 30, 12_345, 2, 1.5)],
        [TableChange("songplays", 10, 1_010, 0.25)],
        {"songplays": 1_234_567},
    )
    card = load_card(rows, "Loaded into `wh.duckdb`.", "1,000 plays loaded; 2 rejected")
    assert card.startswith("**1,000 plays loaded; 2 rejected**\n\nLoaded into `wh.duckdb`.\n")
    assert "| staging_events | 30 | 12,345 | 2 |  |  |  | 1.50 |" in card
    assert "| songplays |  |  |  | 1,000 | 10 | 1,234,567 | 0.25 |" in card
    assert "###" not in card  # nothing skipped, missing or unchanged: no section


def test_quality_rows_say_pass_or_fail() -> None:
    checks = [
        CheckResult("unique_users_user_id", "unique", "users", 0),
        CheckResult("not_null_songplays_user_id", "not_null", "songplays", 4, ["a=1", "a=2"]),
    ]
    assert quality_rows(checks) == [
        {
            "check": "unique_users_user_id",
            "kind": "unique",
            "table": "users",
            "failing_rows": 0,
            "result": "pass",
            "sample_failing_rows": "",
        },
        {
            "check": "not_null_songplays_user_id",
            "kind": "not_null",
            "table": "songplays",
            "failing_rows": 4,
            "result": "FAIL",
            "sample_failing_rows": "a=1\na=2",
        },
    ]
    assert quality_description(checks).startswith("1 of 2 checks FAILED")
    assert quality_description(checks[:1]) == "All 1 checks passed; the run was committed."


def test_rejects_markdown_lists_file_line_and_reason_or_nothing() -> None:
    assert rejects_markdown([EVENTS, SONGS], "duckdb:/x.duckdb") is None
    samples = [
        Reject("log_data/a.json", 7, "not JSON | broken"),
        Reject("log_data/b.json", 2, "missing ts"),
    ]
    bad = StageReport("staging_events", 2, 98, rejects=3, seconds=0.5, reject_samples=samples)
    text = rejects_markdown([bad, SONGS], "duckdb:/x.duckdb")

    assert text is not None
    assert text.startswith("# 3 rejected records")
    assert "`duckdb:/x.duckdb`" in text
    assert "from load_rejects" in text
    assert "| staging_events | 3 |" in text
    assert "staging_songs |" not in text
    assert "| log_data/a.json | 7 | not JSON \\| broken |" in text
    assert "| log_data/b.json | 2 | missing ts |" in text
    assert "First 2 of 3 shown." in text


def test_query_results_become_json_records() -> None:
    rows = [(datetime(2018, 11, 1, 2, 30), Decimal("1.5"), float("nan"), "x", 3)]
    table = result_table(["at", "share", "ratio", "name", "plays"], rows)
    assert table == [
        {"at": "2018-11-01T02:30:00", "share": 1.5, "ratio": None, "name": "x", "plays": 3}
    ]
    assert jsonable(date(2018, 11, 1)) == "2018-11-01"
    json.dumps(table)  # a table artifact is stored as JSON


# Flows publishing into the session's Prefect server.


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    """The latest artifacts of a flow run, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def _table(artifact: Any) -> list[dict[str, Any]]:
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


@pytest.mark.usefixtures("prefect_server")
def test_etl_publishes_load_quality_and_rejects(week_source: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(week_source, source)
    day_file = next((source / "log_data").rglob("2018-11-01-events.json"))
    with day_file.open("a") as f:
        f.write("{not json\n")
    db = tmp_path / "wh.duckdb"

    state = etl(str(source), str(db), date(2018, 11, 1), date(2018, 11, 1), return_state=True)
    summary = state.result()
    found = _artifacts(state.state_details.flow_run_id)

    assert {LOAD_KEY, QUALITY_KEY, REJECTS_KEY} <= set(found)
    load = {row["table"]: row for row in _table(found[LOAD_KEY])}
    counts = table_counts(db)
    for table, rows in counts.items():
        assert load[table]["rows"] == rows
        assert load[table]["inserted"] == rows
    assert load["staging_events"]["staged"] == summary["staged"]["events"]["rows"] > 0
    assert load["staging_events"]["rejected"] == 1
    assert load["load_rejects"]["rows"] == 1
    quality = _table(found[QUALITY_KEY])
    assert len(quality) == len(summary["checks"])
    assert {r["result"] for r in quality} == {"pass"}
    rejects = found[REJECTS_KEY]
    assert rejects.type == "markdown"
    line = sum(1 for _ in day_file.open())
    assert f"{day_file} | {line} |" in rejects.data


def _warnings(flow_run_id: UUID) -> list[str]:
    """The warning messages a flow run logged (its tasks' included), once they have arrived."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    return [log.message for log in logs if log.level == logging.WARNING]


@pytest.mark.usefixtures("prefect_server")
def test_skipped_files_and_missing_days_are_in_the_log_and_the_load_artifact(
    week_source: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(week_source, source)
    (source / "log_data" / "2018" / "11" / "notes.txt").write_text("not data")
    (source / "song_data" / ".DS_Store").write_bytes(b"\0")
    db = tmp_path / "wh.duckdb"

    state = etl(str(source), str(db), date(2018, 11, 6), date(2018, 11, 7), return_state=True)
    summary = state.result()
    flow_run_id = state.state_details.flow_run_id
    load = _table(_artifacts(flow_run_id)[LOAD_KEY])

    notes = f"{source}/log_data/2018/11/notes.txt: not a .json or .json.gz file"
    store = f"{source}/song_data/.DS_Store: hidden file or folder"
    missing = "2018-11-07: requested, but no event file holds it"
    assert [(r["table"], r["detail"]) for r in load if r["detail"]] == [
        ("skipped file", notes),
        ("skipped file", store),
        ("missing day", missing),
    ]
    assert {r["table"]: r for r in load}["staging_events"]["files"] == 1
    assert summary["skipped_files"] == [
        {"name": f"{source}/log_data/2018/11/notes.txt", "reason": "not a .json or .json.gz file"},
        {"name": f"{source}/song_data/.DS_Store", "reason": "hidden file or folder"},
    ]
    assert summary["missing_days"] == ["2018-11-07"]
    # The load card: figures with separators, what was not loaded in sections of its own.
    card = _artifacts(flow_run_id)[LOAD_CARD_KEY]
    assert card.type == "markdown"
    staged = summary["staged"]["events"]["rows"]
    assert f"| staging_events | 1 | {staged:,} | 0 |" in card.data
    assert f"### Skipped files (2)\n\n- {notes}\n- {store}\n" in card.data
    assert f"### Missing days (1)\n\n- {missing}\n" in card.data
    assert card.description == state.message
    warnings = _warnings(flow_run_id)
    for line in (f"skipped file: {notes}", f"skipped file: {store}", f"missing day: {missing}"):
        assert line in warnings


@pytest.mark.usefixtures("prefect_server")
def test_a_failed_check_shows_its_failing_rows_and_fails_its_task(
    week_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One more transform, run after the others, breaks a user's level (staging rejects such a
    value in the data, so only a faulty transform makes the check fail)."""
    broken = tmp_path / "transform"
    shutil.copytree(tasks.run.transform.TRANSFORM_DIR, broken)
    (broken / "99_zz_break_a_level.sql").write_text(
        "update users set level = 'premium' where user_id = (select min(user_id) from users);"
    )
    monkeypatch.setattr(tasks.run.transform, "TRANSFORM_DIR", broken)
    caplog.set_level(logging.INFO)
    state = etl(str(week_source), str(tmp_path / "wh.duckdb"), return_state=True)

    assert state.is_failed()
    line = "quality checks failed, nothing was published: accepted_values_users_level (1 rows)"
    assert state.message == line
    flow_run_id = state.state_details.flow_run_id
    found = _artifacts(flow_run_id)
    assert LOAD_KEY not in found
    assert REJECTS_KEY not in found
    quality = {row["check"]: row for row in _table(found[QUALITY_KEY])}
    failed = quality["accepted_values_users_level"]
    assert (failed["failing_rows"], failed["result"]) == (1, "FAIL")
    # The failing row, read before the rollback: its key and the value the check refused.
    [sample] = failed["sample_failing_rows"].splitlines()
    assert sample.startswith("user_id=")
    assert ", level=premium, " in sample
    assert found[QUALITY_KEY].description.startswith("1 of ")
    tasks_of_run = task_runs(flow_run_id, {"quality-checks"})
    checks = [t for t in tasks_of_run if task_name(t) == "quality-checks"]
    assert [t.state.type.value for t in checks] == ["FAILED"]
    # The reason once at ERROR, no traceback.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors if r.getMessage() == line] == [line]
    assert not [r for r in errors if r.exc_info or r.exc_text]


@pytest.mark.usefixtures("prefect_server")
def test_analytics_publishes_its_tables(week_source: Path, tmp_path: Path) -> None:
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db))
    state = analytics(str(db), return_state=True)
    report = state.result()
    found = _artifacts(state.state_details.flow_run_id)

    counts = {row["table"]: row["rows"] for row in _table(found["sparkify-analytics-row-counts"])}
    assert counts == report["counts"]
    for name, result in report["queries"].items():
        rows = _table(found[artifact_key("sparkify-analytics", name)])
        assert len(rows) == len(result["rows"]) > 0
        assert list(rows[0]) == result["columns"]

    # The headline and the charts: SVG documents in data URIs, a bar per row of each query.
    charts = found["sparkify-analytics-charts"]
    assert charts.type == "markdown"
    plays, users, matched = report["queries"]["headline"]["rows"][0]
    assert f"**{plays:,} plays** by **{users:,} users**. {matched:,} of the {plays:,}" in (
        charts.data
    )
    images = re.findall(
        r"!\[([^\]]+)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", charts.data
    )
    bars = {}
    for title, encoded in images:
        svg = ElementTree.fromstring(base64.b64decode(encoded))
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        rects = svg.findall("{http://www.w3.org/2000/svg}rect")
        bars[title] = len([r for r in rects if r.get("width") != "100%"])
    assert bars == {
        "Plays by hour of day (UTC)": len(report["queries"]["plays_by_hour"]["rows"]),
        "Plays per day (month-day)": len(report["queries"]["daily_plays"]["rows"]),
        "Plays by level (free or paid)": len(report["queries"]["plays_by_level"]["rows"]),
        "Most played songs": len(report["queries"]["most_played_songs"]["rows"]),
        "Most played artists": len(report["queries"]["top_artists"]["rows"]),
    }
    assert min(bars.values()) > 0
