"""The DuckDB warehouse: its block and engine (warehouse), staging by read_csv and read_json
(staging, lines, records) and its SQL helpers (sql). `import duckdb` lives here only."""

from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE, DuckDBWarehouse

__all__ = ["DEFAULT_DUCKDB_FILE", "DuckDBWarehouse"]
