"""IAM sign-in to Redshift: the block's sign-in fields; redshift GetClusterCredentials against the
session's moto server over HTTP; redshift-serverless GetCredentials against the recording client
of tests/test_serverless.py (moto 5.2.5 has no Redshift Serverless); and the user and password
each new DB-API connection gets, intercepted at redshift_connector.connect (no Redshift is ever
reached: the connection is tests/fake_redshift.py's)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redshift_connector
from botocore.exceptions import ClientError
from prefect.blocks.system import Secret
from prefect_aws import AwsCredentials

from flows.cluster import cluster_create, parse_args
from tasks.cluster.settings import ClusterSettings, cluster_settings_from_args
from tasks.common.aws import aws_client
from tasks.warehouse.redshift.sign_in import (
    CREDENTIALS_SECONDS,
    endpoint_region,
    sign_in_credentials,
    temporary_credentials,
)
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests import fake_redshift
from tests.test_cluster import FAST, unique
from tests.test_cluster import credentials_block as saved_credentials_block
from tests.test_cluster import names as cluster_names
from tests.test_serverless import ACCOUNT, FakeServerless, make_serverless
from tests.test_serverless import fake as recording_client

credentials_block = saved_credentials_block  # the moto AwsCredentials block fixture
names = cluster_names  # unique identifier, role, secret and source of one test's cluster
fake = recording_client  # the recording redshift-serverless client

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
CLUSTER_HOST = "sparkify.abc123.us-east-1.redshift.amazonaws.com"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every redshift_connector.connect call, each answered with a
    recording connection instead of a socket to Redshift."""
    seen: list[dict[str, Any]] = []
    recorder = fake_redshift.Recorder()
    monkeypatch.setattr(fake_redshift, "RECORDER", recorder)

    def connect(*args: Any, **kwargs: Any) -> fake_redshift.Connection:
        seen.append(kwargs)
        return fake_redshift.Connection(recorder)

    monkeypatch.setattr(redshift_connector, "connect", connect)
    return seen


def moto_cluster(aws_credentials: AwsCredentials) -> tuple[str, str]:
    """A cluster made directly on moto; its identifier and endpoint host."""
    identifier = unique("sparkify-iam")
    cluster = aws_client(aws_credentials, "redshift").create_cluster(
        ClusterIdentifier=identifier,
        NodeType="dc2.large",
        ClusterType="single-node",
        MasterUsername="sparkify",
        MasterUserPassword="Not-a-real-0ne",
    )["Cluster"]
    return identifier, cluster["Endpoint"]["Address"]


def iam_block_on_moto(aws_credentials: AwsCredentials) -> RedshiftWarehouse:
    """A block signing in with IAM as the existing user of a cluster made on moto."""
    identifier, host = moto_cluster(aws_credentials)
    return RedshiftWarehouse(
        host=host,
        user="sparkify",
        sign_in="iam",
        cluster_identifier=identifier,
        iam_role_arn=ROLE,
        aws_credentials=aws_credentials,
    )


