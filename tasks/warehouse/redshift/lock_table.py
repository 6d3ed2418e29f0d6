"""A run's hold on a shared warehouse, taken in the database itself (Redshift, and the PostgreSQL
that stands in for it in tests).

Redshift has no advisory locks; its LOCK command takes a table lock in ACCESS EXCLUSIVE mode that
lasts until the transaction ends. Each run begins its one transaction with LOCK on a table kept
for that purpose alone (`sparkify_run_lock`), before its first write, so runs started from any
number of Prefect servers follow one another and never interleave.

LOCK waits for as long as another transaction holds the table. Redshift has no lock_timeout and
does not document that statement_timeout ends a waiting LOCK, so the client bounds the wait: when
it is over, a second connection cancels the waiting statement with PG_CANCEL_BACKEND, which a user
may do to their own sessions' queries, and ends the waiting session with PG_TERMINATE_BACKEND
should the LOCK still wait (Redshift documents that a query in a transaction block may not be
cancelled). The waiting session has written nothing, so ending it loses nothing; the run ends with
WarehouseBusy, naming the holder where the database says who it is.
"""

from __future__ import annotations

import logging
import threading
import time as clock
from types import TracebackType

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from tasks.common.errors import WarehouseBusy

# Outside the table model: no run writes to it, analysts never see it in the schema's tables.
RUN_LOCK = Table(
    "sparkify_run_lock",
    MetaData(),
    Column("purpose", String(64)),
)

# Seconds a LOCK that waited its time is given to end by being cancelled (the cancel is sent
# again every CANCEL_REPEAT_SECONDS meanwhile) before its session is terminated.
CANCEL_GRACE_SECONDS = 10.0
CANCEL_REPEAT_SECONDS = 1.0

# Who holds the lock table, first as Redshift says it to a regular user: SVV_TRANSACTIONS, which
# every user may read (their own sessions' rows; all rows for a superuser or SYSLOG ACCESS
# UNRESTRICTED), where STV_LOCKS is for superusers only. Then PostgreSQL's pg_locks (the
# stand-in). The first query the database answers with a row names the holder.
HOLDER_QUERIES = (
    text(
        "select pid, txn_owner from svv_transactions "
        "where relation = (select oid from pg_class where relname = :name "
        "and pg_table_is_visible(oid)) "
        "and lock_mode = :mode and granted and pid <> pg_backend_pid() "
        "order by pid limit 1"
    ),
    text(
        "select l.pid, a.usename from pg_locks as l "
        "join pg_class as c on c.oid = l.relation "
        "left join pg_stat_activity as a on a.pid = l.pid "
        "where c.relname = :name and pg_table_is_visible(c.oid) "
        "and l.mode = :mode and l.granted and l.pid <> pg_backend_pid() "
        "order by l.pid limit 1"
    ),
)
LOCK_MODE = "AccessExclusiveLock"

log = logging.getLogger("prefect.sparkify")


def ensure_lock_table(engine: Engine) -> None:
    """Create the lock table where missing, in a transaction of its own (LOCK needs the table
    to exist before the run's transaction begins)."""
    with engine.begin() as conn:
        RUN_LOCK.create(conn, checkfirst=True)


class LockWaitBound:
    """Ends a statement of session `pid` that still runs `seconds` after entering: cancels it
    from a second connection of the engine, and terminates the session if the statement has not
    returned CANCEL_GRACE_SECONDS later. `fired` says whether it had to."""

    def __init__(self, engine: Engine, pid: int, seconds: float) -> None:
        self.engine, self.pid, self.grace = engine, pid, CANCEL_GRACE_SECONDS
        self.fired = False
        self._returned = threading.Event()
        self._sending = threading.Lock()  # no signal is sent once the statement has returned
        self._timer = threading.Timer(min(seconds, threading.TIMEOUT_MAX), self._end_wait)
        self._timer.daemon = True

    def __enter__(self) -> LockWaitBound:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._sending:
            self._returned.set()
        self._timer.cancel()
        if self.fired:
            self._timer.join()

    def _end_wait(self) -> None:
        try:
            with self.engine.connect() as conn:
                deadline = clock.monotonic() + self.grace
                while not self._returned.is_set():
                    terminate = clock.monotonic() >= deadline
                    signal = func.pg_terminate_backend if terminate else func.pg_cancel_backend
                    with self._sending:
                        if self._returned.is_set():
                            return
                        self.fired = True
                        conn.execute(select(signal(bindparam("pid", self.pid))))
                    if terminate:
                        return
                    self._returned.wait(CANCEL_REPEAT_SECONDS)
        except Exception as error:  # the timer's thread: say it, or the wait goes on unexplained
            log.warning("could not end session %s's wait for the run lock: %s", self.pid, error)


def take_run_lock(conn: Connection, wait_seconds: float, warehouse: str) -> None:
    """Lock the run lock table in the connection's transaction, waiting up to wait_seconds for
    another run's transaction to end; WarehouseBusy when it does not end in time (the waiting
    connection, cancelled or terminated, is then invalidated: the session ends and rolls back)."""
    started = clock.monotonic()
    pid = int(conn.execute(select(func.pg_backend_pid())).scalar_one())
    lock = text(f"lock table {conn.dialect.identifier_preparer.format_table(RUN_LOCK)}")
    with LockWaitBound(conn.engine, pid, wait_seconds) as bound:
        try:
            conn.execute(lock)
            return
        except DBAPIError:
            if not bound.fired:
                raise
    # The client ended the wait: the session's transaction is aborted, or the session is gone.
    conn.invalidate()
    raise WarehouseBusy(warehouse, lock_holder(conn.engine), clock.monotonic() - started)


def lock_holder(engine: Engine) -> str | None:
    """The session holding the run lock, as the database names it to the flows' user
    (HOLDER_QUERIES); None when it does not say."""
    for query in HOLDER_QUERIES:
        try:
            with engine.connect() as conn:
                row = conn.execute(query, {"name": RUN_LOCK.name, "mode": LOCK_MODE}).first()
        except DBAPIError:
            continue
        if row is not None:
            pid, user = row
            return f"database session PID {pid}" + (f" of user {user.strip()}" if user else "")
    return None
