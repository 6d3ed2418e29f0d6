"""The model's tables on any warehouse: create them or bring them to the model, drop and create
them, count their rows."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine, Table, column, func, inspect, select
from sqlalchemy import table as table_clause

from sql import model
from tasks.common.errors import UserError
from tasks.common.retry import RETRY_TRANSIENT
from tasks.warehouse.hold import transaction
from tasks.warehouse.protocol import Warehouse


def create_tables(conn: Connection, drop: bool = False) -> list[str]:
    """Create every table of the model that is missing (dropping them all first if asked), and
    bring staging tables to the model: they hold nothing between runs, so one whose columns
    differ is recreated. Narrow text columns of existing tables are widened before the run's
    transaction (`widen_text_columns`)."""
    if drop:
        model.metadata.drop_all(conn)
    existing = set(inspect(conn).get_table_names())
    for table in model.STAGING_TABLES:
        if table.name in existing and list(_stored_columns(conn, table)) != table.columns.keys():
            table.drop(conn)
    model.metadata.create_all(conn, checkfirst=True)
    return [t.name for t in model.ALL_TABLES]


def widen_text_columns(engine: Engine) -> list[str]:
    """Widen every bounded text column of the existing tables that is narrower than the
    model's, each ALTER committed on its own, outside any transaction block: Redshift refuses
    ALTER COLUMN inside one (DuckDB's VARCHAR has no length to widen). The ALTERs go through
    a DB-API connection in autocommit that is closed afterwards, never pooled. The columns
    widened, as table.column."""
    with engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        alters = [a for t in model.ALL_TABLES if t.name in existing for a in _widenings(conn, t)]
    if not alters:
        return []
    raw = engine.raw_connection()
    try:
        raw.rollback()  # whatever the connection's set-up began
        raw.driver_connection.autocommit = True
        cursor = raw.cursor()
        for _, statement in alters:
            cursor.execute(statement)
    finally:
        raw.invalidate()
    return [column for column, _ in alters]


_INFO_COLUMNS = table_clause(
    "columns",
    column("table_name"),
    column("column_name"),
    column("ordinal_position"),
    column("character_maximum_length"),
    schema="information_schema",
)


def _stored_columns(conn: Connection, table: Table) -> dict[str, int | None]:
    """The stored table's columns in order, with their text length where bounded (from
    information_schema, which DuckDB, PostgreSQL and Redshift all have)."""
    info = _INFO_COLUMNS.c
    query = (
        select(info.column_name, info.character_maximum_length)
        .where(info.table_name == table.name)
        .order_by(info.ordinal_position)
    )
    return {name: length for name, length in conn.execute(query)}


def _widenings(conn: Connection, table: Table) -> list[tuple[str, str]]:
    """The ALTER of each bounded text column shorter than the model's to the model's length
    (Redshift widens a VARCHAR in place), with its table.column."""
    stored = _stored_columns(conn, table)
    preparer = conn.dialect.identifier_preparer
    alters = []
    for col in table.columns:
        wanted = getattr(col.type, "length", None)
        length = stored.get(col.name)
        if wanted and length and length < wanted:
            statement = (
                f"alter table {preparer.format_table(table)} alter column "
                f"{preparer.quote(col.name)} type {col.type.compile(dialect=conn.dialect)}"
            )
            alters.append((f"{table.name}.{col.name}", statement))
    return alters


class RefusedToDrop(UserError):
    """Dropping tables that exist was not confirmed: a user's mistake, said in one line."""


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


@task(name="ensure-tables", cache_policy=NO_CACHE)
def ensure_tables(conn: Connection) -> list[str]:
    """Create the model's tables where missing, in the run's transaction."""
    return create_tables(conn)


def count_rows(conn: Connection) -> dict[str, int]:
    """Row counts of the star tables and the rejects table."""
    tables = (*model.STAR_TABLES, model.load_rejects)
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in tables
    }


@task(
    name="row-counts",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def table_counts(warehouse: Warehouse) -> dict[str, int]:
    """Row counts of every star table after the run."""
    with warehouse.get_engine().connect() as conn:
        return count_rows(conn)