# --- the block's fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"user": "sparkify"}, "password sign-in needs a password: give it, or use sign_in='iam'"),
        ({"password": "x"}, "password sign-in needs a user: give it"),
        ({}, "password sign-in needs a user and a password: give them"),
        ({"sign_in": "iam", "user": "sparkify"}, "needs one of cluster_identifier (a provisioned"),
        (
            {"sign_in": "iam", "user": "u", "cluster_identifier": "c", "workgroup": "w"},
            "GetCredentials), not both",
        ),
        ({"sign_in": "iam", "cluster_identifier": "c"}, "IAM sign-in on a cluster needs a user"),
        (
            {"sign_in": "iam", "workgroup": "w", "password": "x"},
            "IAM sign-in stores no password: remove it, or use sign_in='password'",
        ),
        ({"sign_in": "kerberos", "user": "u", "password": "x"}, "'password' or 'iam'"),
    ],
)
def test_sign_in_fields_are_checked_when_the_block_is_built(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        RedshiftWarehouse(host=CLUSTER_HOST, iam_role_arn=ROLE, **fields)


def test_a_password_block_as_saved_before_iam_sign_in_still_reads_as_one() -> None:
    old = {"host": CLUSTER_HOST, "user": "sparkify", "password": "pw", "iam_role_arn": ROLE}
    block = RedshiftWarehouse.model_validate(old)
    assert (block.sign_in, block.cluster_identifier, block.workgroup) == ("password", None, None)
    assert block.url().password == "pw"


def test_an_iam_url_holds_no_password() -> None:
    block = RedshiftWarehouse(
        host=CLUSTER_HOST, user="sparkify", sign_in="iam", cluster_identifier="c", iam_role_arn=ROLE
    )
    assert block.url().password is None
    assert block.url().username == "sparkify"


def test_the_region_comes_from_the_credentials_or_else_the_endpoint() -> None:
    assert endpoint_region(CLUSTER_HOST) == "us-east-1"
    assert endpoint_region("wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com") == (
        "eu-west-1"
    )
    assert endpoint_region("warehouse.example.com") is None
    assert endpoint_region("10.0.0.7") is None
    fields = {"user": "u", "sign_in": "iam", "cluster_identifier": "c", "iam_role_arn": ROLE}
    assert sign_in_credentials(RedshiftWarehouse(host=CLUSTER_HOST, **fields)).region_name == (
        "us-east-1"
    )
    named = AwsCredentials(region_name="us-west-2")
    block = RedshiftWarehouse(host=CLUSTER_HOST, aws_credentials=named, **fields)
    assert sign_in_credentials(block).region_name == "us-west-2"


# --- provisioned: GetClusterCredentials on moto over HTTP -----------------------------------


def test_get_cluster_credentials_signs_in_as_the_existing_user(aws_credentials) -> None:
    block = iam_block_on_moto(aws_credentials)
    user, password = temporary_credentials(block)
    assert user == "IAM:sparkify"  # AutoCreate false: the existing user, prefixed IAM:
    assert len(password) == 32
    assert password != "Not-a-real-0ne"
    assert CREDENTIALS_SECONDS == 900
    missing = block.model_copy(update={"cluster_identifier": unique("absent")})
    with pytest.raises(ClientError, match="ClusterNotFound"):
        temporary_credentials(missing)


def test_each_new_connection_signs_in_with_fresh_cluster_credentials(
    aws_credentials, connects: list[dict[str, Any]]
) -> None:
    block = iam_block_on_moto(aws_credentials)
    engine = block.get_engine()
    assert engine.url.password is None
    with engine.connect() as first:
        first.exec_driver_sql("select 1")
        with engine.connect() as second:  # the pool opens a second connection
            second.exec_driver_sql("select 1")
    engine.dispose()  # a pool emptied (as after its connections expired) signs in again
    with engine.connect() as third:
        third.exec_driver_sql("select 1")

    assert [(c["user"], c["host"], c["database"]) for c in connects] == [
        ("IAM:sparkify", block.host, "dev")
    ] * 3
    passwords = [c["password"] for c in connects]
    assert len(set(passwords)) == 3
    assert all(len(p) == 32 for p in passwords)


def test_cluster_create_saves_an_iam_block_that_signs_in_by_get_cluster_credentials(
    aws_credentials,
    credentials_block: str,
    names: dict[str, str],
    connects: list[dict[str, Any]],
) -> None:
    given = {k: v for k, v in names.items() if k != "source"}
    cluster_create(names["source"], ClusterSettings(**given, **FAST), credentials_block)
    block = RedshiftWarehouse.load(names["identifier"])
    assert (block.sign_in, block.cluster_identifier, block.user) == (
        "iam",
        names["identifier"],
        "sparkify",
    )
    assert block.password is None

    with block.get_engine().connect() as conn:
        conn.exec_driver_sql("select 1")
    (arguments,) = connects
    assert arguments["user"] == "IAM:sparkify"
    assert arguments["password"] != Secret.load(names["password_secret"]).get()


def test_cluster_create_with_password_sign_in_keeps_the_password_block(
    aws_credentials,
    credentials_block: str,
    names: dict[str, str],
    connects: list[dict[str, Any]],
) -> None:
    args = parse_args(["create", "--source", names["source"], "--password-sign-in"])
    assert cluster_settings_from_args(args).password_sign_in is True
    given = {k: v for k, v in names.items() if k != "source"}
    settings = ClusterSettings(**given, password_sign_in=True, **FAST)
    cluster_create(names["source"], settings, credentials_block)
    block = RedshiftWarehouse.load(names["identifier"])
    password = Secret.load(names["password_secret"]).get()
    assert (block.sign_in, block.cluster_identifier) == ("password", None)
    assert block.password.get_secret_value() == password

    with block.get_engine().connect() as conn:
        conn.exec_driver_sql("select 1")
    (arguments,) = connects
    assert (arguments["user"], arguments["password"]) == ("sparkify", password)


# --- Serverless: GetCredentials on the recording client -------------------------------------


def test_each_new_connection_signs_in_with_fresh_serverless_credentials(
    fake: FakeServerless, connects: list[dict[str, Any]]
) -> None:
    workgroup = unique("sparkify-sl")
    make_serverless(fake, workgroup, [])
    host = f"{workgroup}.{ACCOUNT}.us-east-1.redshift-serverless.amazonaws.com"
    block = RedshiftWarehouse(host=host, sign_in="iam", workgroup=workgroup, iam_role_arn=ROLE)
    fake.calls.clear()

    engine = block.get_engine()
    for _ in range(2):
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()

    assert (
        fake.called()
        == [
            (
                "GetCredentials",
                {"workgroupName": workgroup, "dbName": "dev", "durationSeconds": 900},
            )
        ]
        * 2
    )
    assert [(c["user"], c["host"], c["port"]) for c in connects] == [
        ("IAMR:sparkify-etl", host, 5439)
    ] * 2
    assert connects[0]["password"] != connects[1]["password"]
