"""A cluster is never forgotten: the ephemeral ETL deletes its cluster however the run ends, the
janitor deletes expired clusters (and only those), and the scripts work from the command line.
All against the session's moto server over HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled

import flows.ephemeral as ephemeral
from flows.cluster import cluster_create
from flows.ephemeral import ephemeral_etl, ephemeral_identifier, ephemeral_settings, tear_down
from flows.janitor import cluster_janitor
from tasks.cluster.settings import ClusterSettings, cluster_tags
from tasks.common.aws import aws_client
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests.conftest import PROJECT_ROOT, Said
from tests.helpers import run, task_run_states
from tests.test_cluster import FAST, describe, unique
from tests.test_cluster import credentials_block as saved_credentials_block

credentials_block = saved_credentials_block  # the moto AwsCredentials block fixture


@pytest.fixture
def cluster_names(bucket_name: str) -> dict[str, str]:
    """Unique role and secret names, and an S3 source whose bucket does not exist, so that the
    ETL fails (NoSuchBucket, not retried) while the cluster steps succeed."""
    return {
        "role_name": unique("sparkify-role"),
        "password_secret": unique("sparkify-pw"),
        "source": f"s3://{bucket_name}/raw",
    }


def cluster_of(names: dict[str, str], **extra: Any) -> ClusterSettings:
    """The cluster settings of a test: its role and secret, fast polling."""
    return ClusterSettings(
        role_name=names["role_name"], password_secret=names["password_secret"], **FAST, **extra
    )


def cluster_exists(aws_credentials, identifier: str) -> bool:
    """Whether describe_clusters knows the cluster."""
    return describe(aws_credentials, identifier) is not None


def block_exists(name: str) -> bool:
    """Whether a Redshift warehouse block of that name is saved."""
    try:
        RedshiftWarehouse.load(name)
    except ValueError:
        return False
    return True


def test_an_ephemeral_cluster_is_named_after_the_run_and_expires_after_three_hours() -> None:
    run_id = uuid.uuid4()
    identifier = ephemeral_identifier(run_id)
    settings = ephemeral_settings(None, run_id)
    assert (settings.identifier, settings.warehouse_block) == (identifier, identifier)
    assert settings.time_to_live == timedelta(hours=3)
    given = ClusterSettings(identifier="mine", node_type="ra3.large", ttl_hours=5)
    settings = ephemeral_settings(given, run_id)
    assert (settings.identifier, settings.node_type) == (identifier, "ra3.large")
    assert settings.time_to_live == timedelta(hours=5)


def test_ephemeral_etl_deletes_the_cluster_after_a_forced_failure(
    aws_credentials,
    credentials_block: str,
    cluster_names: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_etl = ephemeral.etl
    warehouses: list[str] = []

    def recording_etl(source: str, warehouse: str, *args: Any) -> dict:
        warehouses.append(warehouse)
        return real_etl(source, warehouse, *args)

    monkeypatch.setattr(ephemeral, "etl", recording_etl)
    state = ephemeral_etl(
        cluster_names["source"],
        aws_credentials=credentials_block,
        cluster=cluster_of(cluster_names, owner="ana"),
        return_state=True,
    )

    assert state.is_failed()
    with pytest.raises(ClientError, match="NoSuchBucket"):
        state.result()
    run_id = state.state_details.flow_run_id
    identifier = ephemeral_identifier(run_id)
    # The cluster was made and its block saved, the ETL ran against that block, and the
    # cluster and block were deleted after it failed.
    assert warehouses == [f"sparkify-redshift-warehouse/{identifier}"]
    steps = ["ensure-cluster", "wait-until-available", "save-warehouse-block", "delete-cluster"]
    steps += ["wait-until-deleted", "delete-warehouse-block"]
    states = task_run_states(run_id, set(steps))
    assert {step: states.get(step) for step in steps} == dict.fromkeys(steps, "COMPLETED")
    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)


KILLED_RUN = """
import sys, time
import flows.ephemeral as ephemeral
from tasks.cluster.settings import ClusterSettings

def slow_etl(source, warehouse, *args):
    print("ETL-STARTED", warehouse.split("/", 1)[1], flush=True)
    time.sleep(120)

