"""sparkify-create-tables: drop and recreate every table of the model.

python flows/create_tables.py [--warehouse PATH|BLOCK] --yes
"""

from __future__ import annotations

import argparse
import sys

from prefect import flow, get_run_logger

from tasks.common.cli import add_debug_argument, command, stop_on_interrupt
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE
from tasks.warehouse.resolve import check_warehouse, resolve_warehouse
from tasks.warehouse.tables import recreate_tables


@flow(name="sparkify-create-tables")
@fails_in_one_line
def create_all_tables(
    warehouse: str = DEFAULT_DUCKDB_FILE, confirm_drop: bool = False
) -> list[str]:
    """Drop and recreate every table; refuses to drop existing tables unless confirmed.

    Args:
        warehouse: a DuckDB file path ending in .duckdb, or a saved warehouse block TYPE/NAME
        confirm_drop: drop the tables that exist, and with them all their data
    """
    tables = recreate_tables(resolve_warehouse(warehouse), confirm_drop)
    get_run_logger().info("created %s", ", ".join(tables))
    return tables


@command("create_tables")
def main(argv: list[str] | None = None) -> int:
    """Parse and check the command line, then run the flow."""
    parser = argparse.ArgumentParser(description="Drop and recreate all warehouse tables.")
    parser.add_argument(
        "--warehouse", default=DEFAULT_DUCKDB_FILE, help="DuckDB path or block name"
    )
    parser.add_argument("--yes", action="store_true", help="confirm dropping existing tables")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    check_warehouse(args.warehouse)
    stop_on_interrupt("create_tables", argv)
    start_temporary_server()
    tables = create_all_tables(args.warehouse, args.yes)
    print(f"created {len(tables)} tables: {', '.join(tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
