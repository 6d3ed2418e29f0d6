"""The Redshift warehouse: its block and engine (warehouse), IAM sign-in (sign_in), COPY's load
errors (load_errors), song files combined for COPY (song_bundles) and the run lock table
(lock_table). The Redshift driver and dialect live here only."""

from tasks.warehouse.redshift.warehouse import RedshiftWarehouse

__all__ = ["RedshiftWarehouse"]
