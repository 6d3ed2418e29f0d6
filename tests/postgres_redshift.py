"""An embedded PostgreSQL standing in for Redshift's SQL: the Redshift warehouse block with a
PostgreSQL engine under it, COPY emulated (tests/redshift_copy.py), and the few Redshift
system objects the product reads (sys_load_error_detail, stl_load_errors, pg_last_copy_id(),
pg_last_copy_count()).

PostgreSQL stands in for the SQL, not for COPY or the driver: redshift_connector cannot talk to
a stock PostgreSQL server, so the engine is psycopg2's, and COPY is Python following Redshift's
documentation. Everything else the Redshift warehouse sends (DDL, staging resets, transforms,
quality checks, load-error queries) runs on PostgreSQL as sent.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2.extensions
import pytest
from prefect_aws import AwsCredentials
from pydantic import Field, SecretStr
from sqlalchemy import Column, Connection, Engine, create_engine, event, make_url, select
from sqlalchemy.pool import NullPool

from sql import model
from tasks.common.aws import aws_client
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests.redshift_copy import emulate_copy

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"

# Redshift's objects the product reads, as PostgreSQL objects: query ids come from a sequence
# (never rolled back, as Redshift's are not); the last COPY of a session from a bookkeeping
# table the emulated COPY writes in its transaction, so a rolled-back COPY leaves the one
# before it as pg_last_copy_id(). The load-error logs keep Redshift's padded CHAR columns.
REDSHIFT_CATALOG = (
    "create sequence redshift_query_id",
    """create table sys_load_error_detail (
        query_id bigint not null,
        session_id integer not null,
        start_time timestamp not null,
        file_name char(256) not null,
        line_number bigint not null,
        column_name char(127),
        error_code integer not null,
        error_message char(512) not null
    )""",
    """create table stl_load_errors (
        query integer not null,
        session integer not null,
        starttime timestamp not null,
        filename char(256) not null,
        line_number bigint not null,
        colname char(127),
        err_code integer not null,
        err_reason char(100) not null,
        raw_line char(1024)
    )""",
    """create table redshift_copy_log (
        query_id bigint primary key,
        session_id integer not null,
        rows_loaded bigint not null
    )""",
    """create function pg_last_copy_id() returns integer language sql stable as $$
        select coalesce(max(query_id), -1)::integer from redshift_copy_log
        where session_id = pg_backend_pid()
    $$""",
    """create function pg_last_copy_count() returns integer language sql stable as $$
        select coalesce((
            select rows_loaded from redshift_copy_log where session_id = pg_backend_pid()
            order by query_id desc limit 1
        ), 0)::integer
    $$""",
    # GETDATE(): the current statement's start, in the session's time zone (UTC by default).
    """create function getdate() returns timestamp language sql stable as $$
        select statement_timestamp()::timestamp
    $$""",
    """create function redshift_copy_failed(reason text) returns void language plpgsql as $$
        begin raise exception using message = reason, errcode = 'XX000'; end
    $$""",
    """create function redshift_refuses(reason text) returns void language plpgsql as $$
        begin raise exception using message = reason, errcode = '25001'; end
    $$""",
)


# Redshift's VARCHAR comparison, which ignores trailing blanks (PostgreSQL's does not), as a
# type of its own: text whose comparisons trim trailing blanks, while length() counts them as
# Redshift's LENGTH does. A test gives it to a column with compare_as_redshift().
_COMPARISONS = {"lt": "<", "le": "<=", "eq": "=", "ge": ">=", "gt": ">", "ne": "<>"}
REDSHIFT_VARCHAR = (
    "create type redshift_varchar",
    *(
        f"create function redshift_varchar_{io}({arg}) returns {result} language internal "
        f"immutable strict as '{builtin}'"
        for io, arg, result, builtin in (
            ("in", "cstring", "redshift_varchar", "textin"),
            ("out", "redshift_varchar", "cstring", "textout"),
        )
    ),
    "create type redshift_varchar (input = redshift_varchar_in, output = redshift_varchar_out, "
    "like = text, category = 'S', collatable = true)",
    "create cast (redshift_varchar as text) without function as implicit",
    "create cast (varchar as redshift_varchar) without function as assignment",
    """create function redshift_varchar_cmp(a redshift_varchar, b redshift_varchar)
        returns integer language sql immutable as $$
        select case when rtrim(a::text, ' ') < rtrim(b::text, ' ') then -1
        when rtrim(a::text, ' ') > rtrim(b::text, ' ') then 1 else 0 end
    $$""",
    *(
        statement
        for name, op in _COMPARISONS.items()
        for statement in (
            f"create function redshift_varchar_{name}(a redshift_varchar, b redshift_varchar) "
            f"returns boolean language sql immutable as $$ "
            f"select redshift_varchar_cmp(a, b) {op} 0 $$",
            f"create operator {op} (leftarg = redshift_varchar, rightarg = redshift_varchar, "
            f"function = redshift_varchar_{name})",
        )
    ),
    "create operator class redshift_varchar_ops default for type redshift_varchar using btree "
    "as operator 1 <, operator 2 <=, operator 3 =, operator 4 >=, operator 5 >, "
    "function 1 redshift_varchar_cmp(redshift_varchar, redshift_varchar)",
)


class PostgresRedshiftWarehouse(RedshiftWarehouse):
    """The Redshift warehouse with an embedded PostgreSQL database under it (tests only)."""

    _block_type_name = "Sparkify Redshift On PostgreSQL"
    _block_type_slug = "sparkify-redshift-on-postgres"
    _description = "Tests only: the Redshift warehouse's SQL on PostgreSQL, COPY emulated."

    postgres_url: SecretStr = Field(description="SQLAlchemy URL of the PostgreSQL database.")
    datestyle: str | None = Field(
        default=None,
        description="DATESTYLE of every session, as a Redshift user's default would set it "
        "(psycopg2 sets ISO when it connects; redshift_connector leaves the server's).",
    )
    timezone: str = Field(
        default="UTC",
        description="TIMEZONE of every session, as ALTER USER … SET timezone sets a Redshift "
        "user's (UTC by default there, whatever the PostgreSQL server's).",
    )

    def get_engine(self) -> Engine:
        """An engine on the PostgreSQL database (psycopg2; no pool, so nothing outlives a run),
        whose connections send statements as redshift_connector does (OneByOneConnection)."""
        engine = create_engine(
            self.postgres_url.get_secret_value(),
            poolclass=NullPool,
            use_insertmanyvalues=False,  # SQLAlchemy batches no INSERT for redshift_connector
            connect_args={"connection_factory": OneByOneConnection},
        )
        event.listen(engine, "before_cursor_execute", refuse_in_transaction, retval=True)
        event.listen(engine, "connect", self._set_session)
        return engine

    def _set_session(self, dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("select set_config('timezone', %s, false)", (self.timezone,))
            if self.datestyle:
                cursor.execute("select set_config('datestyle', %s, false)", (self.datestyle,))

    def copy(self, conn: Connection, statement: str) -> None:
        """Emulate Redshift's COPY, reading S3 with the block's credentials."""
        emulate_copy(conn, statement, aws_client(self.aws_credentials or AwsCredentials(), "s3"))

    def describe(self) -> str:
        """The stand-in and its database."""
        return f"redshift-on-postgres:{make_url(self.postgres_url.get_secret_value()).database}"


# Statements Redshift refuses inside a transaction block (BEGIN ... END), which PostgreSQL
# runs there: ALTER TABLE's ALTER COLUMN and APPEND, VACUUM, and TRUNCATE, which Redshift runs
# but only by committing the transaction it is in first.
REFUSED_IN_TRANSACTION = re.compile(
    r"^\s*(alter\s+table\s+\S+\s+(alter\s+column|append)|vacuum|truncate)\b", re.IGNORECASE
)


def refuse_in_transaction(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> tuple[str, Any]:
    """A statement Redshift refuses inside a transaction block fails there on the stand-in
    too, with Redshift's message (psycopg2 opens a block before a statement unless the
    connection is in autocommit)."""
    refused = REFUSED_IN_TRANSACTION.match(statement)
    if refused and not cursor.connection.autocommit:
        says = f"{refused.group(1).split()[0].upper()} cannot run inside a transaction block"
        return "select redshift_refuses(%(says)s)", {"says": f"{says}: {statement[:80]}"}
    return statement, parameters


class OneByOneCursor(psycopg2.extensions.cursor):
    """A psycopg2 cursor whose executemany sends one statement per row, as redshift_connector's
    does (psycopg2's own hides that); every statement sent is noted on its connection."""

    def execute(self, query: Any, vars: Any = None) -> None:
        """Send one statement, noted as sent."""
        self.connection.sent.append(query if isinstance(query, str) else query.decode())
        super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        """One statement per row: a round trip each."""
        for row in vars_list:
            self.execute(query, row)


class OneByOneConnection(psycopg2.extensions.connection):
    """A psycopg2 connection of OneByOneCursors, with the statements it sent (`sent`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """A OneByOneCursor."""
        return super().cursor(*args, **{"cursor_factory": OneByOneCursor, **kwargs})


def compare_as_redshift(block: PostgresRedshiftWarehouse, column: Column[Any]) -> None:
    """Make a column of the block's tables compare as Redshift's VARCHAR does, trailing blanks
    ignored (outside any transaction: the stand-in refuses ALTER COLUMN inside one)."""
    engine = create_engine(block.postgres_url.get_secret_value(), poolclass=NullPool)
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        conn.exec_driver_sql(
            f"alter table {quote(column.table.name)} alter column {quote(column.name)} "
            "type redshift_varchar"
        )
        conn.commit()
    engine.dispose()


def stand_in(postgres_url: str, aws_credentials: AwsCredentials, **changes: Any):
    """A stand-in block for a database, writing and reading S3 with these credentials."""
    fields = {
        "host": "postgres.invalid",
        "user": "sparkify",
        "password": "not-used",
        "iam_role_arn": ROLE,
        "postgres_url": postgres_url,
        "aws_credentials": aws_credentials,
    }
    return PostgresRedshiftWarehouse(**{**fields, **changes})


def _admin(server_url: str) -> Engine:
    return create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def create_database(server_url: str, name: str) -> str:
    """A new database on the server with Redshift's objects installed; its SQLAlchemy URL."""
    engine = _admin(server_url)
    quoted = engine.dialect.identifier_preparer.quote(name)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"create database {quoted}")
    url = make_url(server_url).set(database=name)
    with create_engine(url, poolclass=NullPool).begin() as conn:
        for statement in (*REDSHIFT_CATALOG, *REDSHIFT_VARCHAR):
            conn.exec_driver_sql(statement)
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop a test's database, closing whatever connections it still has."""
    engine = _admin(server_url)
    quoted = engine.dialect.identifier_preparer.quote(name)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"drop database if exists {quoted} with (force)")


