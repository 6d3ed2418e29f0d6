"""The Data API warehouse end to end: the sparkify-etl flow through boto3's real `redshift-data`
client against a local Data API endpoint (tests/data_api_server.py) that runs each statement on
the PostgreSQL stand-in, COPY emulated. The star tables must equal DuckDB's row for row, edge
cases included; every statement must stay within the Data API's 100 KB and parse as Redshift
SQL (sqlfluff's redshift dialect, as tests/test_redshift_guard.py checks the driver's path)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, create_engine, func, select, text
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.base import PGDDLCompiler, PGDialect
from sqlalchemy.pool import NullPool

import flows.ephemeral as ephemeral
from flows.etl import etl
from sql import model
from tasks.common.errors import WarehouseBusy
from tasks.warehouse.protocol import Reject
from tasks.warehouse.redshift.lock_table import RUN_LOCK, ensure_lock_table
from tasks.warehouse.redshift_data.dbapi import MAX_SQL_BYTES
from tasks.warehouse.redshift_data.dialect import RedshiftDataDialect
from tasks.warehouse.redshift_data.spec import spec_fields
from tasks.warehouse.redshift_data.warehouse import RedshiftDataWarehouse
from tasks.warehouse.resolve import check_warehouse
from tasks.warehouse.staging import insert_rejects, reset_staging
from tasks.warehouse.tables import create_tables
from tests.conftest import upload_tree
from tests.data_api_server import LocalDataApi
from tests.fake_redshift import Recorder
from tests.postgres_redshift import ROLE, load_into_duckdb, loading_bucket, run_rejects, star_rows
from tests.test_cluster import credentials_block  # noqa: F401 - the fixture
from tests.test_cluster_teardown import cluster_names, cluster_of  # noqa: F401 - the fixture
from tests.test_postgres import EDGE_CASES, edge_days, on_day, write_edges
from tests.test_redshift_guard import redshift_parse_error

pytestmark = pytest.mark.postgres


class StandInDataDialect(RedshiftDataDialect):
    """The Data API dialect with PostgreSQL's DDL (no DISTSTYLE, SORTKEY) and reflection (the
    stand-in has none of the Redshift catalog sqlalchemy-redshift reads: pg_class.reldiststyle,
    svv_external_*), as the driver's stand-in runs the Redshift SQL on PostgreSQL's dialect.
    Redshift's DDL is checked apart (tests/test_redshift_guard.py)."""

    supports_statement_cache = False
    ddl_compiler = PGDDLCompiler
    has_table = PGDialect.has_table
    get_table_names = PGDialect.get_table_names
    get_view_names = PGDialect.get_view_names


registry.register("redshift.data_stand_in", __name__, StandInDataDialect.__name__)


class StandInDataWarehouse(RedshiftDataWarehouse):
    """The Data API warehouse on the local endpoint's stand-in (tests only)."""

    _block_type_name = "Sparkify Redshift Data API On PostgreSQL"
    _block_type_slug = "sparkify-redshift-data-on-postgres"
    _description = "Tests only: the Data API warehouse on a local endpoint over PostgreSQL."

    def url(self) -> URL:
        """The stand-in's dialect."""
        return URL.create("redshift+data_stand_in")


BLOCK_TYPE = StandInDataWarehouse.get_block_type_slug()
TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}
# A `:name` placeholder outside literals (a cast's `::`, an ARN's or a time format's colon
# follow a word character or a colon).
_PLACEHOLDER = re.compile(r"(?<![\w:]):[A-Za-z_]\w*")


