"""What Redshift refuses inside a transaction block, on the PostgreSQL stand-in: the stand-in
refuses it too (tests/postgres_redshift.py), and a run keeps such statements out of its one
transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import String, create_engine, inspect
from sqlalchemy.exc import DBAPIError

from sql import model
from tasks.warehouse.tables import create_tables
from tests.postgres_redshift import stand_in

pytestmark = pytest.mark.postgres


def _width(engine, table: str, column: str) -> int | None:
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns(table)}
    return getattr(columns[column], "length", None)


def test_the_stand_in_refuses_alter_column_inside_a_transaction(
    postgres_database: str, aws_credentials
) -> None:
    engine = stand_in(postgres_database, aws_credentials).get_engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("create table narrow (name varchar(4))")
    with (
        pytest.raises(DBAPIError, match="cannot run inside a transaction block"),
        engine.begin() as conn,
    ):
        conn.exec_driver_sql("alter table narrow alter column name type varchar(8)")
    with (
        pytest.raises(DBAPIError, match="cannot run inside a transaction block"),
        engine.begin() as conn,
    ):
        conn.exec_driver_sql("truncate narrow")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("alter table narrow alter column name type varchar(8)")
    assert _width(engine, "narrow", "name") == 8


def test_a_run_widens_a_narrower_column_outside_its_transaction(
    postgres_database: str, aws_credentials
) -> None:
    """A warehouse created when a column was narrower is brought to the model's width before
    the run's transaction begins (its ALTER would fail inside it), and the run goes on."""
    block = stand_in(postgres_database, aws_credentials)
    plain = create_engine(postgres_database)
    column = model.users.c.first_name
    wanted = column.type.length
    with plain.begin() as conn:
        create_tables(conn)
        conn.exec_driver_sql(
            f"alter table users alter column first_name type {String(wanted // 2).compile()}"
        )
    assert _width(plain, "users", "first_name") == wanted // 2

    with block.hold() as conn:
        create_tables(conn)

    assert _width(plain, "users", "first_name") == wanted