ephemeral.etl = slow_etl
ephemeral.remove_cluster = lambda *args, **kwargs: None  # only the hook may delete
source, credentials, role, secret = sys.argv[1:]
cluster = ClusterSettings(role_name=role, password_secret=secret, poll_seconds=0.1,
                          timeout_minutes=1.0)
ephemeral.ephemeral_etl(source=source, aws_credentials=credentials, cluster=cluster)
"""


def test_the_crash_hook_alone_deletes_the_cluster_of_a_killed_run(
    aws_credentials,
    credentials_block: str,
    cluster_names: dict[str, str],
    cli_env: dict[str, str],
    tmp_path,
) -> None:
    """SIGTERM arrives during the ETL, with the `finally` delete disabled: the on_crashed hook
    must remove the cluster on its own."""
    script = tmp_path / "killed_run.py"
    script.write_text(KILLED_RUN)
    names = cluster_names
    arguments = [names["source"], credentials_block, names["role_name"], names["password_secret"]]
    process = subprocess.Popen(
        [sys.executable, str(script), *arguments],
        cwd=PROJECT_ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        identifier = None
        for line in process.stdout:
            if line.startswith("ETL-STARTED"):
                identifier = line.split()[1]
                break
        assert identifier, process.stderr.read()
        assert cluster_exists(aws_credentials, identifier)
        assert block_exists(identifier)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "Crashed" in stderr
    assert f"Crashed: deleting cluster {identifier}" in stderr
    assert not cluster_exists(aws_credentials, identifier), stderr
    assert not block_exists(identifier)


def test_the_cancellation_hook_deletes_the_run_cluster_and_block(
    aws_credentials, credentials_block: str, cluster_names: dict[str, str]
) -> None:
    assert tear_down in ephemeral_etl.on_cancellation_hooks
    assert tear_down in ephemeral_etl.on_crashed_hooks
    run = FlowRun(
        flow_id=uuid.uuid4(),
        parameters={"aws_credentials": credentials_block, "cluster": {"poll_seconds": 0.1}},
    )
    identifier = ephemeral_identifier(run.id)
    cluster = cluster_of(cluster_names, identifier=identifier)
    cluster_create(cluster_names["source"], cluster, aws_credentials=credentials_block)
    assert cluster_exists(aws_credentials, identifier)
    assert block_exists(identifier)

    tear_down(ephemeral_etl, run, Cancelled())

    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)
    tear_down(ephemeral_etl, run, Cancelled())  # a second teardown finds nothing and succeeds


def make_cluster(aws_credentials, identifier: str, tags: list[dict[str, str]]) -> None:
    """A cluster created directly, as another tool or a person would."""
    aws_client(aws_credentials, "redshift").create_cluster(
        ClusterIdentifier=identifier,
        NodeType="dc2.large",
        ClusterType="single-node",
        MasterUsername="someone",
        MasterUserPassword="Passw0rd-x",
        Tags=tags,
    )


@pytest.fixture
def janitor_clusters(aws_credentials) -> dict[str, str]:
    """An expired project cluster, an unexpired one, an untagged one and another project's
    expired one; whatever is left is removed afterwards."""
    now = datetime.now(UTC)
    expired_tags = cluster_tags("ana", now - timedelta(minutes=5))
    clusters = {
        "expired": (unique("jan-expired"), expired_tags),
        "unexpired": (unique("jan-unexpired"), cluster_tags("ana", now + timedelta(hours=1))),
        "untagged": (unique("jan-untagged"), []),
        "other": (
            unique("jan-other"),
            [{**t, "Value": "other"} if t["Key"] == "project" else t for t in expired_tags],
        ),
    }
    for identifier, tags in clusters.values():
        make_cluster(aws_credentials, identifier, tags)
    yield {role: identifier for role, (identifier, _) in clusters.items()}
    redshift = aws_client(aws_credentials, "redshift")
    for identifier, _ in clusters.values():
        if cluster_exists(aws_credentials, identifier):
            redshift.delete_cluster(ClusterIdentifier=identifier, SkipFinalClusterSnapshot=True)


def test_janitor_deletes_only_expired_project_clusters(
    aws_credentials, credentials_block: str, janitor_clusters: dict[str, str]
) -> None:
    redshift = aws_client(aws_credentials, "redshift")
    for identifier in (janitor_clusters["expired"], janitor_clusters["unexpired"]):
        cluster = redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
        RedshiftWarehouse(
            host=cluster["Endpoint"]["Address"],
            user="sparkify",
            password="Not-a-real-0ne",
            iam_role_arn="arn:aws:iam::123456789012:role/sparkify-redshift-s3-read",
        ).save(identifier, overwrite=True)

    # moto has no Redshift Serverless: its half is tested in tests/test_serverless.py.
    deleted = cluster_janitor(credentials_block, serverless=False, **FAST)

    assert janitor_clusters["expired"] in deleted
    assert not cluster_exists(aws_credentials, janitor_clusters["expired"])
    for role in ("unexpired", "untagged", "other"):
        assert janitor_clusters[role] not in deleted
        assert cluster_exists(aws_credentials, janitor_clusters[role])
    # The expired cluster's warehouse block went with it; the live cluster's stays.
    with pytest.raises(ValueError, match="Unable to find block document"):
        RedshiftWarehouse.load(janitor_clusters["expired"])
    assert RedshiftWarehouse.load(janitor_clusters["unexpired"]).host


def test_janitor_dry_run_deletes_nothing(
    aws_credentials, credentials_block: str, janitor_clusters: dict[str, str]
) -> None:
    listed = cluster_janitor(credentials_block, dry_run=True, serverless=False, **FAST)
    assert janitor_clusters["expired"] in listed
    assert janitor_clusters["unexpired"] not in listed
    assert all(cluster_exists(aws_credentials, i) for i in janitor_clusters.values())


# --- the command line, with boto3's default chain pointed at moto (no block) -------------------


@pytest.fixture
def aws_cli_env(cli_env: dict[str, str], moto_endpoint: str) -> dict[str, str]:
    """The scripts' environment: the session's Prefect server, AWS through moto."""
    return {
        **cli_env,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_cluster_cli_create_status_delete(
    aws_credentials,
    aws_env: str,
    cluster_names: dict[str, str],
    prefect_server,
    command_line: Callable[..., Said],
) -> None:
    identifier = unique("sparkify-cli")
    common = ["--identifier", identifier, "--poll-seconds", "0.1"]
    names = ["--role-name", cluster_names["role_name"]]
    names += ["--password-secret", cluster_names["password_secret"]]
    source = ["--source", cluster_names["source"]]
    created = command_line("cluster.py", "create", *common, *source, *names, "--owner", "ana")
    assert created.status == 0, created.err
    assert f"sparkify-redshift-warehouse/{identifier}" in created.out
    assert "$0.25/hour" in created.out

    status = command_line("cluster.py", "status", "--identifier", identifier)
    assert status.status == 0, status.err
    assert "available" in status.out
    assert ".redshift.amazonaws.com:5439" in status.out

    deleted = command_line("cluster.py", "delete", *common)
    assert deleted.status == 0, deleted.err
    assert f"deleted         {identifier}" in deleted.out
    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)


def test_etl_cli_ephemeral_cluster_is_deleted_when_the_etl_fails(
    aws_credentials, aws_cli_env: dict[str, str], cluster_names: dict[str, str]
) -> None:
    done = run(
        "etl.py", "--ephemeral-cluster", "--source", cluster_names["source"], env=aws_cli_env
    )
    assert done.returncode != 0
    assert "NoSuchBucket" in done.stderr
    assert re.search(r"cluster sparkify-eph-[0-9a-f]{12} is deleted", done.stderr)  # teardown ran
    clusters = aws_client(aws_credentials, "redshift").describe_clusters()["Clusters"]
    assert [c for c in clusters if c["ClusterIdentifier"].startswith("sparkify-eph-")] == []


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A machine where boto3's chain finds neither a region nor keys."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


NO_AWS = (
    "janitor: no AWS region/credentials configured: nothing to sweep; set AWS_DEFAULT_REGION "
    "and credentials (environment, profile or instance role), or give the aws credentials "
    "(--aws-credentials) a "
    "saved AwsCredentials block"
)


@pytest.mark.usefixtures("prefect_server", "no_aws")
def test_a_janitor_run_without_aws_ends_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.janitor as janitor

    monkeypatch.setattr(janitor, "start_temporary_server", lambda: None)  # the session's server
    assert janitor.main([]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == NO_AWS
    assert "Traceback" not in err
    state = cluster_janitor(return_state=True)
    assert state.is_failed()
    assert state.message == NO_AWS.removeprefix("janitor: ")
