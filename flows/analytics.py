"""sparkify-analytics: row counts of every table and the analysts' standing questions.

python flows/analytics.py [--warehouse PATH|BLOCK]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.artifacts import publish_analytics
from tasks.etl import table_counts
from tasks.report import format_table
from tasks.warehouse import Warehouse, resolve_warehouse

ANALYTICS_DIR = Path(__file__).resolve().parent.parent / "sql" / "analytics"
QUERIES = ("most_played_songs", "plays_by_hour", "plays_by_level")


@task(name="analytics-query", cache_policy=NO_CACHE)
def run_query(warehouse: Warehouse, name: str) -> dict[str, Any]:
    """Run one analytics query file and return its columns and rows."""
    text = (ANALYTICS_DIR / f"{name}.sql").read_text()
    with warehouse.get_engine().connect() as conn:
        result = conn.exec_driver_sql(text)
        return {"columns": list(result.keys()), "rows": [list(r) for r in result]}


@flow(name="sparkify-analytics")
def analytics(warehouse: str = "sparkify.duckdb") -> dict[str, Any]:
    """Row counts of the star schema plus the most played songs, plays by hour and by level."""
    target = resolve_warehouse(warehouse)
    counts = table_counts(target)
    results = {name: run_query(target, name) for name in QUERIES}
    report = {"counts": counts, "queries": results}
    publish_analytics(report)
    return report


def render(report: dict[str, Any]) -> str:
    """The analytics report as text tables."""
    parts = ["row counts", format_table(["table", "rows"], sorted(report["counts"].items()))]
    for name, result in report["queries"].items():
        parts += ["", name.replace("_", " "), format_table(result["columns"], result["rows"])]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the analytics flow and print its tables."""
    parser = argparse.ArgumentParser(description="Row counts and standing analyst queries.")
    parser.add_argument("--warehouse", default="sparkify.duckdb", help="DuckDB path or block name")
    args = parser.parse_args(argv)
    print(render(analytics(args.warehouse)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
