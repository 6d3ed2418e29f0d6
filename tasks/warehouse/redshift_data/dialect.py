"""SQLAlchemy's Redshift dialect over the Data API driver, registered as `redshift+data`.

It is sqlalchemy-redshift's dialect for redshift_connector (the Redshift backend's), so the
SQL, the DDL with its table options and the reflection are the same; only the driver differs:
named parameters (`:name`, the Data API's form), so no `%` is doubled, and no connection
arguments of a socket (SSL modes, keepalives): the boto3 client and the session's target are
the engine's connect_args.

The Data API sends every parameter as text, which Redshift types from where it stands; where
nothing there says (`CASE WHEN … THEN :p`, a function's argument) it stays text. So a number,
a truth value or a time is bound with a cast to its column's type (`CAST(:p AS INTEGER)`), as
SQLAlchemy renders casts for drivers that send untyped parameters (BindTyping.RENDER_CASTS);
text and NUMERIC without precision (which Redshift reads as NUMERIC(18,0)) are left to Redshift.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy import util
from sqlalchemy.dialects import registry
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

import tasks.warehouse.redshift_data.dbapi as dbapi
from tasks.warehouse.staging import StatementLimits

DIALECT_NAME = "redshift.data"
# What one statement carries, well within the Data API's 100 KB of SQL even were its
# parameters counted with it: bound values' text, each with its placeholder and its name.
DATA_API_LIMITS = StatementLimits(files=1_000, rows=1_000, text_bytes=48 * 1024, value_overhead=48)

_Base = RedshiftDialect_redshift_connector
_BaseCompiler = _Base.RedshiftCompiler_redshift_connector


# The types whose parameters are cast to themselves in the SQL: each mapped to a subclass that
# says so (render_bind_cast), as SQLAlchemy's dialects do for their drivers.
CAST_TYPES = {
    base: type(f"Cast{base.__name__}", (base,), {"render_bind_cast": True})
    for base in (
        sqltypes.Integer,
        sqltypes.SmallInteger,
        sqltypes.BigInteger,
        sqltypes.Float,
        sqltypes.Double,
        sqltypes.Boolean,
        sqltypes.DateTime,
        sqltypes.Date,
        sqltypes.Time,
    )
}


class DataApiCompiler(_BaseCompiler):
    """redshift_connector's compiler (LIMIT and OFFSET written as integers) without its `%`
    doubling, which only a `format` paramstyle needs."""

    def visit_mod_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        """`a % b`, the modulo operator as Redshift writes it."""
        return f"{self.process(binary.left, **kw)} % {self.process(binary.right, **kw)}"

    def render_bind_cast(self, type_: Any, dbapi_type: Any, sqltext: str) -> str:
        """`CAST(:p AS TYPE)`: the standard form, so no `::` follows a placeholder the Data API
        reads."""
        target = self.dialect.type_compiler_instance.process(
            dbapi_type, identifier_preparer=self.preparer
        )
        return f"CAST({sqltext} AS {target})"

    def post_process_text(self, text: str) -> str:
        """A text() construct's SQL as written (SQLAlchemy's own handling of named style)."""
        return SQLCompiler.post_process_text(self, text)


class RedshiftDataDialect(_Base):
    """Redshift's dialect (sqlalchemy-redshift) whose DB-API module is the Data API driver."""

    driver = "data"
    default_paramstyle = "named"
    statement_compiler = DataApiCompiler
    bind_typing = BindTyping.RENDER_CASTS
    colspecs = util.update_copy(_Base.colspecs, CAST_TYPES)
    supports_sane_multi_rowcount = False
    supports_statement_cache = False  # as sqlalchemy-redshift's own dialects
    use_insertmanyvalues = False  # an executemany is a statement per row, as the driver sends it
    statement_limits = DATA_API_LIMITS  # read by tasks/warehouse/staging.py's batching

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        """The Data API driver."""
        return dbapi

    def create_connect_args(self, url: Any) -> tuple[list[Any], dict[str, Any]]:
        """Nothing from the URL: the engine's connect_args carry the client and the target."""
        return [], {}

    def on_connect(self) -> Any:
        """Only the isolation level, where one is asked for (no socket, no client encoding)."""
        if self.isolation_level is None:
            return None
        level = self.isolation_level
        return lambda conn: self.set_isolation_level(conn, level)

    def do_ping(self, dbapi_connection: Any) -> bool:
        """True: a Data API session is no socket to probe; a lost one fails its next call."""
        return True


def register() -> None:
    """Make `redshift+data://` URLs name this dialect (SQLAlchemy's public registry)."""
    registry.register(DIALECT_NAME, __name__, RedshiftDataDialect.__name__)


register()
