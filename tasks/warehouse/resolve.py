"""The warehouse a run names: a DuckDB file path or a saved warehouse block."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from prefect.blocks.core import Block

from tasks.warehouse.base import Warehouse
from tasks.warehouse.duckdb import DuckDBWarehouse

DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")


def register_warehouse_blocks() -> None:
    """Import every module of this package: a module defining a warehouse block registers its
    class for Block.load, so a new warehouse is one new module and nothing else changes."""
    package = __name__.rsplit(".", 1)[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")


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
    register_warehouse_blocks()
    return Block.load(spec)
