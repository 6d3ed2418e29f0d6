"""A run's hold on a shared warehouse, taken in the database itself (Redshift, and the PostgreSQL
that stands in for it in tests).

Redshift has no advisory locks; its LOCK command takes a table lock in ACCESS EXCLUSIVE mode that
lasts until the transaction ends. Each run begins its one transaction with LOCK on a table kept
for that purpose alone (`sparkify_run_lock`), before its first write, so runs started from any
number of Prefect servers follow one another and never interleave. The wait for another holder is
bounded by statement_timeout, set with SET_CONFIG for this transaction only and reset to none
after the lock is taken (COPY and the transforms may take longer).
"""

from __future__ import annotations

import time as clock

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from tasks.common.errors import WarehouseBusy

# Outside the table model: no run writes to it, analysts never see it in the schema's tables.
RUN_LOCK = Table(
    "sparkify_run_lock",
    MetaData(),
    Column("purpose", String(64)),
)


def ensure_lock_table(engine: Engine) -> None:
    """Create the lock table where missing, in a transaction of its own (LOCK needs the table
    to exist before the run's transaction begins)."""
    with engine.begin() as conn:
        RUN_LOCK.create(conn, checkfirst=True)


def take_run_lock(conn: Connection, wait_seconds: float, warehouse: str) -> None:
    """Lock the run lock table in the connection's transaction, waiting up to wait_seconds for
    another run's transaction to end; WarehouseBusy when it does not end in time (the caller's
    transaction, aborted, then rolls back)."""
    started = clock.monotonic()
    timeout_ms = max(int(wait_seconds * 1000), 1)
    conn.execute(select(func.set_config("statement_timeout", str(timeout_ms), True)))
    try:
        conn.execute(text(f"lock table {conn.dialect.identifier_preparer.format_table(RUN_LOCK)}"))
    except DBAPIError as error:
        if not _timed_out(error):
            raise
        waited = clock.monotonic() - started
        raise WarehouseBusy(warehouse, lock_holder(conn.engine), waited) from None
    conn.execute(select(func.set_config("statement_timeout", "0", True)))


def _timed_out(error: DBAPIError) -> bool:
    """Whether a statement was cancelled by statement_timeout (SQLSTATE 57014)."""
    orig = error.orig
    code = getattr(orig, "pgcode", None)
    if code is None and orig is not None and orig.args and isinstance(orig.args[0], dict):
        code = orig.args[0].get("C")  # redshift_connector's error fields
    return code == "57014" or "statement timeout" in str(orig).lower()


def lock_holder(engine: Engine) -> str | None:
    """The session holding the run lock, as the database names it: STV_LOCKS on Redshift
    (visible to superusers only), pg_locks on PostgreSQL; None when neither says."""
    table = RUN_LOCK.name
    queries = (
        "select lock_owner_pid from stv_locks where table_id = "
        "(select oid from pg_class where relname = :name) and lock_status = 'Holding lock'",
        "select l.pid from pg_locks as l join pg_class as c on c.oid = l.relation "
        "where c.relname = :name and l.granted and l.pid <> pg_backend_pid()",
    )
    for query in queries:
        try:
            with engine.connect() as conn:
                pid = conn.execute(text(query), {"name": table}).scalar()
        except DBAPIError:
            continue
        if pid is not None:
            return f"database session PID {pid}"
    return None
