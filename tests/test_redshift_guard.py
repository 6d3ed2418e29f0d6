"""A Redshift guard: every statement the Redshift path sends parses with sqlfluff's `redshift`
dialect, the DDL declares no unbounded text, and a run of a million song files stays within
Redshift's statement limits.

sqlfluff's redshift dialect is a grammar of Redshift's own SQL (COPY with IAM_ROLE, MANIFEST,
TIMEFORMAT; DISTSTYLE/SORTKEY; NULLS FIRST/LAST): it refuses what Redshift's parser would refuse
for syntax, which a PostgreSQL grammar would not (COPY) or would wrongly accept. It checks syntax
only; tests/test_postgres.py runs the same SQL for meaning.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache

import pytest
import sqlfluff
from sqlalchemy import event
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector
from sqlfluff.api.simple import APIParsingError, get_simple_config

from flows.etl import etl
from sql import model
from tasks.source.s3 import S3Source
from tasks.warehouse.redshift.staging_copy import copy_statement
from tasks.warehouse.staging import reset_staging
from tests import fake_redshift
from tests.test_redshift import recorder, warehouse  # noqa: F401 - the fixture

MAX_STATEMENT_BYTES = 16 * 2**20
MAX_BIND_PARAMETERS = 32_767


def redshift_parse_error(statement: str) -> str | None:
    """Why sqlfluff's redshift dialect refuses a statement (None when it parses). DB-API `%s`
    markers become Redshift's positional `$n` parameters first; repeated parameter lists are
    collapsed (`collapsed_repeats`) and each distinct text is parsed once."""
    numbered = iter(range(1, 100_000))
    text = re.sub(r"%s", lambda _: f"${next(numbered)}", statement)
    return _parse_error(collapsed_repeats(text))


# A `$n` parameter outside quoted text, which is left as it is.
_QUOTED_OR_PARAMETER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\d+")
_MARK = "\x00"  # a parameter, its number dropped so repeated groups read alike
# A parenthesized VALUES row without quoted text, one level of nesting (`CAST($1 AS BIGINT)`).
_ROW = r"\((?:[^()'\"]|\([^()'\"]*\))*\)"
_VALUES_ROWS = re.compile(
    rf"\bVALUES\s*(?P<row>{_ROW})\s*,\s*(?P=row)(?P<rest>(?:\s*,\s*(?P=row))+)", re.IGNORECASE
)
_IN_PARAMETERS = re.compile(
    r"\bIN\s*\(\s*\x00\s*,\s*\x00(?P<rest>(?:\s*,\s*\x00)+)\s*\)", re.IGNORECASE
)


def collapsed_repeats(statement: str) -> str:
    """A statement with each run of three or more alike parameter groups cut to its first two:
    the rows of a multi-row `VALUES (…), (…), …` that differ only in their parameters, a bare
    `IN ($1, $2, …, $n)`. The parameters are then renumbered from `$1`. A row or list repeats one
    grammar, so the cut one parses, or is refused, as the whole does; sqlfluff's parse time grows
    fast with a statement's length."""
    marked = _QUOTED_OR_PARAMETER.sub(lambda m: _MARK if m[0][0] == "$" else m[0], statement)
    marked = _VALUES_ROWS.sub(lambda m: _without_rest(m) if _MARK in m["row"] else m[0], marked)
    marked = _IN_PARAMETERS.sub(_without_rest, marked)
    numbered = iter(range(1, 100_000))
    return re.sub(_MARK, lambda _: f"${next(numbered)}", marked)


def _without_rest(match: re.Match[str]) -> str:
    """A match without its `rest` group: the third and later of its repeated groups."""
    start, end = match.start("rest") - match.start(), match.end("rest") - match.start()
    return match[0][:start] + match[0][end:]


@cache
def _parse_error(text: str) -> str | None:
    """`redshift_parse_error` of a text ready for sqlfluff, once per distinct text."""
    try:
        sqlfluff.parse(text, config=_redshift_config())
    except APIParsingError as error:
        return str(error).splitlines()[1] if "\n" in str(error) else str(error)
    return None


@cache
def _redshift_config():
    """sqlfluff.parse's own config for `dialect="redshift"`, built once."""
    return get_simple_config(dialect="redshift")


def test_the_guard_refuses_what_redshift_would_not_parse() -> None:
    assert redshift_parse_error("select a from t order by a desc nulls last") is None
    assert redshift_parse_error("select a from t order by a desc nullz last") is not None
    assert redshift_parse_error("copy t from 's3://b/k' iam_role 'arn' maxerror 'x'") is not None


