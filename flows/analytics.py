"""sparkify-analytics: row counts of every table and the analysts' standing questions.

python flows/analytics.py [--warehouse PATH|BLOCK]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from prefect import flow

from tasks.common.cli import add_debug_argument, command, stop_on_interrupt
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.run.analytics import QUERIES, run_query
from tasks.run.artifacts import publish_analytics
from tasks.run.outcome import analytics_run_name
from tasks.run.report import format_table
from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE
from tasks.warehouse.resolve import check_warehouse, resolve_warehouse
from tasks.warehouse.tables import table_counts


@flow(name="sparkify-analytics", flow_run_name=analytics_run_name)
@fails_in_one_line
def analytics(warehouse: str = DEFAULT_DUCKDB_FILE) -> dict[str, Any]:
    """Row counts of the star schema plus the most played songs, plays by hour and by level.

    Args:
        warehouse: a DuckDB file path ending in .duckdb, or a saved warehouse block TYPE/NAME
    """
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


@command("analytics")
def main(argv: list[str] | None = None) -> int:
    """Run the analytics flow and print its tables (a DuckDB file must exist already)."""
    parser = argparse.ArgumentParser(description="Row counts and standing analyst queries.")
    parser.add_argument(
        "--warehouse", default=DEFAULT_DUCKDB_FILE, help="DuckDB path or block name"
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    check_warehouse(args.warehouse, must_exist=True)
    stop_on_interrupt("analytics", argv)
    start_temporary_server()
    print(render(analytics(args.warehouse)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
