"""sparkify-create-tables: drop and recreate every table of the model.

python flows/create_tables.py [--warehouse PATH|BLOCK] --yes
"""

from __future__ import annotations

import argparse
import sys

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import inspect

from sql import model
from tasks.warehouse import Warehouse, create_tables, resolve_warehouse, transaction


class RefusedToDrop(Exception):
    """Dropping tables that exist was not confirmed."""


@task(name="recreate-tables", cache_policy=NO_CACHE)
def recreate_tables(warehouse: Warehouse, confirm_drop: bool) -> list[str]:
    """Drop (when confirmed) and create all tables in one transaction."""
    engine = warehouse.get_engine()
    with transaction(engine) as conn:
        existing = sorted(set(inspect(conn).get_table_names()) & set(model.metadata.tables))
        if existing and not confirm_drop:
            raise RefusedToDrop(
                f"{len(existing)} tables exist ({', '.join(existing)}); dropping them deletes "
                "their data: run again with --yes to confirm"
            )
        return create_tables(conn, drop=True)


@flow(name="sparkify-create-tables")
def create_all_tables(warehouse: str = "sparkify.duckdb", confirm_drop: bool = False) -> list[str]:
    """Drop and recreate every table; refuses to drop existing tables unless confirmed."""
    tables = recreate_tables(resolve_warehouse(warehouse), confirm_drop)
    get_run_logger().info("created %s", ", ".join(tables))
    return tables


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the flow."""
    parser = argparse.ArgumentParser(description="Drop and recreate all warehouse tables.")
    parser.add_argument("--warehouse", default="sparkify.duckdb", help="DuckDB path or block name")
    parser.add_argument("--yes", action="store_true", help="confirm dropping existing tables")
    args = parser.parse_args(argv)
    try:
        tables = create_all_tables(args.warehouse, args.yes)
    except RefusedToDrop as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(f"created {len(tables)} tables: {', '.join(tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