def test_collapsing_repeated_parameter_groups_keeps_the_guards_verdict() -> None:
    row = "(${}, CAST(${} AS BIGINT))".format
    insert = "insert into t (a, b) values {}".format
    rows = [row(2 * n + 1, 2 * n + 2) for n in range(40)]
    assert collapsed_repeats(insert(", ".join(rows))) == insert(", ".join(rows[:2]))
    assert redshift_parse_error(insert(", ".join(rows))) is None
    assert redshift_parse_error(insert(", ".join(rows)).replace("(a, b)", "(a,, b)")) is not None
    assert redshift_parse_error(insert(", ".join(rows).replace("))", "),)"))) is not None
    rows[29] = rows[29].replace(",", "")  # the 30th row alone
    assert redshift_parse_error(insert(", ".join(rows))) is not None
    names = ", ".join(["%s"] * 60)
    select = "select a from t where a in ({}) and b = %s".format
    assert redshift_parse_error(select(names)) is None
    assert redshift_parse_error(select(names).replace(" and ", " nad ")) is not None
    assert redshift_parse_error(select(names + " %s")) is not None
    names = ", ".join(f"${n}" for n in range(7, 67))
    collapsed = collapsed_repeats(f"select a from t where a in ({names}) and b = $6")
    assert collapsed == "select a from t where a in ($1, $2) and b = $3"


@pytest.mark.usefixtures("prefect_server")
def test_every_statement_of_a_redshift_run_parses_as_redshift_sql(
    recorder: fake_redshift.Recorder,  # noqa: F811
    s3_week: S3Source,
    aws_credentials,
    bucket_name: str,
) -> None:
    aws_credentials.save("moto-test", overwrite=True)
    warehouse().save("guarded", overwrite=True)
    recorder.answer(r"pg_last_copy_id", ["pg_last_copy_id"], [(7,)])
    recorder.answer(r"pg_last_copy_count", ["pg_last_copy_count"], [(10,)])
    etl(
        f"s3://{bucket_name}/raw",
        "sparkify-redshift-warehouse/guarded",
        date(2018, 11, 2),
        date(2018, 11, 3),
        aws_credentials="moto-test",
    )
    statements = [s for s in recorder.executed() if s not in ("COMMIT", "ROLLBACK")]
    kinds = {s.split()[0].upper() for s in statements}
    assert {"COPY", "DELETE", "INSERT", "SELECT", "CREATE", "ANALYZE"} <= kinds
    refused = {s[:120]: error for s in statements if (error := redshift_parse_error(s))}
    assert refused == {}


def test_copy_with_the_clusters_default_role_parses() -> None:
    copy = copy_statement(
        model.staging_songs, "s3://b/m.manifest", "s3://b/j.json", warehouse(iam_role_arn="default")
    )
    assert "IAM_ROLE default" in copy
    assert redshift_parse_error(copy) is None


@pytest.mark.parametrize("table", model.ALL_TABLES, ids=lambda t: t.name)
def test_ddl_parses_and_declares_no_unbounded_text(table) -> None:
    ddl = str(CreateTable(table).compile(dialect=RedshiftDialect_redshift_connector()))
    assert redshift_parse_error(ddl) is None
    # Redshift makes TEXT and a bare VARCHAR a VARCHAR(256), and INSERT does not truncate.
    assert not re.search(r"\bTEXT\b|\bVARCHAR\b(?!\()|\bCHAR\b(?!\()", ddl, re.IGNORECASE)


def test_a_run_of_a_million_song_files_stays_within_redshifts_limits(
    recorder: fake_redshift.Recorder,  # noqa: F811
) -> None:
    files = [f"s3://sparkify-raw/sparkify/song_data/A/B/C/TR{n:07d}.json" for n in range(10**6)]
    sizes: list[tuple[int, int]] = []
    engine = warehouse().get_engine()

    def measure(conn, cursor, statement, parameters, context, executemany) -> None:
        values = parameters or ()
        sizes.append((len(statement.encode()) + sum(len(str(v)) for v in values), len(values)))

    event.listen(engine, "before_cursor_execute", measure)
    with engine.begin() as conn:
        reset_staging(conn, model.staging_songs, files)
    assert len(sizes) > 1
    assert max(size for size, _ in sizes) <= MAX_STATEMENT_BYTES
    assert max(count for _, count in sizes) <= MAX_BIND_PARAMETERS
    # COPY names its files through a manifest in S3, so its text does not grow with them.
    copy = copy_statement(model.staging_songs, "s3://b/m.manifest", "s3://b/j.json", warehouse())
    assert len(copy.encode()) < 4096
