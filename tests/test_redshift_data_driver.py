"""The Data API driver (tasks/warehouse/redshift_data/dbapi.py) against botocore's Stubber: the
calls it makes in a session, the transaction it keeps, paging, typed values, the errors it
raises and the calls it tries again. The block's fields and the `redshift-data://` spec too.
End-to-end runs through a local Data API endpoint are in tests/test_redshift_data.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from sqlalchemy import case, func, select

from sql import model
from tasks.common.errors import BadArgument
from tasks.common.retry import is_transient
from tasks.warehouse.redshift_data import calls, dbapi
from tasks.warehouse.redshift_data.calls import Polling
from tasks.warehouse.redshift_data.spec import SPEC_FORMS, spec_fields
from tasks.warehouse.redshift_data.values import bind
from tasks.warehouse.redshift_data.warehouse import RedshiftDataWarehouse

TARGET = {"ClusterIdentifier": "sparkify", "Database": "dev", "DbUser": "sparkify"}
SESSION = str(uuid.uuid4())
INSTANT = Polling(start=0.0, cap=0.0, progress=3600.0)


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch):
    """A redshift-data client whose answers the test queues, and a connection over it."""
    monkeypatch.setenv("SPARKIFY_RETRY_DELAY_SCALE", "0")
    client = boto3.client(
        "redshift-data",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield stubber, dbapi.connect(client, TARGET, 600, INSTANT, sleep=lambda _: None)
        stubber.assert_no_pending_responses()


def statement(
    stubber: Stubber,
    sql: str,
    *,
    first: bool = False,
    parameters: list[dict[str, str]] | None = None,
    status: str = "FINISHED",
    error: str | None = None,
    rows: int = -1,
    result: bool = False,
    running: int = 0,
) -> str:
    """Queue the answers to one statement: ExecuteStatement (checked: the SQL, the session or
    the target, the parameters), `running` DescribeStatements still STARTED, then its end."""
    statement_id = str(uuid.uuid4())
    expected: dict[str, Any] = {"Sql": sql}
    if parameters:
        expected["Parameters"] = parameters
    if first:
        expected.update(TARGET, SessionKeepAliveSeconds=600)
    else:
        expected["SessionId"] = SESSION
    answer = {"Id": statement_id, "SessionId": SESSION}
    stubber.add_response("execute_statement", answer, expected)
    for _ in range(running):
        stubber.add_response("describe_statement", {"Id": statement_id, "Status": "STARTED"})
    described = {"Id": statement_id, "Status": status, "HasResultSet": result, "ResultRows": rows}
    if error:
        described["Error"] = error
    stubber.add_response("describe_statement", described, {"Id": statement_id})
    return statement_id


def test_a_session_carries_one_transaction_begun_and_committed_by_the_driver(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "BEGIN", first=True)
    statement(stubber, "delete from t", rows=3)
    statement(stubber, "COMMIT")
    statement(stubber, "BEGIN")
    statement(stubber, "delete from t", rows=0)
    statement(stubber, "ROLLBACK")
    cursor = conn.cursor()
    cursor.execute("delete from t")
    assert cursor.rowcount == 3
    conn.commit()
    cursor.execute("delete from t")
    conn.rollback()
    conn.rollback()  # nothing open: nothing sent
    conn.close()


def test_autocommit_sends_no_begin(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "vacuum t", first=True)
    conn.autocommit = True
    conn.cursor().execute("vacuum t")
    conn.commit()


def test_transaction_statements_keep_the_driver_in_step(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "BEGIN", first=True)
    statement(stubber, "COMMIT")
    cursor = conn.cursor()
    cursor.execute("begin")
    cursor.execute("commit")
    assert not conn.in_transaction


def test_results_are_paged_typed_and_described(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "BEGIN", first=True)
    sql = "select * from t where a = :a"
    found = statement(
        stubber, sql, parameters=[{"name": "a", "value": "1"}], result=True, running=2
    )
    columns = [
        {"name": "id", "typeName": "int4", "nullable": 0},
        {"name": "amount", "typeName": "numeric", "precision": 10, "scale": 2},
        {"name": "at", "typeName": "timestamp"},
        {"name": "ok", "typeName": "bool"},
        {"name": "length", "typeName": "float8"},
        {"name": "name", "typeName": "varchar"},
    ]
    first = [
        {"longValue": 1},
        {"stringValue": "12.50"},
        {"stringValue": "2018-11-07 12:00:00.5"},
        {"booleanValue": True},
        {"doubleValue": 200.25},
        {"stringValue": "Edge"},
    ]
    second = [{"longValue": 2}, *[{"isNull": True}] * 5]
    page = {"ColumnMetadata": columns, "TotalNumRows": 2}
    stubber.add_response(
        "get_statement_result", {**page, "Records": [first], "NextToken": "more"}, {"Id": found}
    )
    stubber.add_response(
        "get_statement_result", {**page, "Records": [second]}, {"Id": found, "NextToken": "more"}
    )
    cursor = conn.cursor()
    cursor.execute(sql, {"a": 1})
    assert [d[0] for d in cursor.description] == ["id", "amount", "at", "ok", "length", "name"]
    assert cursor.rowcount == 2
    assert cursor.fetchone() == (
        1,
        Decimal("12.50"),
        datetime(2018, 11, 7, 12, 0, 0, 500000),
        True,
        200.25,
        "Edge",
    )
    assert cursor.fetchall() == [(2, None, None, None, None, None)]


def test_a_failed_statement_raises_redshifts_message_and_is_not_sent_again(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "BEGIN", first=True)
    says = 'ERROR: syntax error at or near "selec"'
    statement(stubber, "selec 1", status="FAILED", error=says)
    statement(stubber, "ROLLBACK")
    with pytest.raises(dbapi.ProgrammingError, match="syntax error") as failure:
        conn.cursor().execute("selec 1")
    assert not is_transient(failure.value)
    conn.rollback()


def test_a_serializable_isolation_violation_is_a_transient_failure(stubbed) -> None:
    stubber, conn = stubbed
    statement(stubber, "BEGIN", first=True)
    says = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 100, transactions"
    statement(stubber, "delete from t", status="FAILED", error=says)
    with pytest.raises(dbapi.ProgrammingError) as failure:
        conn.cursor().execute("delete from t")
    assert is_transient(failure.value)


@pytest.mark.parametrize("code", ["ThrottlingException", "ActiveStatementsExceededException"])
def test_a_busy_data_api_is_asked_again(stubbed, code: str) -> None:
    stubber, conn = stubbed
    conn.autocommit = True
    stubber.add_client_error("execute_statement", code, "busy", 400)
    statement(stubber, "select 1", first=True, result=False, rows=1)
    conn.cursor().execute("select 1")


def test_a_data_api_still_busy_after_the_retries_fails_transiently(stubbed) -> None:
    stubber, conn = stubbed
    conn.autocommit = True
    for _ in range(7):
        stubber.add_client_error("execute_statement", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(dbapi.OperationalError, match="ThrottlingException") as failure:
        conn.cursor().execute("select 1")
    assert is_transient(failure.value)


def test_a_cancelled_statement_is_an_operational_error(stubbed) -> None:
    stubber, conn = stubbed
    conn.autocommit = True
    statement(stubber, "lock table t", first=True, status="ABORTED")
    with pytest.raises(dbapi.OperationalError, match="cancelled"):
        conn.cursor().execute("lock table t")


def test_nulls_and_empty_text_are_never_sent_as_parameters(stubbed) -> None:
    stubber, conn = stubbed
    conn.autocommit = True
    sent = "insert into t values (:a, NULL, '', ':d', :e) -- :f"
    statement(
        stubber,
        sent,
        first=True,
        rows=1,
        parameters=[{"name": "a", "value": "x"}, {"name": "e", "value": "2018-11-07 12:00:00"}],
    )
    values = {"a": "x", "b": None, "c": "", "e": datetime(2018, 11, 7, 12)}
    conn.cursor().execute("insert into t values (:a, :b, :c, ':d', :e) -- :f", values)


def test_binding_skips_literals_identifiers_comments_and_casts() -> None:
    sql = "select ':a', \":a\", x::text, :a /* :a */ from t"
    assert bind(sql, {"a": True}) == (sql, [{"name": "a", "value": "true"}])


def test_a_statement_over_the_data_apis_size_is_refused_before_it_is_sent(stubbed) -> None:
    _, conn = stubbed
    conn.autocommit = True
    big = "select " + ", ".join(["1"] * 60_000)
    with pytest.raises(dbapi.ProgrammingError, match="100 KB"):
        conn.cursor().execute(big)


def test_a_result_over_the_data_apis_size_is_a_clear_error(stubbed) -> None:
    stubber, conn = stubbed
    conn.autocommit = True
    found = str(uuid.uuid4())
    stubber.add_response("execute_statement", {"Id": found, "SessionId": SESSION}, None)
    described = {"Id": found, "Status": "FINISHED", "HasResultSet": True, "ResultSize": 2**30}
    stubber.add_response("describe_statement", described, {"Id": found})
    with pytest.raises(dbapi.ProgrammingError, match="100 MB"):
        conn.cursor().execute("select * from big")


def block(**fields: Any) -> RedshiftDataWarehouse:
    return RedshiftDataWarehouse(iam_role_arn="default", **fields)


def test_the_block_names_its_target_for_each_sign_in() -> None:
    assert block(cluster_identifier="c", user="u").target() == {
        "Database": "dev",
        "ClusterIdentifier": "c",
        "DbUser": "u",
    }
    assert block(workgroup="wg", database="db").target() == {
        "Database": "db",
        "WorkgroupName": "wg",
    }
    secret = block(cluster_identifier="c", sign_in="secret", secret_arn="arn:s")
    assert secret.target() == {"Database": "dev", "ClusterIdentifier": "c", "SecretArn": "arn:s"}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "not neither"),
        ({"cluster_identifier": "c", "workgroup": "w"}, "not both"),
        ({"cluster_identifier": "c", "password": "p"}, "stores no password"),
        ({"cluster_identifier": "c", "sign_in": "secret"}, "needs secret_arn"),
        ({"workgroup": "w", "user": "u"}, "remove user"),
        ({"cluster_identifier": "c", "secret_arn": "arn:s"}, "sign_in='secret'"),
    ],
)
def test_a_wrong_combination_of_fields_is_one_line_when_the_block_is_built(
    fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says) as failure:
        block(**fields)
    reason = failure.value.errors()[0]["msg"]
    assert "\n" not in reason


def test_specs_name_a_cluster_or_a_workgroup() -> None:
    assert spec_fields("redshift-data://sparkify/dev?user=etl&region=eu-west-1") == {
        "database": "dev",
        "iam_role_arn": "default",
        "cluster_identifier": "sparkify",
        "user": "etl",
        "region": "eu-west-1",
    }
    workgroup = spec_fields("redshift-data://workgroup:sparkify-wg/dev?aws_credentials=prod")
    assert workgroup["workgroup"] == "sparkify-wg"
    assert workgroup["aws_credentials"] == "prod"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("redshift-data://sparkify", "name the cluster and the database"),
        ("redshift-data://sparkify/dev?colour=red", "unknown option 'colour'"),
        ("redshift-data://workgroup:wg/dev?user=u", "remove user"),
        ("redshift-data://sparkify/dev?iam_role=nope", "not an IAM role ARN"),
    ],
)
def test_a_wrong_spec_is_a_one_line_user_error(spec: str, says: str) -> None:
    with pytest.raises(BadArgument, match=says) as failure:
        spec_fields(spec)
    assert "\n" not in str(failure.value)


def test_numbers_truth_values_and_times_are_bound_with_a_cast_text_is_not() -> None:
    """The Data API sends parameters as text: where nothing in the statement types one, it
    would stay text (`sum(case when … then '1' …)` fails)."""
    events = model.staging_events
    query = select(func.sum(case((events.c.first_name == "x", 1), else_=0))).where(
        events.c.ts_ms > 5, events.c.length == 2.5
    )
    compiled = str(query.compile(dialect=block(cluster_identifier="c").get_engine().dialect))
    assert "THEN CAST(:param_1 AS INTEGER) ELSE CAST(:param_2 AS INTEGER)" in compiled
    assert "CAST(:ts_ms_1 AS BIGINT)" in compiled
    assert "CAST(:length_1 AS DOUBLE PRECISION)" in compiled
    assert "first_name = :first_name_1)" in compiled


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--data-api"],
            "--data-api goes with --ephemeral-cluster: to load an existing cluster through the "
            "Data API, give --warehouse redshift-data://CLUSTER/DATABASE",
        ),
        (
            ["--warehouse", "redshift-data://sparkify/dev?user=u&sign_in=iam"],
            "warehouse redshift-data://sparkify/dev?user=u&sign_in=iam: unknown option "
            f"'sign_in'; use {SPEC_FORMS}",
        ),
    ],
)
def test_a_wrong_data_api_command_line_is_one_line_before_any_server_starts(
    args: list[str], says: str, command_line
) -> None:
    said = command_line("etl.py", *args)
    assert (said.status, said.err.splitlines(), said.server_starts) == (2, [f"etl: {says}"], 0)


def test_a_long_statement_is_said_in_the_log_while_it_runs(
    stubbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber, conn = stubbed
    said: list[str] = []

    class Log:
        def info(self, message: str, *args: Any) -> None:
            said.append(message % args)

    monkeypatch.setattr(calls, "run_logger", Log)
    conn.polling = Polling(start=0.0, cap=0.0, progress=0.0)
    conn.autocommit = True
    statement(stubber, "analyze staging_events", first=True, running=2)
    conn.cursor().execute("analyze staging_events")
    assert len(said) == 2
    assert "(analyze staging_events…) still started after" in said[0]