def _plain(value: Any) -> Any:
    """A value in one representation on both engines (numeric results as float)."""
    return float(value) if isinstance(value, Decimal) else value


def star_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every star table's rows, sorted, read through SQLAlchemy on any engine."""
    with engine.connect() as conn:
        return {
            t.name: sorted(
                (tuple(_plain(v) for v in row) for row in conn.execute(select(t))), key=repr
            )
            for t in model.STAR_TABLES
        }


def loading_bucket(
    aws_credentials: AwsCredentials, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """What a test loading S3 objects on both warehouses needs first: a download cache of its
    own, the credentials saved as block `moto-test`, and the bucket; its S3 client."""
    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "cache"))
    aws_credentials.save("moto-test", overwrite=True)
    client = aws_client(aws_credentials, "s3")
    client.create_bucket(Bucket=bucket)
    return client


def load_into_duckdb(uri: str, db: Path) -> tuple[dict[str, Any], dict[str, list[tuple]]]:
    """The sparkify-etl flow from the S3 prefix into a DuckDB file: its summary and star rows."""
    from flows.etl import etl
    from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse

    summary = etl(uri, str(db), aws_credentials="moto-test")
    return summary, star_rows(DuckDBWarehouse(path=str(db)).get_engine())


def run_rejects(summary: dict[str, Any]) -> tuple[int, int]:
    """A run's rejects: events, songs."""
    staged = summary["staged"]
    return staged["events"]["rejects"], staged["songs"]["rejects"]
