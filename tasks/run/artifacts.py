"""What a run leaves in the Prefect UI: table and markdown artifacts under stable keys.

The builders are pure functions of the tasks' results (tested without Prefect); the `publish_*`
functions hand their output to Prefect inside a flow run. A key names the artifact's history: the
UI's Artifacts page shows every run's version of `sparkify-etl-load` side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.run.charts import analytics_markdown
from tasks.run.load_card import LOAD_CARD_KEY, load_card
from tasks.run.quality import CheckResult
from tasks.run.report import count_of
from tasks.run.transform import TableChange
from tasks.source.files import RunFiles, file_notices
from tasks.warehouse.protocol import StageReport

LOAD_KEY = "sparkify-etl-load"
QUALITY_KEY = "sparkify-etl-quality"
REJECTS_KEY = "sparkify-etl-rejects"
ANALYTICS_KEY_PREFIX = "sparkify-analytics"

LOAD_COLUMNS = (
    *("table", "files", "staged", "rejected", "inserted", "updated", "rows", "seconds"),
    "detail",
)

_KEY = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) from names like `by_hour`."""
    key = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
    if not _KEY.match(key):
        raise ValueError(f"cannot make an artifact key of {parts!r}")
    return key


def load_rows(
    staged: Sequence[StageReport],
    changes: Sequence[TableChange],
    counts: Mapping[str, int],
    files: RunFiles | None = None,
    unchanged: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One row per staging table (files, rows staged, rejected) and per star table (rows new,
    updated, and in the table after the run), each with its seconds; None where not applicable.
    Then one row per file the listing skipped and per requested day without an event file
    ("skipped file", "missing day"), the file or day and why in `detail`, and one row of the
    files not staged because the warehouse loaded them before, unchanged ("unchanged files")."""
    rows = [
        _load_row(r.table, files=r.files, staged=r.rows, rejected=r.rejects, seconds=r.seconds)
        for r in staged
    ]
    for c in changes:
        rows.append(
            _load_row(
                c.table,
                inserted=c.inserted - c.replaced,
                updated=c.replaced,
                rows=counts.get(c.table),
                seconds=c.seconds,
            )
        )
    if "load_rejects" in counts:
        rows.append(_load_row("load_rejects", rows=counts["load_rejects"]))
    notices = file_notices(files) if files is not None else []
    rows += [_load_row(kind, detail=detail) for kind, detail in notices]
    if unchanged and any(unchanged.values()):
        detail = ", ".join(f"{count_of(n, kind[:-1] + ' file')}" for kind, n in unchanged.items())
        rows.append(
            _load_row(
                "unchanged files",
                files=sum(unchanged.values()),
                detail=f"{detail} loaded before and unchanged: not staged (a reload stages them)",
            )
        )
    return rows


def _load_row(
    table: str, seconds: float | None = None, detail: str | None = None, **figures: int | None
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(LOAD_COLUMNS)
    row.update(figures, table=table, detail=detail)
    row["seconds"] = None if seconds is None else round(seconds, 3)
    return row


def load_description(
    warehouse: str, seconds: Mapping[str, float], files: RunFiles | None = None
) -> str:
    """The load table's caption: where it went, how long each stage took, and how many files
    were skipped and requested days had no event file."""
    stages = ", ".join(f"{name} {value:.2f}s" for name, value in seconds.items())
    text = f"Loaded into `{warehouse}`. Stages: {stages or 'none timed'}."
    if files is not None and (files.skipped or files.missing_days):
        text += (
            f" {count_of(len(files.skipped), 'file')} skipped, "
            f"{count_of(len(files.missing_days), 'requested day')} without an event file "
            "(rows `skipped file` and `missing day`)."
        )
    return text


def quality_rows(checks: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """One row per data test: check, kind, table, failing rows, pass/fail, and a failed check's
    sample failing rows (keys and values, read before the rollback), one per line."""
    return [
        {
            "check": c.check,
            "kind": c.kind,
            "table": c.table,
            "failing_rows": c.failing_rows,
            "result": "pass" if c.passed else "FAIL",
            "sample_failing_rows": "\n".join(c.samples),
        }
        for c in checks
    ]


def quality_description(checks: Sequence[CheckResult]) -> str:
    """The quality table's caption: how many checks passed, and what a failure means."""
    failed = sum(1 for c in checks if not c.passed)
    if failed:
        return (
            f"{failed} of {len(checks)} checks FAILED: the run was rolled back and nothing "
            "was published."
        )
    return f"All {len(checks)} checks passed; the run was committed."


def rejects_markdown(staged: Sequence[StageReport], warehouse: str) -> str | None:
    """A markdown report of the run's rejected records (a sample of each file and line, with the
    reason, and the query that lists them all); None when nothing was rejected."""
    total = sum(r.rejects for r in staged)
    if total == 0:
        return None
    lines = [
        f"# {count_of(total, 'rejected record')}",
        "",
        f"Every rejected record is kept in the `load_rejects` table of `{warehouse}`:",
        "",
        "```sql",
        "select source_file, line_number, reason, raw_line",
        "from load_rejects order by recorded_at desc, source_file, line_number;",
        "```",
        "",
        "| staging table | rejected |",
        "|---|---:|",
        *(f"| {r.table} | {r.rejects:,} |" for r in staged if r.rejects),
        "",
        "| file | line | reason |",
        "|---|---:|---|",
    ]
    shown = 0
    for report in staged:
        for sample in report.reject_samples:
            lines.append(
                f"| {_md(sample.source_file)} | {sample.line_number} | {_md(sample.reason)} |"
            )
            shown += 1
    if shown < total:
        lines += ["", f"First {shown} of {total:,} shown."]
    return "\n".join(lines) + "\n"


def _md(value: Any) -> str:
    """A value safe inside a markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def jsonable(value: Any) -> Any:
    """A query result value as JSON can carry it (dates as ISO text, decimals as floats)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


def result_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """A query result as the records a table artifact shows."""
    return [{c: jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def publish_load(
    staged: Sequence[StageReport],
    changes: Sequence[TableChange],
    counts: Mapping[str, int],
    warehouse: str,
    seconds: Mapping[str, float],
    files: RunFiles | None = None,
    unchanged: Mapping[str, int] | None = None,
    outcome: str | None = None,
) -> None:
    """Publish the rows staged, inserted, updated and rejected per table, with timings, the
    files the run skipped and the requested days without an event file, and how many files it
    did not stage because they were loaded before, unchanged; with the run's one-line
    `outcome`, the same as a load card people read (tasks/run/load_card.py)."""
    rows = load_rows(staged, changes, counts, files, unchanged)
    description = load_description(warehouse, seconds, files)
    create_table_artifact(rows, key=LOAD_KEY, description=description)
    if outcome is not None:
        create_markdown_artifact(
            load_card(rows, description, outcome), key=LOAD_CARD_KEY, description=outcome
        )


def publish_quality(checks: Sequence[CheckResult]) -> None:
    """Publish the quality checks' results (also when one fails, before the run fails)."""
    create_table_artifact(
        quality_rows(checks), key=QUALITY_KEY, description=quality_description(checks)
    )


def publish_rejects(staged: Sequence[StageReport], warehouse: str) -> None:
    """Publish a markdown report of the run's rejected records, if there are any."""
    markdown = rejects_markdown(staged, warehouse)
    if markdown is not None:
        total = sum(r.rejects for r in staged)
        create_markdown_artifact(
            markdown, key=REJECTS_KEY, description=f"{count_of(total, 'record')} rejected"
        )


def publish_analytics(report: Mapping[str, Any]) -> None:
    """Publish the analytics flow's row counts and each standing query as a table artifact."""
    create_table_artifact(
        [{"table": t, "rows": n} for t, n in sorted(report["counts"].items())],
        key=artifact_key(ANALYTICS_KEY_PREFIX, "row_counts"),
        description="Rows in each table of the star schema",
    )
    for name, result in report["queries"].items():
        create_table_artifact(
            result_table(result["columns"], result["rows"]),
            key=artifact_key(ANALYTICS_KEY_PREFIX, name),
            description=name.replace("_", " "),
        )
    create_markdown_artifact(
        analytics_markdown(report["queries"]),
        key=artifact_key(ANALYTICS_KEY_PREFIX, "charts"),
        description="Key figures and charts of the star schema",
    )
