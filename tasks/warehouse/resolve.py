"""The warehouse a run names: a DuckDB file path or a saved warehouse block."""

from __future__ import annotations

import importlib
from pathlib import Path

from prefect.blocks.core import Block

from tasks.warehouse.base import Warehouse
from tasks.warehouse.duckdb import DuckDBWarehouse

DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")
# Every warehouse block type: importing a module registers its block class for Block.load.
WAREHOUSE_MODULES = ("tasks.warehouse.duckdb", "tasks.warehouse.redshift")


def resolve_warehouse(spec: str) -> Warehouse:
    """A warehouse from a DuckDB file path or a saved warehouse block, named
    `sparkify-duckdb-warehouse/NAME` or `sparkify-redshift-warehouse/NAME`."""
    if spec == ":memory:":
        raise ValueError("an in-memory DuckDB cannot outlive the run: give a file path")
    if spec.endswith(DUCKDB_SUFFIXES) or Path(spec).exists():
        return DuckDBWarehouse(path=spec)
    if "/" not in spec:
        raise ValueError(
            f"warehouse {spec!r} is neither a DuckDB file (*.duckdb) nor a block name "
            "(sparkify-duckdb-warehouse/NAME or sparkify-redshift-warehouse/NAME)"
        )
    for module in WAREHOUSE_MODULES:
        importlib.import_module(module)
    return Block.load(spec)
