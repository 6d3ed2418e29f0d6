"""Redshift's COPY as tests/redshift_copy.py emulates it on PostgreSQL: the product's COPY text
read back, and what a COPY loads, rejects and logs, after Redshift's documentation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.exc import InternalError

from sql import model
from tasks.source.s3 import S3Source
from tasks.warehouse.redshift.staging_copy import copy_statement
from tests.postgres_redshift import ROLE, PostgresRedshiftWarehouse, stand_in
from tests.redshift_copy import CopyNotEmulated, parse_copy

pytestmark = pytest.mark.postgres


def test_copy_statement_of_the_product_is_read_as_redshift_would(aws_credentials) -> None:
    block = stand_in("postgresql+psycopg2://unused", aws_credentials, max_errors=7)
    statement = copy_statement(model.staging_events, "s3://b/it's\\x/m", "s3://b/j.json", block)
    command = parse_copy(statement)
    assert command.table == "staging_events"
    assert command.columns == [c.name for c in model.staging_events.columns]
    assert command.source == "s3://b/it's\\x/m"
    assert (command.jsonpaths, command.manifest, command.max_errors) == ("s3://b/j.json", True, 7)
    assert (command.timeformat, command.truncate_columns) == ("epochmillisecs", False)
    assert command.ignored["iam_role"] == block.iam_role_arn
    with pytest.raises(CopyNotEmulated, match="ACCEPTINVCHARS"):
        parse_copy(statement + "\nACCEPTINVCHARS")


def test_copy_with_the_clusters_default_role_is_read_as_redshift_would(aws_credentials) -> None:
    block = stand_in("postgresql+psycopg2://unused", aws_credentials, iam_role_arn="DEFAULT")
    command = parse_copy(copy_statement(model.staging_songs, "s3://b/m", "s3://b/j.json", block))
    assert command.ignored["iam_role"] == "default"
    assert (command.table, command.source, command.manifest) == ("staging_songs", "s3://b/m", True)
    with pytest.raises(CopyNotEmulated, match="expected default"):
        parse_copy("COPY t FROM 's3://b/m' IAM_ROLE dflt FORMAT AS JSON 's3://b/j'")


PROBE_LINES = [
    '{"id": 1, "name": "abc", "score": 1.5, "at": 1541030455924}',
    '{"id": "x"}',  # 1207: not digits
    '{"name": "a"}',  # 1213: NULL for the NOT NULL id
    '{"id": 2, "name": "toolong"}',  # 1204: longer than VARCHAR(5)
    "not json",  # 1216
    '{"id": 3, "score": "high"}',  # 1208
    '{"id": 4, "at": "yesterday"}',  # 1206
    '{"id": 99999999999}',  # 1204: out of INTEGER's range
    '{"id": 5, "name": "ééé"}',  # 1204: three characters, but six bytes
    '{"id": 6, "at": "1541030455924", "name": 42}',  # numbers and quoted numbers convert
    b'{"id": 7, "name": "\xff"}',  # 1220: invalid UTF-8
    '{"id": 8.5}',  # 1207: Redshift's integers have no decimals
]


@dataclass
class Probe:
    """A small table, its JSON lines in S3, and the stand-in's COPY into it."""

    engine: Engine
    bucket: str
    block: PostgresRedshiftWarehouse

    def copy(self, conn: Connection, options: str) -> None:
        """COPY the probe lines into copy_probe with these options."""
        self.block.copy(
            conn,
            f"COPY copy_probe FROM 's3://{self.bucket}/probe/' IAM_ROLE '{ROLE}' FORMAT AS "
            f"JSON 's3://{self.bucket}/probe.jsonpaths' TIMEFORMAT 'epochmillisecs' {options}",
        )


@pytest.fixture
def probe(postgres_database: str, aws_credentials, bucket_name: str) -> Probe:
    """An empty probe table, and the probe lines with their JSONPaths in a bucket."""
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "create table copy_probe "
            "(id integer not null, name varchar(5), score double precision, at timestamp)"
        )
    client = S3Source(bucket_name, "", aws_credentials).client()
    client.create_bucket(Bucket=bucket_name)
    body = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in PROBE_LINES)
    client.put_object(Bucket=bucket_name, Key="probe/part-1.json", Body=body)
    paths = {"jsonpaths": ["$['id']", "$.name", "$['score']", "$['at']"]}
    client.put_object(Bucket=bucket_name, Key="probe.jsonpaths", Body=json.dumps(paths).encode())
    return Probe(engine, bucket_name, stand_in(postgres_database, aws_credentials))


def test_emulated_copy_rejects_what_redshift_documents(probe: Probe) -> None:
    with probe.engine.begin() as conn:
        probe.copy(conn, "MAXERROR 100")
        loaded = conn.execute(text("select id, name, score, at from copy_probe order by id"))
        assert loaded.fetchall() == [
            (1, "abc", 1.5, datetime(2018, 11, 1, 0, 0, 55, 924000)),
            (6, "42", None, datetime(2018, 11, 1, 0, 0, 55, 924000)),
        ]
        assert conn.execute(select(func.pg_last_copy_count())).scalar_one() == 2
        errors = conn.execute(
            text(
                "select line_number, trim(column_name), error_code from sys_load_error_detail "
                "where session_id = pg_backend_pid() order by line_number"
            )
        ).fetchall()
        # A required field missing from a record (as source_file is from a song file COPY reads
        # as itself, tests/test_song_bundles.py): logged with its file, line, column and reason.
        missing = conn.execute(
            text(
                "select trim(file_name), line_number, trim(column_name), trim(error_message) "
                "from sys_load_error_detail "
                "where session_id = pg_backend_pid() and error_code = 1213"
            )
        ).one()
    assert missing == (
        f"s3://{probe.bucket}/probe/part-1.json",
        3,
        "id",
        "A field specified as NOT NULL contained no data.",
    )
    assert errors == [
        (2, "id", 1207),
        (3, "id", 1213),
        (4, "name", 1204),
        (5, None, 1216),
        (6, "score", 1208),
        (7, "at", 1206),
        (8, "id", 1204),
        (9, "name", 1204),
        (11, "name", 1220),
        (12, "id", 1207),
    ]
    with probe.engine.begin() as conn:
        probe.copy(conn, "TRUNCATECOLUMNS MAXERROR 100")
        names = conn.execute(text("select name from copy_probe where id in (2, 5) order by id"))
        assert names.scalars().all() == ["toolo", "éé"]  # cut at 5 bytes, on a character


@pytest.mark.parametrize(("max_errors", "fails"), [(10, True), (11, False), (0, True)])
def test_copy_fails_when_rejects_reach_maxerror(probe: Probe, max_errors: int, fails: bool):
    # The documented rule: "If the load returns the error_count number of errors or greater,
    # the load fails"; MAXERROR 0 (the default) fails on the first error.
    with probe.engine.connect() as conn:
        before = conn.execute(select(func.pg_last_copy_id())).scalar_one()
        if fails:  # a database error, as Redshift's
            with pytest.raises(InternalError, match="Load into table 'copy_probe' failed"):
                probe.copy(conn, f"MAXERROR {max_errors}")
            conn.rollback()
        else:
            probe.copy(conn, f"MAXERROR {max_errors}")
        last = conn.execute(select(func.pg_last_copy_id())).scalar_one()
        assert (last == before) is fails  # a failed COPY is not the session's last COPY
        logged = conn.execute(text("select count(*) from sys_load_error_detail")).scalar_one()
        assert logged == min(10, max(max_errors, 1))  # the log survives the rollback
