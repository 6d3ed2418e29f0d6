"""What a load did, where the Prefect UI's run list shows it: the flow run's name says what the run
loads (`daily 2018-11-11 → sparkify.duckdb`, `backfill 2018-11-01..2018-11-30 → prod`), and its
final state's name and message what came of it.

State names, the first that holds:
- "Nothing to load": no event file of the run's days was there to stage (a missing day).
- "Completed with rejects": records were rejected (see load_rejects).
- "Completed with missing days": some requested days have no event file; the others loaded.
- "Completed": everything given was loaded.
Each is a Completed state (the run did what it could; a schedule's next run is not held up), its
message one line: plays loaded, rejects, unchanged files, missing days.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from prefect.runtime import deployment, flow_run
from prefect.states import Completed, State

from tasks.common.errors import UserError
from tasks.run.pipeline import EtlSummary
from tasks.run.schedule import run_dates
from tasks.warehouse.resolve import warehouse_kind

NOTHING_TO_LOAD = "Nothing to load"
WITH_REJECTS = "Completed with rejects"
WITH_MISSING_DAYS = "Completed with missing days"


def _day(value: Any) -> date | None:
    """A date parameter as a run holds it: a date, its ISO text (from a deployment), or None."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def days_label(start: date | None, end: date | None) -> str:
    """The days of a run in a few characters."""
    if start is None and end is None:
        return "all days"
    if start == end:
        return str(start)
    return f"{start or '…'}..{end or '…'}"


def warehouse_label(spec: str) -> str:
    """A warehouse as a run list can show it: a DuckDB file's name, a block's name, a Data API
    spec without its options."""
    try:
        kind = warehouse_kind(spec)
    except UserError:  # the run itself says what is wrong with it
        return spec
    if kind == "data-api":
        return spec.split("?", 1)[0]
    return Path(spec).name if kind == "duckdb" else spec.split("/", 1)[-1]


def etl_run_name() -> str:
    """The name of an ETL flow run (Prefect's flow_run_name), from its parameters: the
    deployment's name (daily, backfill) if it has one, the days it loads, the warehouse."""
    from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE

    parameters = flow_run.parameters
    try:
        start, end = run_dates(
            _day(parameters.get("start_date")),
            _day(parameters.get("end_date")),
            parameters.get("days_back"),
            flow_run.scheduled_start_time,
        )
        days = days_label(start, end)
    except (UserError, ValueError):  # the run itself says what is wrong with them
        days = "bad dates"
    target = warehouse_label(str(parameters.get("warehouse") or DEFAULT_DUCKDB_FILE))
    prefix = f"{deployment.name} " if deployment.name else ""
    return f"{prefix}{days} → {target}"


def analytics_run_name() -> str:
    """The name of an analytics flow run: the warehouse it reads."""
    from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE

    spec = str(flow_run.parameters.get("warehouse") or DEFAULT_DUCKDB_FILE)
    return f"analytics of {warehouse_label(spec)}"


def outcome(summary: EtlSummary) -> tuple[str, str]:
    """The final state's name and its one-line message."""
    events, songs = summary.staged["events"], summary.staged["songs"]
    rejects = events["rejects"] + songs["rejects"]
    plays = sum(c["inserted"] for c in summary.changes if c["table"] == "songplays")
    unchanged = sum(summary.unchanged_files.values())
    parts = [f"{plays:,} plays loaded", f"{rejects:,} rejected"]
    if unchanged:
        parts.append(f"{unchanged:,} files unchanged since their last load")
    missing = summary.missing_days
    if missing:
        days = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        parts.append(f"no event file for {days}")
    if missing and events["files"] == 0:
        name = NOTHING_TO_LOAD
    elif rejects:
        name = WITH_REJECTS
    elif missing:
        name = WITH_MISSING_DAYS
    else:
        name = "Completed"
    return name, "; ".join(parts)


def final_state(summary: EtlSummary) -> State:
    """The run's final state: Completed under the name `outcome` gives, carrying the summary
    (what a caller of the flow gets back)."""
    name, message = outcome(summary)
    return Completed(name=name, message=message, data=asdict(summary))
