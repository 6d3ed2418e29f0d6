"""Cluster lifecycle: pure helpers, and the flows against the session's moto server over HTTP
through an AwsCredentials block."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler
from prefect.states import State

from flows.cluster import (
    cluster_create,
    cluster_delete,
    cluster_pause,
    cluster_resume,
    cluster_status,
    parse_args,
)
from flows.cluster import main as cluster_main
from tasks.cluster.cost import hourly_cost
from tasks.cluster.iam import s3_read_policy, source_policy_name, trust_policy
from tasks.cluster.info import ClusterInfo, expired_clusters
from tasks.cluster.lifecycle import (
    ClusterWaitTimeout,
    create_cluster_arguments,
    poll_until,
)
from tasks.cluster.network import ensure_ingress, find_security_groups
from tasks.cluster.password import generate_password, is_valid_password
from tasks.cluster.settings import (
    EXPIRES_TAG,
    ClusterSettings,
    cluster_settings_from_args,
    cluster_tags,
    is_expired,
    parse_expiry,
    tag_map,
    validate_cidr,
)
from tasks.common.aws import aws_client
from tasks.common.errors import BadSource
from tasks.source.resolve import REDSHIFT_FIX
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests.test_cli_errors import logs_of

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FAST = {"poll_seconds": 0.1, "timeout_minutes": 1.0}


# --- pure helpers -------------------------------------------------------------------------


def test_policy_reads_only_the_source_prefix() -> None:
    assert s3_read_policy("raw-bucket", "/sparkify/") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListSourcePrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::raw-bucket",
                "Condition": {"StringLike": {"s3:prefix": ["sparkify", "sparkify/*"]}},
            },
            {
                "Sid": "ReadSourceObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::raw-bucket/sparkify/*",
            },
        ],
    }


def test_policy_for_a_whole_bucket_has_no_prefix_condition() -> None:
    listing, objects = s3_read_policy("raw-bucket", "")["Statement"]
    assert "Condition" not in listing
    assert objects["Resource"] == "arn:aws:s3:::raw-bucket/*"


def test_generated_passwords_satisfy_redshift_rules() -> None:
    passwords = {generate_password() for _ in range(300)}
    assert len(passwords) == 300
    for password in passwords:
        assert 8 <= len(password) <= 64
        assert any(c.isupper() for c in password)
        assert any(c.islower() for c in password)
        assert any(c.isdigit() for c in password)
        assert not set(password) & set("'\"\\/@ ")
    assert len(generate_password(8)) == 8
    assert len(generate_password(64)) == 64
    with pytest.raises(ValueError, match="Redshift passwords have 8 to 64 characters, not 65"):
        generate_password(65)


@pytest.mark.parametrize(
    "password",
    ["Short1a", "alllower123", "ALLUPPER123", "NoDigitsHere", "Has Space1", "Has@At1x", "Q'uote1x"],
)
def test_invalid_passwords_are_refused(password: str) -> None:
    assert not is_valid_password(password)


def test_expiry_needs_the_project_tag_and_a_past_readable_time() -> None:
    past = tag_map(cluster_tags("ana", NOW - timedelta(minutes=1)))
    future = tag_map(cluster_tags("ana", NOW + timedelta(hours=1)))
    assert past == {"project": "sparkify-etl", "owner": "ana", "expires-at": "2026-11-20T11:59:00Z"}
    assert is_expired(past, NOW)
    assert not is_expired(future, NOW)
    assert not is_expired({**past, "project": "other"}, NOW)
    assert not is_expired({"expires-at": past["expires-at"]}, NOW)
    assert not is_expired({**past, "expires-at": "tomorrow"}, NOW)
    assert parse_expiry("2026-11-20T11:59:00") == NOW - timedelta(minutes=1)


def test_expired_clusters_skip_those_already_deleting() -> None:
    tags = tag_map(cluster_tags("ana", NOW - timedelta(hours=1)))
    clusters = [
        ClusterInfo("a", "available", "dc2.large", 1, None, None, "dev", "u", None, tags),
        ClusterInfo("b", "deleting", "dc2.large", 1, None, None, "dev", "u", None, tags),
        ClusterInfo("c", "available", "dc2.large", 1, None, None, "dev", "u", None, {}),
    ]
    assert [c.identifier for c in expired_clusters(clusters, NOW)] == ["a"]


def test_cost_comes_from_the_price_table() -> None:
    assert hourly_cost("dc2.large", 2, "us-east-1") == 0.5
    assert hourly_cost("ra3.xlplus", 1, "us-west-2") == 1.086
    assert hourly_cost("ra3.4xlarge", 3, "us-east-1") == pytest.approx(9.78)
    assert hourly_cost("dc2.large", 1, "eu-west-1") is None
    info = ClusterInfo(
        "a", "available", "ra3.large", 2, "h", 5439, "dev", "u", NOW - timedelta(hours=3)
    )
    assert info.cost_so_far("us-east-1", NOW) == pytest.approx(3.26)


def test_settings_open_nothing_without_a_cidr() -> None:
    settings = ClusterSettings(identifier="c1", owner="ana", ttl_hours=2)
    args = create_cluster_arguments(settings, "arn:r", "pw", NOW, None)
    assert args["PubliclyAccessible"] is False
    assert "VpcSecurityGroupIds" not in args
    assert args["ClusterType"] == "single-node"
    assert "NumberOfNodes" not in args
    assert tag_map(args["Tags"])[EXPIRES_TAG] == "2026-11-20T14:00:00Z"
    multi = ClusterSettings(identifier="c1", number_of_nodes=3, ingress_cidr="198.51.100.7/32")
    args = create_cluster_arguments(multi, "arn:r", "pw", NOW, "sg-1")
    assert args["ClusterType"] == "multi-node"
    assert args["NumberOfNodes"] == 3
    assert args["PubliclyAccessible"] is True
    assert args["VpcSecurityGroupIds"] == ["sg-1"]


def test_settings_default_to_eight_hours_the_identifier_and_the_local_user() -> None:
    settings = ClusterSettings(identifier="c1")
    assert settings.time_to_live == timedelta(hours=8)
    assert settings.warehouse_block == "c1"
    assert settings.owner_tag
    assert ClusterSettings(owner="ana", block_name="b").warehouse_block == "b"
    assert ClusterSettings(owner="ana").owner_tag == "ana"


def test_cidrs_are_validated() -> None:
    assert validate_cidr("198.51.100.7/24") == "198.51.100.0/24"
    assert ClusterSettings(ingress_cidr="198.51.100.7/24").ingress_cidr == "198.51.100.0/24"
    with pytest.raises(
        ValueError, match="'everywhere' does not appear to be an IPv4 or IPv6 network"
    ):
        ClusterSettings(ingress_cidr="everywhere")
    with pytest.raises(ValueError, match="only IPv4 CIDRs are supported, not '2001:db8::/32'"):
        ClusterSettings(ingress_cidr="2001:db8::/32")
    with pytest.raises(
        ValueError, match=r"number_of_nodes\s+Input should be greater than or equal to 1"
    ):
        ClusterSettings(number_of_nodes=0)
    with pytest.raises(ValueError, match=r"ttl_hours\s+Input should be greater than 0"):
        ClusterSettings(ttl_hours=0)
    with pytest.raises(ValueError, match=r"node_typ\s+Extra inputs are not permitted"):
        ClusterSettings(node_typ="dc2.large")  # a misspelt setting is refused, not ignored


def test_the_command_line_builds_the_settings_from_the_model() -> None:
    command = "create --source s3://b/p --identifier c1 --number-of-nodes 2 --ttl-hours 1.5"
    args = parse_args(
        [*command.split(), "--ingress-cidr", "203.0.113.9/24", "--poll-seconds", ".5"]
    )
    assert cluster_settings_from_args(args) == ClusterSettings(
        identifier="c1",
        number_of_nodes=2,
        ttl_hours=1.5,
        ingress_cidr="203.0.113.0/24",
        poll_seconds=0.5,
    )
    # What is not given keeps the model's default; overrides win.
    defaults = cluster_settings_from_args(parse_args(["status"]), owner="ana")
    assert defaults == ClusterSettings(owner="ana")
    assert cluster_settings_from_args(parse_args(["delete", "--block-name", "b"])).block_name == "b"


@pytest.mark.parametrize(
    "option", [["--number-of-nodes", "0"], ["--ingress-cidr", "everywhere"], ["--ttl-hours", "x"]]
)
def test_a_bad_setting_on_the_command_line_is_one_line_and_exit_2(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["create", "--source", "s3://b/p", *option])
    assert exited.value.code == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert f"create: error: argument {option[0]}: " in error


def test_poll_until_reports_progress_and_times_out() -> None:
    states = iter(["creating", "creating", None])
    clock = {"now": 0.0}
    reports: list[tuple[str, float]] = []

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    def report(state: str, waited: float) -> None:
        reports.append((state, waited))

    waited = poll_until(lambda: next(states), 100, 10, report, sleep, lambda: clock["now"])
    assert waited == 20
    assert reports == [("creating", 0), ("creating", 10)]
    with pytest.raises(ClusterWaitTimeout, match="still modifying"):
        poll_until(lambda: "modifying", 25, 10, lambda s, t: None, sleep, lambda: clock["now"])


# --- against the moto server --------------------------------------------------------------


def unique(prefix: str) -> str:
    """A name no other test of the session uses (the moto server is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def credentials_block(prefect_server, aws_credentials) -> str:
    """The moto AwsCredentials block, saved under a unique name."""
    name = unique("moto")
    aws_credentials.save(name)
    return name


@pytest.fixture
def names(bucket_name: str) -> dict[str, str]:
    """Unique identifier, role and secret names for one test's cluster."""
    return {
        "identifier": unique("sparkify-t"),
        "role_name": unique("sparkify-role"),
        "password_secret": unique("sparkify-pw"),
        "source": f"s3://{bucket_name}/raw/sparkify",
    }


def describe(aws_credentials, identifier: str) -> dict[str, Any] | None:
    """The raw describe_clusters entry, or None if the cluster is gone."""
    try:
        return aws_client(aws_credentials, "redshift").describe_clusters(
            ClusterIdentifier=identifier
        )["Clusters"][0]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ClusterNotFound":
            raise
        return None


def cluster_settings_for(names: dict[str, str], **extra: Any) -> ClusterSettings:
    """The test's cluster: its unique names, owner ana, two hours to live, fast polling."""
    given = {k: v for k, v in names.items() if k != "source"}
    return ClusterSettings(**given, owner="ana", ttl_hours=2, **FAST, **extra)


def create(names: dict[str, str], credentials_block: str, **extra: Any) -> dict[str, Any]:
    """Run the create flow for the test's names."""
    return cluster_create(names["source"], cluster_settings_for(names, **extra), credentials_block)


def test_create_makes_the_scoped_role_the_tagged_cluster_and_the_block(
    aws_credentials,
    credentials_block: str,
    names: dict[str, str],
    bucket_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = datetime.now(UTC)
    result = create(names, credentials_block)

    iam = aws_client(aws_credentials, "iam")
    role = iam.get_role(RoleName=names["role_name"])["Role"]
    assert role["AssumeRolePolicyDocument"] == trust_policy()
    policy = iam.get_role_policy(RoleName=names["role_name"], PolicyName=read_policy(names))
    assert policy["PolicyDocument"] == s3_read_policy(bucket_name, "raw/sparkify")
    assert policy["PolicyDocument"]["Statement"][1]["Resource"] == (
        f"arn:aws:s3:::{bucket_name}/raw/sparkify/*"
    )
    assert iam.list_attached_role_policies(RoleName=names["role_name"])["AttachedPolicies"] == []

    cluster = describe(aws_credentials, names["identifier"])
    assert cluster["ClusterStatus"] == "available"
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [role["Arn"]]
    assert cluster["NodeType"] == "dc2.large"
    assert cluster["MasterUsername"] == "sparkify"
    assert cluster["PubliclyAccessible"] is False
    assert cluster["VpcSecurityGroups"] == []
    tags = tag_map(cluster["Tags"])
    assert tags["project"] == "sparkify-etl"
    assert tags["owner"] == "ana"
    expires = parse_expiry(tags["expires-at"])
    assert before + timedelta(hours=2) - timedelta(seconds=1) <= expires
    assert expires <= datetime.now(UTC) + timedelta(hours=2)

    password = Secret.load(names["password_secret"]).get()
    assert is_valid_password(password)
    block = RedshiftWarehouse.load(names["identifier"])
    assert block.host == cluster["Endpoint"]["Address"]
    assert block.port == 5439
    assert (block.user, block.database) == ("sparkify", "dev")
    # IAM sign-in by default: the block holds no password (--password-sign-in stores it).
    assert (block.sign_in, block.cluster_identifier, block.password) == (
        "iam",
        names["identifier"],
        None,
    )
    assert block.iam_role_arn == role["Arn"]
    assert block.region == "us-east-1"
    assert result["warehouse"] == f"sparkify-redshift-warehouse/{names['identifier']}"
    assert result["endpoint"] == f"{cluster['Endpoint']['Address']}:5439"
    assert password not in json.dumps(result)
    assert "generated a master password" in caplog.text
    assert password not in caplog.text


def test_create_again_reuses_the_cluster_and_updates_the_role_policy(
    aws_credentials, credentials_block: str, names: dict[str, str], bucket_name: str
) -> None:
    create(names, credentials_block)
    first = describe(aws_credentials, names["identifier"])
    password = Secret.load(names["password_secret"]).get()

    moved = {**names, "source": f"s3://{bucket_name}/elsewhere"}
    create(moved, credentials_block)

    again = describe(aws_credentials, names["identifier"])
    assert again["ClusterCreateTime"] == first["ClusterCreateTime"]
    assert again["Tags"] == first["Tags"]
    assert Secret.load(names["password_secret"]).get() == password
    iam = aws_client(aws_credentials, "iam")
    policy = iam.get_role_policy(RoleName=names["role_name"], PolicyName=read_policy(names))
    assert policy["PolicyDocument"] == s3_read_policy(bucket_name, "elsewhere")
    assert len(iam.list_role_policies(RoleName=names["role_name"])["PolicyNames"]) == 1
    clusters = aws_client(aws_credentials, "redshift").describe_clusters()["Clusters"]
    assert [c["ClusterIdentifier"] for c in clusters].count(names["identifier"]) == 1


def read_policy(names: dict[str, str]) -> str:
    """The name of the role's inline policy by which the test's cluster reads its source."""
    return source_policy_name(("cluster", names["identifier"]))


def role_policies(aws_credentials, role_name: str) -> dict[str, Any]:
    """Each inline policy of the role, by name."""
    iam = aws_client(aws_credentials, "iam")
    return {
        name: iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    }


# A role shared by clusters reading different prefixes: each cluster's create adds its own grant
# and leaves the other's, and each cluster's delete takes away its own only.
def test_clusters_sharing_a_role_each_keep_their_own_read(
    aws_credentials, credentials_block: str, names: dict[str, str], bucket_name: str
) -> None:
    other = {
        **names,
        "identifier": unique("sparkify-t"),
        "password_secret": unique("sparkify-pw"),
        "source": f"s3://{bucket_name}/other",
    }
    create(names, credentials_block)
    create(other, credentials_block)

    assert role_policies(aws_credentials, names["role_name"]) == {
        read_policy(names): s3_read_policy(bucket_name, "raw/sparkify"),
        read_policy(other): s3_read_policy(bucket_name, "other"),
    }
    cluster_delete(names["identifier"], aws_credentials=credentials_block, **FAST)
    assert role_policies(aws_credentials, names["role_name"]) == {
        read_policy(other): s3_read_policy(bucket_name, "other"),
    }
    cluster_delete(other["identifier"], aws_credentials=credentials_block, **FAST)
    assert role_policies(aws_credentials, names["role_name"]) == {}


def test_ingress_is_opened_only_to_the_named_cidr(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block, ingress_cidr="203.0.113.9/24")

    ec2 = aws_client(aws_credentials, "ec2")
    (group,) = find_security_groups(ec2, names["identifier"])
    assert group["GroupName"] == f"{names['identifier']}-redshift-ingress"
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
        for p in group["IpPermissions"]
    ] == [("tcp", 5439, 5439, ["203.0.113.0/24"])]
    cluster = describe(aws_credentials, names["identifier"])
    assert [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]] == [group["GroupId"]]
    assert cluster["PubliclyAccessible"] is True

    # A second create neither duplicates the rule nor the group.
    create(names, credentials_block, ingress_cidr="203.0.113.9/24")
    groups = find_security_groups(ec2, names["identifier"])
    assert len(groups) == 1
    assert len(groups[0]["IpPermissions"]) == 1

    # Another range replaces the first; no range leaves the group admitting nothing.
    def admitted() -> list[str]:
        (group,) = find_security_groups(ec2, names["identifier"])
        return sorted(r["CidrIp"] for p in group["IpPermissions"] for r in p["IpRanges"])

    create(names, credentials_block, ingress_cidr="198.51.100.7/32")
    assert admitted() == ["198.51.100.7/32"]
    ensure_ingress.fn(aws_credentials, names["identifier"], None)
    assert admitted() == []

    cluster_delete(names["identifier"], aws_credentials=credentials_block, **FAST)
    assert find_security_groups(ec2, names["identifier"]) == []


