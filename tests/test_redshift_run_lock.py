"""The Redshift run lock on the PostgreSQL stand-in: a wait for another holder is ended by the
client, whatever statement_timeout does; the holder is named from what a regular user may read;
nothing of the hold outlives it.

Where the stand-in would do what Redshift is not documented to do, the test's database is made to
behave as Redshift may: set_config is shadowed so statement_timeout never bounds a wait, and
pg_cancel_backend so a cancel does not end a LOCK in a transaction block. A guard thread ends the
holder's transaction if the run still waits long after its wait, so a broken bound fails the
test instead of hanging it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

import tasks.warehouse.redshift.lock_table as lock_table
from tasks.common.errors import WarehouseBusy
from tasks.warehouse.redshift.lock_table import RUN_LOCK, ensure_lock_table
from tests.postgres_redshift import ROLE, PostgresRedshiftWarehouse

pytestmark = pytest.mark.postgres

# The guard ends the holder's transaction this long after the run began to wait: far beyond the
# run's wait, so only a wait the run never ends meets it.
GUARD_SECONDS = 60.0
WAIT_SECONDS = 1.0

# Redshift documents that statement_timeout stops a statement that runs too long, not that it
# ends a LOCK that waits; here it does nothing at all.
IGNORE_STATEMENT_TIMEOUT = """
create function public.set_config(setting text, value text, is_local boolean) returns text
language sql as $$ select value $$
"""
# A cancel that does not end a query in a transaction block, as Redshift documents may happen.
IGNORE_CANCEL = """
create function public.pg_cancel_backend(pid integer) returns boolean
language sql as $$ select true $$
"""
# SVV_TRANSACTIONS with Redshift's documented columns and visibility: a regular user sees the
# rows of their own sessions, a superuser all rows.
SVV_TRANSACTIONS = """
create view svv_transactions as
select a.usename::text as txn_owner, current_database()::text as txn_db,
       l.transactionid::text::bigint as xid, l.pid, a.xact_start as txn_start,
       l.mode as lock_mode, l.locktype as lockable_object_type,
       l.relation::integer as relation, l.granted
