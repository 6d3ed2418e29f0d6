"""The project's warehouse block types in one module, for `make blocks` to register in one go
(`prefect block register -m tasks.warehouse.block_types`)."""

from tasks.warehouse.duckdb import DuckDBWarehouse
from tasks.warehouse.redshift import RedshiftWarehouse
from tasks.warehouse.redshift_data import RedshiftDataWarehouse

__all__ = ["DuckDBWarehouse", "RedshiftDataWarehouse", "RedshiftWarehouse"]
