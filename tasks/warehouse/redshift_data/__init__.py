"""Redshift through the Data API: its block (warehouse), a DB-API driver over boto3's
`redshift-data` client (dbapi, with its calls and values), the SQLAlchemy dialect that runs
sqlalchemy-redshift's SQL over it (dialect) and the `redshift-data://` spec (spec). The
Redshift backend's SQL, COPY, run lock and rejects are used as they are."""

from tasks.warehouse.redshift_data.warehouse import RedshiftDataWarehouse

__all__ = ["RedshiftDataWarehouse"]