@pytest.fixture
def sent(data_api: LocalDataApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """boto3's chain pointed at the local Data API for redshift-data (S3 stays on moto through
    the source's block); every ExecuteStatement request the backend sends, as sent."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", data_api.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the driver's own retries, not botocore's
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests: list[dict] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        requests.append(dict(params))

    client = warehouse().client()
    event = "before-parameter-build.redshift-data.ExecuteStatement"
    client.meta.events.register(event, record)
    yield requests
    client.meta.events.unregister(event, record)


def warehouse(**changes: Any) -> StandInDataWarehouse:
    """A block on the local endpoint's cluster (any name: the endpoint runs every statement on
    its one database)."""
    fields = {"cluster_identifier": "sparkify", "user": "sparkify", "iam_role_arn": ROLE}
    return StandInDataWarehouse(**{**fields, **changes})


@pytest.fixture
def load_both(
    prefect_server,
    postgres_database: str,
    aws_credentials,
    bucket_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sent: list[dict],
) -> Callable[..., dict[str, Any]]:
    """Load a source directory, uploaded to S3, with the sparkify-etl flow through the Data API
    (a saved block, or the spec given) and into DuckDB; both summaries and star tables."""
    client = loading_bucket(aws_credentials, bucket_name, tmp_path, monkeypatch)

    def load(source: Path, spec: str | None = None) -> dict[str, Any]:
        warehouse().save("data-api", overwrite=True)
        upload_tree(client, bucket_name, source, "raw")
        uri = f"s3://{bucket_name}/raw"
        on_api = etl(uri, spec or f"{BLOCK_TYPE}/data-api", aws_credentials="moto-test")
        on_duckdb, duckdb_rows = load_into_duckdb(uri, tmp_path / "wh.duckdb")
        return {
            "summaries": (on_api, on_duckdb),
            "api": star_rows(create_engine(postgres_database)),
            "duckdb": duckdb_rows,
        }

    return load


def test_the_edge_cases_load_through_the_data_api_as_into_duckdb(
    load_both, small_source: Path, tmp_path: Path, sent: list[dict]
) -> None:
    root = tmp_path / "edges"
    shutil.copytree(small_source, root)
    days = edge_days(EDGE_CASES)
    for c in EDGE_CASES:
        write_edges(root, [on_day(e, days[c.name][0]) for e in c.events], c.songs, days[c.name])

    loaded = load_both(root)

    assert all(loaded["api"][t.name] for t in model.STAR_TABLES)
    assert loaded["api"] == loaded["duckdb"]
    on_api, on_duckdb = loaded["summaries"]
    total = tuple(map(sum, zip(*(c.rejects for c in EDGE_CASES), strict=True)))
    assert run_rejects(on_api) == run_rejects(on_duckdb) == total
    statements = [r["Sql"] for r in sent]
    kinds = {s.split()[0].upper() for s in statements}
    assert {"BEGIN", "COPY", "LOCK", "DELETE", "INSERT", "SELECT", "COMMIT"} <= kinds
    assert max(len(s.encode()) for s in statements) <= MAX_SQL_BYTES


def test_every_statement_of_a_data_api_run_named_by_a_spec_parses_as_redshift_sql(
    load_both,
    week_source: Path,
    bucket_name: str,
    sent: list[dict],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RedshiftDataWarehouse, "url", StandInDataWarehouse.url)
    spec = f"redshift-data://sparkify/dev?user=sparkify&iam_role={ROLE}"
    loaded = load_both(week_source, spec=spec)
    assert loaded["api"] == loaded["duckdb"]
    # The dialect's probes left out, as the driver path's guard leaves them.
    statements = set(Recorder([r["Sql"] for r in sent]).executed()) - TRANSACTION_CONTROL
    numbered = iter(range(1, 100_000))
    refused = {
        s[:120]: error
        for s in statements
        if (error := redshift_parse_error(_PLACEHOLDER.sub(lambda _: f"${next(numbered)}", s)))
    }
    assert refused == {}
    # Every value went as a parameter: none of a run's file names is in any statement's text.
    assert not [s for s in statements if bucket_name in s and not s.upper().startswith("COPY")]


def test_many_long_file_names_and_wide_rejects_stay_within_the_data_apis_statement_size(
    sent: list[dict],
) -> None:
    files = [f"s3://sparkify-raw/{'d' * 900}/song_data/TR{n:05d}.json" for n in range(3_000)]
    at = datetime(2024, 1, 1)
    wide = [Reject(f, 1, "too long", "é" * 4096) for f in files[:400]]
    engine = warehouse().get_engine()
    with engine.begin() as conn:
        create_tables(conn)
        insert_rejects(conn, wide, at)
        reset_staging(conn, model.staging_songs, files)
        left = conn.execute(select(func.count()).select_from(model.load_rejects)).scalar_one()
    engine.dispose()
    assert left == 0
    sizes = [len(r["Sql"].encode()) for r in sent]
    assert max(sizes) <= MAX_SQL_BYTES
    total = [
        s + sum(len(p["value"].encode()) for p in r.get("Parameters", []))
        for r, s in zip(sent, sizes, strict=True)
    ]
    assert max(total) <= MAX_SQL_BYTES  # parameters included, should they count
    assert len([r for r in sent if r["Sql"].startswith("DELETE FROM load_rejects")]) > 1


def test_a_throttled_data_api_is_waited_for_and_the_run_goes_on(
    data_api: LocalDataApi, sent: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARKIFY_RETRY_DELAY_SCALE", "0")
    data_api.controls.fail_next(2, "ThrottlingException", "ExecuteStatement")
    data_api.controls.fail_next(1, "ActiveStatementsExceededException", "ExecuteStatement")
    engine = warehouse().get_engine()
    with engine.connect() as conn:
        assert conn.execute(select(func.upper("redshift"))).scalar_one() == "REDSHIFT"
    engine.dispose()
    assert data_api.controls.calls.count("ExecuteStatement") >= 3 + 2


def test_a_run_that_waits_too_long_for_the_run_lock_is_busy_not_hung(
    postgres_database: str, sent: list[dict]
) -> None:
    holder = create_engine(postgres_database, poolclass=NullPool)
    ensure_lock_table(holder)
    with holder.begin() as conn:
        conn.execute(text(f"lock table {RUN_LOCK.name}"))
        with (
            pytest.raises(WarehouseBusy, match="held by another process"),
            warehouse(lock_wait_seconds=1).hold(),
        ):
            pass
    holder.dispose()
    # The wait's statement was ended from a session of its own, by a cancel the stand-in obeys.
    assert any("pg_cancel_backend" in r["Sql"] for r in sent)


def test_an_ephemeral_run_can_load_its_cluster_through_the_data_api(
    aws_credentials,
    credentials_block: str,  # noqa: F811
    cluster_names: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouses: list[str] = []

    def recording_etl(source: str, warehouse: str, *args: Any) -> dict:
        warehouses.append(warehouse)
        return {}

    monkeypatch.setattr(ephemeral, "etl", recording_etl)
    state = ephemeral.ephemeral_etl(
        cluster_names["source"],
        aws_credentials=credentials_block,
        cluster=cluster_of(cluster_names),
        data_api=True,
        return_state=True,
    )
    assert state.is_completed()
    identifier = ephemeral.ephemeral_identifier(state.state_details.flow_run_id)
    [spec] = warehouses
    assert check_warehouse(spec) == "data-api"
    fields = spec_fields(spec)
    assert (fields["cluster_identifier"], fields["database"]) == (identifier, "dev")
    assert fields["iam_role_arn"].endswith(f":role/{cluster_names['role_name']}")
    assert fields["aws_credentials"] == credentials_block
    assert fields["user"]  # the master user, signed in by GetClusterCredentials
