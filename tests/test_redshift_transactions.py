"""What Redshift refuses inside a transaction block, on the PostgreSQL stand-in: the stand-in
refuses it too (tests/postgres_redshift.py), and a run keeps such statements out of its one
transaction."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import String, create_engine, event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from sql import model
from tasks.source.s3 import S3Source
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


def test_staging_on_redshift_is_a_new_table_each_time_never_a_delete(
    postgres_database: str, aws_credentials, s3_week: S3Source
) -> None:
    """Rows deleted on Redshift stay as ghost rows, scanned until a VACUUM (which no
    transaction may run): each staging drops and creates the table again in the run's
    transaction instead, and never deletes from it."""
    files = s3_week.run_files(None, None)
    block = stand_in(postgres_database, aws_credentials)
    engine = block.get_engine()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    table_id = text("select 'staging_songs'::regclass::oid")
    ids = []
    for _ in range(2):
        with engine.begin() as conn:
            create_tables(conn)
            report = block.stage_songs(conn, s3_week, files.song_files, datetime(2024, 1, 1))
            ids.append(conn.execute(table_id).scalar_one())
            staged = conn.execute(select(func.count()).select_from(model.staging_songs))
            assert staged.scalar_one() == report.rows > 0
    assert ids[0] != ids[1]
    assert not [s for s in statements if s.lstrip().lower().startswith("delete from staging")]
