"""The local Redshift Data API endpoint (tests/data_api_server.py) through boto3's real
`redshift-data` client: statements, sessions, paging, failures, quotas, COPY, injected errors."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.data_api_server import LocalDataApi, data_api_client, data_api_endpoint, to_pyformat

pytestmark = pytest.mark.postgres

CLUSTER = {"ClusterIdentifier": "sparkify", "Database": "dev", "DbUser": "sparkify"}
DONE = ("FINISHED", "FAILED", "ABORTED")


def finished(client: Any, statement_id: str) -> dict[str, Any]:
    """DescribeStatement polled until the statement is done; the last answer."""
    for _ in range(500):
        described = client.describe_statement(Id=statement_id)
        if described["Status"] in DONE:
            return described
        time.sleep(0.01)
    raise AssertionError(f"statement {statement_id} still {described['Status']}")


def run(client: Any, sql: str, **request: Any) -> dict[str, Any]:
    """ExecuteStatement (on the cluster unless a session is named), polled until done."""
    target = {} if "SessionId" in request else CLUSTER
    started = client.execute_statement(Sql=sql, **target, **request)
    return finished(client, started["Id"]) | {"SessionId": started.get("SessionId")}


def rows(client: Any, statement_id: str) -> list[list[dict[str, Any]]]:
    """Every record of a result, page by page."""
    page = client.get_statement_result(Id=statement_id)
    records = page["Records"]
    while "NextToken" in page:
        page = client.get_statement_result(Id=statement_id, NextToken=page["NextToken"])
        records += page["Records"]
    return records


def test_a_statement_binds_named_parameters_and_types_its_fields(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    described = run(
        client,
        "select :n::int as n, :x::float8 as x, :t as t, :b::boolean as b, null::int as z, "
        "'50%' as literal, 2.5::numeric(4,2) as d",
        Parameters=[
            {"name": "n", "value": "42"},
            {"name": "x", "value": "1.5"},
            {"name": "t", "value": "it's"},
            {"name": "b", "value": "true"},
        ],
    )
    assert described["Status"] == "FINISHED", described.get("Error")
    assert described["HasResultSet"] is True
    assert described["ResultRows"] == 1
    assert described["QueryParameters"][0] == {"name": "n", "value": "42"}
    result = client.get_statement_result(Id=described["Id"])
    assert result["Records"] == [
        [
            {"longValue": 42},
            {"doubleValue": 1.5},
            {"stringValue": "it's"},
            {"booleanValue": True},
            {"isNull": True},
            {"stringValue": "50%"},
            {"stringValue": "2.50"},
        ]
    ]
    columns = result["ColumnMetadata"]
    assert [c["name"] for c in columns] == ["n", "x", "t", "b", "z", "literal", "d"]
    assert [c["typeName"] for c in columns[:2]] == ["int4", "float8"]
    assert result["TotalNumRows"] == 1


def test_named_parameters_leave_casts_quotes_and_comments_alone() -> None:
    sql = "select ':a', :a::int, \"x:a\" -- :a\nfrom t where p like '%' || :b"
    assert to_pyformat(sql, {"a", "b"}) == (
        "select ':a', %(a)s::int, \"x:a\" -- :a\nfrom t where p like '%%' || %(b)s"
    )


def test_a_session_carries_a_transaction_that_rollback_undoes(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    assert run(client, "create table plays (id integer)")["Status"] == "FINISHED"
    session = run(client, "begin", SessionKeepAliveSeconds=60)["SessionId"]
    inserted = run(client, "insert into plays values (1), (2)", SessionId=session)
    assert (inserted["Status"], inserted["ResultRows"]) == ("FINISHED", 2)
    inside = run(client, "select count(*) from plays", SessionId=session)
    assert client.get_statement_result(Id=inside["Id"])["Records"] == [[{"longValue": 2}]]
    outside = run(client, "select count(*) from plays")  # a connection of its own: not yet
    assert client.get_statement_result(Id=outside["Id"])["Records"] == [[{"longValue": 0}]]
    assert run(client, "rollback", SessionId=session)["Status"] == "FINISHED"
    after = run(client, "select count(*) from plays")
    assert client.get_statement_result(Id=after["Id"])["Records"] == [[{"longValue": 0}]]


def test_a_session_runs_one_statement_at_a_time(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    session = run(client, "select 1", SessionKeepAliveSeconds=60)["SessionId"]
    data_api.controls.statement_delay = 60  # until cancelled
    slow = client.execute_statement(Sql="select 2", SessionId=session)
    assert client.describe_statement(Id=slow["Id"])["Status"] in ("SUBMITTED", "PICKED", "STARTED")
    with pytest.raises(ClientError, match="busy") as busy:
        client.execute_statement(Sql="select 3", SessionId=session)
    assert busy.value.response["Error"]["Code"] == "ValidationException"
    assert client.cancel_statement(Id=slow["Id"])["Status"] is True
    assert finished(client, slow["Id"])["Status"] == "ABORTED"
    data_api.controls.statement_delay = 0
    assert run(client, "select 3", SessionId=session)["Status"] == "FINISHED"


def test_a_session_ends_when_idle_and_its_transaction_with_it(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    run(client, "create table plays (id integer)")
    session = run(client, "begin", SessionKeepAliveSeconds=2)["SessionId"]
    run(client, "insert into plays values (1)", SessionId=session)
    time.sleep(3)  # the keep-alive passes
    with pytest.raises(ClientError, match="not available"):
        client.execute_statement(Sql="select 4", SessionId=session)
    left = run(client, "select count(*) from plays")
    assert client.get_statement_result(Id=left["Id"])["Records"] == [[{"longValue": 0}]]


def test_redshift_refuses_alter_column_inside_a_transaction(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    run(client, "create table plays (id integer)")
    session = run(client, "begin", SessionKeepAliveSeconds=60)["SessionId"]
    altered = run(client, "alter table plays alter column id type bigint", SessionId=session)
    assert altered["Error"] == "ERROR: ALTER cannot run inside a transaction block"


def test_a_result_comes_in_pages(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    data_api.controls.page_size = 4
    described = run(client, "select g, 'row ' || g from generate_series(1, 10) g order by g")
    assert described["ResultRows"] == 10
    first = client.get_statement_result(Id=described["Id"])
    assert (len(first["Records"]), first["TotalNumRows"]) == (4, 10)
    records = rows(client, described["Id"])
    assert [r[0]["longValue"] for r in records] == list(range(1, 11))
    assert len([c for c in data_api.controls.calls if c == "GetStatementResult"]) == 1 + 3


def test_a_failed_statement_says_why(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    described = run(client, "select * from no_such_table")
    assert described["Status"] == "FAILED"
    assert described["Error"] == 'ERROR: relation "no_such_table" does not exist'
    with pytest.raises(ClientError) as no_result:
        client.get_statement_result(Id=described["Id"])
    assert no_result.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_batch_runs_in_one_transaction(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    run(client, "create table plays (id integer)")
    batch = client.batch_execute_statement(
        Sqls=["insert into plays values (1)", "insert into plays values ('x')", "select 1"],
        **CLUSTER,
    )
    described = finished(client, batch["Id"])
    assert described["Status"] == "FAILED"
    assert [s["Status"] for s in described["SubStatements"]] == ["FINISHED", "FAILED", "ABORTED"]
    assert described["SubStatements"][1]["Id"] == f"{batch['Id']}:2"
    count = run(client, "select count(*) from plays")
    assert client.get_statement_result(Id=count["Id"])["Records"] == [[{"longValue": 0}]]


def test_sql_over_the_size_quota_is_refused(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    padding = "x" * (100 * 1024)
    with pytest.raises(ClientError, match="larger than 100kB") as refused:
        client.execute_statement(Sql=f"select '{padding}'", **CLUSTER)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    under = run(client, f"select '{padding[: 90 * 1024]}'")
    assert under["Status"] == "FINISHED"
    with pytest.raises(ClientError, match="at most 40"):
        client.batch_execute_statement(Sqls=["select 1"] * 41, **CLUSTER)


def test_a_result_over_the_size_quota_is_refused(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    data_api.controls.result_limit_bytes = 1000
    described = run(client, "select repeat('x', 2000)")
    with pytest.raises(ClientError, match="exceeded size limit") as refused:
        client.get_statement_result(Id=described["Id"])
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_injected_errors_answer_the_next_calls(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    data_api.controls.fail_next(2, "ThrottlingException")
    data_api.controls.fail_next(1, "ActiveStatementsExceededException", "ExecuteStatement")
    codes = []
    for _ in range(4):
        try:
            client.execute_statement(Sql="select 1", **CLUSTER)
            codes.append("ok")
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])
    assert codes == [
        "ThrottlingException",
        "ThrottlingException",
        "ActiveStatementsExceededException",
        "ok",
    ]
    # botocore's own retries (standard mode) absorb a throttled call.
    data_api.controls.fail_next(1, "ThrottlingException")
    assert data_api_client(data_api.url, retries=2).execute_statement(Sql="select 1", **CLUSTER)


def test_a_cancelled_statement_is_aborted(data_api: LocalDataApi) -> None:
    client = data_api_client(data_api.url)
    running = client.execute_statement(Sql="select pg_sleep(30)", **CLUSTER)
    time.sleep(0.2)
    assert client.cancel_statement(Id=running["Id"])["Status"] is True
    assert finished(client, running["Id"])["Status"] == "ABORTED"


def test_copy_loads_rows_from_moto(data_api: LocalDataApi, aws_credentials, bucket_name) -> None:
    s3 = aws_credentials.get_boto3_session().client(
        "s3", **aws_credentials.aws_client_parameters.get_params_override()
    )
    s3.create_bucket(Bucket=bucket_name)
    lines = ['{"id": 1, "name": "a"}', '{"id": 2, "name": "b"}', '{"id": 3, "name": "c"}']
    s3.put_object(Bucket=bucket_name, Key="in/part-1.json", Body="\n".join(lines).encode())
    paths = {"jsonpaths": ["$['id']", "$['name']"]}
    s3.put_object(Bucket=bucket_name, Key="paths.json", Body=json.dumps(paths).encode())
    client = data_api_client(data_api.url)
    run(client, "create table probe (id integer not null, name varchar(5))")
    copy = (
        f"COPY probe FROM 's3://{bucket_name}/in/' IAM_ROLE 'arn:aws:iam::1:role/r' "
        f"FORMAT AS JSON 's3://{bucket_name}/paths.json'"
    )
    session = run(client, "begin", SessionKeepAliveSeconds=60)["SessionId"]
    assert run(client, copy, SessionId=session)["Status"] == "FINISHED"
    run(client, "rollback", SessionId=session)  # the COPY was the client's transaction's
    empty = run(client, "select count(*) from probe")
    assert client.get_statement_result(Id=empty["Id"])["Records"] == [[{"longValue": 0}]]
    copied = run(client, copy)
    assert copied["Status"] == "FINISHED", copied.get("Error")
    assert copied["ResultRows"] == 3
    loaded = run(client, "select id, name from probe order by id")
    assert rows(client, loaded["Id"]) == [
        [{"longValue": n}, {"stringValue": name}] for n, name in ((1, "a"), (2, "b"), (3, "c"))
    ]
    not_gzip = run(client, copy + " GZIP")
    assert not_gzip["Status"] == "FAILED"
    assert not_gzip["Error"].startswith("ERROR: ")
    assert "is not gzip data" in not_gzip["Error"]


def test_the_endpoint_serves_as_a_url(
    postgres_database: str, moto_endpoint: str, aws_credentials
) -> None:
    with data_api_endpoint(postgres_database, moto_endpoint, aws_credentials) as url:
        assert run(data_api_client(url), "select 1")["Status"] == "FINISHED"