from pg_catalog.pg_locks as l
join pg_catalog.pg_stat_activity as a on a.pid = l.pid
where a.usename = current_user
   or (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
"""


def stand_in(
    url: str, kind: type[PostgresRedshiftWarehouse] = PostgresRedshiftWarehouse
) -> PostgresRedshiftWarehouse:
    """The Redshift block on the stand-in database, waiting WAIT_SECONDS for a held lock."""
    fields = {
        "host": "postgres.invalid",
        "user": "sparkify",
        "password": "not-used",
        "iam_role_arn": ROLE,
        "postgres_url": url,
        "lock_wait_seconds": WAIT_SECONDS,
    }
    return kind(**fields)


class PooledStandIn(PostgresRedshiftWarehouse):
    """The stand-in with a pool of connections, as RedshiftWarehouse.get_engine's engine has."""

    _block_type_slug = "sparkify-redshift-on-postgres-pooled"

    def get_engine(self) -> Engine:
        """A pooling engine on the PostgreSQL database (psycopg2)."""
        return create_engine(self.postgres_url.get_secret_value(), pool_pre_ping=True)


def admin(url: str) -> Engine:
    """Connections of the server's superuser to the test's database, outside any pool."""
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def run_sql(url: str, *statements: str) -> None:
    with admin(url).connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def redshift_like(url: str, *functions: str) -> None:
    """Shadow PostgreSQL's functions with these in the test's database (public first)."""
    name = make_url(url).database
    run_sql(url, *functions, f'alter database "{name}" set search_path = public, pg_catalog')


@dataclass
class Holder:
    """A session holding the run lock in an open transaction."""

    conn: Connection
    pid: int


@contextmanager
def holding(engine: Engine) -> Iterator[Holder]:
    """Another session takes the run lock and keeps it until the block ends."""
    ensure_lock_table(engine)
    with engine.connect() as conn, conn.begin():
        conn.execute(text(f"lock table {RUN_LOCK.name}"))
        yield Holder(conn, int(conn.exec_driver_sql("select pg_backend_pid()").scalar_one()))


@contextmanager
def guard(url: str, holder: Holder) -> Iterator[threading.Event]:
    """Ends the holder's transaction GUARD_SECONDS from now unless the block is over by then;
    the event says whether the guard had to."""
    fired = threading.Event()

    def end_holder() -> None:
        fired.set()
        with admin(url).connect() as conn:
            stop = "select pg_catalog.pg_terminate_backend(:pid)"
            conn.execute(text(stop), {"pid": holder.pid})

    timer = threading.Timer(GUARD_SECONDS, end_holder)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def sessions_of_database(url: str, expected: int) -> int:
    """Sessions on the test's database other than the one asking, once no more than expected
    are left or a guard's time is up (a closed session's backend leaves the list just after)."""
    count = "select count(*) from pg_catalog.pg_stat_activity where datname = current_database()"
    with admin(url).connect() as conn:
        ticks = 0
        while (found := conn.exec_driver_sql(count).scalar_one() - 1) > expected and ticks < 200:
            ticks += 1
            time.sleep(0.05)
        return found


def test_a_wait_statement_timeout_does_not_end_is_ended_by_the_client(
    postgres_database: str,
) -> None:
    redshift_like(postgres_database, IGNORE_STATEMENT_TIMEOUT)
    block = stand_in(postgres_database)
    with holding(block.get_engine()) as holder, guard(postgres_database, holder) as fired:
        with pytest.raises(WarehouseBusy) as busy, block.hold():
            pass
        assert not fired.is_set(), "the run never ended its wait: the guard ended the holder"
        assert f"database session PID {holder.pid}" in str(busy.value)
        # The holder still holds: the run ended its own wait, nothing else.
        assert holder.conn.exec_driver_sql("select 1").scalar_one() == 1


def test_a_wait_a_cancel_does_not_end_is_ended_with_its_session(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_table, "CANCEL_GRACE_SECONDS", 1.0)
    redshift_like(postgres_database, IGNORE_STATEMENT_TIMEOUT, IGNORE_CANCEL)
    block = stand_in(postgres_database)
    with holding(block.get_engine()) as holder, guard(postgres_database, holder) as fired:
        with pytest.raises(WarehouseBusy), block.hold():
            pass
        assert not fired.is_set(), "the run never ended its wait: the guard ended the holder"
        # Only the holder is left on the database: the waiting session was ended.
        assert sessions_of_database(postgres_database, 1) == 1


@pytest.fixture
def regular_user(postgres_database: str) -> Iterator[str]:
    """The test's database as a regular (not super) user sees it, with Redshift's
    SVV_TRANSACTIONS, and pg_locks closed to regular users; the URL of that user."""
    name = "sparkify_" + uuid.uuid4().hex[:12]
    run_sql(
        postgres_database,
        f"create role {name} login",
        f"grant usage, create on schema public to {name}",
        SVV_TRANSACTIONS,
        f"grant select on svv_transactions to {name}",
        "revoke select on pg_catalog.pg_locks from public",
    )
    yield make_url(postgres_database).set(username=name).render_as_string(hide_password=False)
    run_sql(postgres_database, f"drop owned by {name}", f"drop role {name}")


def test_the_holder_is_named_from_what_a_regular_user_may_read(
    regular_user: str, postgres_database: str
) -> None:
    block = stand_in(regular_user)
    with (
        holding(block.get_engine()) as holder,
        guard(postgres_database, holder),
        pytest.raises(WarehouseBusy) as busy,
        block.hold(),
    ):
        pass
    user = make_url(regular_user).username
    assert f"(database session PID {holder.pid} of user {user})" in str(busy.value)


def test_a_holder_the_user_may_not_see_is_not_named(
    regular_user: str, postgres_database: str
) -> None:
    block = stand_in(regular_user)
    ensure_lock_table(block.get_engine())  # the regular user's table, as the flows' user's
    superuser = create_engine(postgres_database, poolclass=NullPool)
    with (
        holding(superuser) as holder,
        guard(postgres_database, holder),
        pytest.raises(WarehouseBusy) as busy,
        block.hold(),
    ):
        pass
    assert "held by another process after waiting" in str(busy.value)


def test_nothing_of_a_hold_stays_connected_after_it(postgres_database: str) -> None:
    block = stand_in(postgres_database, PooledStandIn)
    with block.hold() as conn:
        assert conn.exec_driver_sql("select 1").scalar_one() == 1
    assert sessions_of_database(postgres_database, 0) == 0
    with holding(stand_in(postgres_database).get_engine()) as holder:
        with guard(postgres_database, holder), pytest.raises(WarehouseBusy), block.hold():
            pass
        assert sessions_of_database(postgres_database, 1) == 1  # the holder alone