def test_no_ingress_rule_anywhere_without_a_cidr(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    ec2 = aws_client(aws_credentials, "ec2")
    assert find_security_groups(ec2, names["identifier"]) == []
    opened = [
        g["GroupName"]
        for g in ec2.describe_security_groups()["SecurityGroups"]
        for p in g["IpPermissions"]
        if p.get("FromPort") == 5439
        and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
    ]
    assert opened == []


def test_pause_resume_and_status(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    identifier = names["identifier"]

    assert cluster_pause(identifier, credentials_block, **FAST) == "paused"
    assert describe(aws_credentials, identifier)["ClusterStatus"] == "paused"
    assert cluster_status(identifier, credentials_block)["status"] == "paused"
    assert cluster_pause(identifier, credentials_block, **FAST) == "paused"  # already paused

    assert cluster_resume(identifier, credentials_block, **FAST) == "available"
    assert describe(aws_credentials, identifier)["ClusterStatus"] == "available"

    report = cluster_status(identifier, credentials_block)
    cluster = describe(aws_credentials, identifier)
    assert report["status"] == "available"
    assert report["endpoint"] == f"{cluster['Endpoint']['Address']}:5439"
    assert report["owner"] == "ana"
    assert report["expired"] is False
    assert report["expires_at"] == tag_map(cluster["Tags"])["expires-at"]
    assert report["cost_per_hour_usd"] == 0.25
    assert 0 <= report["age_hours"] < 1
    assert 0 <= report["cost_so_far_usd"] < 0.25
    assert cluster_status(unique("absent"), credentials_block) == {"status": "absent"}


def test_delete_removes_cluster_and_block_and_succeeds_again(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    identifier = names["identifier"]

    assert cluster_delete(
        identifier, block_name=identifier, aws_credentials=credentials_block, **FAST
    )
    assert describe(aws_credentials, identifier) is None
    with pytest.raises(ValueError, match="Unable to find block document"):
        RedshiftWarehouse.load(identifier)

    again = cluster_delete(
        identifier, block_name=identifier, aws_credentials=credentials_block, **FAST
    )
    assert again is False


def test_delete_with_a_final_snapshot(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    snapshot = f"{names['identifier']}-final"
    cluster_delete(names["identifier"], snapshot, aws_credentials=credentials_block, **FAST)
    assert describe(aws_credentials, names["identifier"]) is None
    snapshots = aws_client(aws_credentials, "redshift").describe_cluster_snapshots(
        SnapshotIdentifier=snapshot
    )["Snapshots"]
    assert [s["ClusterIdentifier"] for s in snapshots] == [names["identifier"]]


# --- a user's mistake in a flow run: one line, the run's state message ----------------------


def assert_failed_in_one_line(state: State, line: str) -> None:
    """The flow run ended Failed with the line as its state's message, on the server too, and
    its logs carry the line, never a traceback."""
    assert state.is_failed()
    assert state.message == line
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id).state
    assert stored.message == line
    APILogHandler().flush()  # send the logs still queued in this process
    logs = logs_of(state.state_details.flow_run_id)
    assert any(line in message for message in logs), logs
    assert not any("Traceback" in message for message in logs), logs


def test_a_source_not_on_s3_fails_the_create_run_in_one_line(
    aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    """A deployment or the UI hands the flow its source unchecked: the run refuses a source
    Redshift cannot COPY from before anything is made, with the line as the state's message."""
    line = f"source data/sample is not on S3: {REDSHIFT_FIX}"
    settings = cluster_settings_for(names)

    state = cluster_create("data/sample", settings, credentials_block, return_state=True)

    assert_failed_in_one_line(state, line)
    with pytest.raises(BadSource, match="is not on S3"):  # a caller still gets the error
        cluster_create("data/sample", settings, credentials_block)
    with pytest.raises(ClientError, match="NoSuchEntity"):
        aws_client(aws_credentials, "iam").get_role(RoleName=names["role_name"])


@pytest.mark.parametrize("step", ["pause", "resume"])
def test_pausing_or_resuming_a_cluster_that_does_not_exist_fails_in_one_line(
    step: str, credentials_block: str, capsys: pytest.CaptureFixture[str]
) -> None:
    identifier = unique("sparkify-absent")
    line = (
        f"cluster {identifier} does not exist: give the identifier (--identifier) of an existing "
        "cluster, "
        "or create it first with python flows/cluster.py create"
    )
    lifecycle_flow = {"pause": cluster_pause, "resume": cluster_resume}[step]

    state = lifecycle_flow(identifier, credentials_block, **FAST, return_state=True)

    assert_failed_in_one_line(state, line)
    # The command line: the line last on stderr, exit status 2, no traceback.
    capsys.readouterr()
    argv = [step, "--identifier", identifier, "--aws-credentials", credentials_block]
    assert cluster_main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"cluster: {line}"
    assert "Traceback" not in err
