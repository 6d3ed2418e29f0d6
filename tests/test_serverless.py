"""Redshift Serverless: pure helpers; the create/status/delete flows and the janitor's Serverless
half against a recording redshift-serverless client (moto 5.2.5 has no Redshift Serverless),
with IAM and EC2 on the session's moto server over HTTP."""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from prefect.blocks.system import Secret

import flows.janitor as janitor_module
import tasks.cluster.serverless as serverless_module
import tasks.warehouse.redshift.sign_in as sign_in_module
from flows.cluster import main as cluster_main
from flows.cluster import parse_args, serverless_create, serverless_delete, serverless_status
from flows.janitor import cluster_janitor
from tasks.cluster.cost import busy_hourly_cost, describe_serverless_cost
from tasks.cluster.iam import (
    REDSHIFT_SERVICES,
    s3_read_policy,
    source_policy_name,
    trust_policy,
)
from tasks.cluster.info import (
    NamespaceInfo,
    WorkgroupInfo,
    expired_serverless,
    role_arns,
    serverless_report,
)
from tasks.cluster.network import find_security_groups
from tasks.cluster.serverless import (
    create_namespace_arguments,
    create_workgroup_arguments,
    workgroup_changes,
)
from tasks.cluster.settings import (
    ServerlessSettings,
    serverless_settings_from_args,
    serverless_tags,
    tag_map,
    validate_base_capacity,
)
from tasks.common.aws import aws_client
from tasks.common.errors import BadArgument, BadSource
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tests.test_cluster import assert_failed_in_one_line, unique
from tests.test_cluster import credentials_block as saved_credentials_block

credentials_block = saved_credentials_block  # the moto AwsCredentials block fixture

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FAST = {"poll_seconds": 0.05, "timeout_minutes": 1.0}
ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
ACCOUNT = "123456789012"


# --- the recording client -------------------------------------------------------------------


class FakeServerless:
    """A recording stand-in for boto3's redshift-serverless client. It keeps namespaces and
    workgroups, records every call, checks each call's arguments and each answer against
    botocore's service model (so a misspelt parameter or an answer of the wrong shape fails the
    test), and behaves as the API reference says where the project depends on it: a workgroup is
    CREATING, MODIFYING or DELETING for a few looks; UpdateWorkgroup takes one parameter and an
    AVAILABLE workgroup; a namespace is not deleted while a workgroup uses it; GetNamespace
    lists roles as `IamRole(applyStatus=in-sync, iamRoleArn=...)` text."""

    LOOKS = 2  # get_* calls a changing resource takes to settle
    UPDATABLE = ("baseCapacity", "publiclyAccessible", "securityGroupIds", "port", "maxCapacity")

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.model = botocore.session.get_session().get_service_model("redshift-serverless")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.workgroups: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self.pending: dict[tuple[str, str], list[Any]] = {}  # (kind, name) -> [looks, next]

    # what the tests read
    def called(self, *operations: str) -> list[tuple[str, dict[str, Any]]]:
        """The calls of these operations, in order (every call without arguments)."""
        return [c for c in self.calls if not operations or c[0] in operations]

    def operations(self) -> list[str]:
        """The operations called, in order, repeated looks collapsed into one."""
        names = [name for name, _ in self.calls]
        return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]

    # the machinery
    def _call(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, self.model.operation_model(operation).input_shape)
        self.calls.append((operation, copy.deepcopy(params)))

    def _answer(self, operation: str, answer: dict[str, Any]) -> dict[str, Any]:
        validate_parameters(answer, self.model.operation_model(operation).output_shape)
        return copy.deepcopy(answer)

    def _fail(self, operation: str, code: str, message: str) -> None:
        raise ClientError({"Error": {"Code": code, "Message": message}}, operation)

    def _arn(self, kind: str) -> str:
        return f"arn:aws:redshift-serverless:{self.region}:{ACCOUNT}:{kind}/{uuid.uuid4()}"

    def _change(self, kind: str, name: str, status: str, then: str | None) -> None:
        store = self.namespaces if kind == "namespace" else self.workgroups
        store[name]["status"] = status
        self.pending[(kind, name)] = [self.LOOKS, then]

    def _settle(self, kind: str, name: str) -> None:
        pending = self.pending.get((kind, name))
        if pending is None:
            return
        pending[0] -= 1
        if pending[0] > 0:
            return
        del self.pending[(kind, name)]
        store = self.namespaces if kind == "namespace" else self.workgroups
        if pending[1] is None:
            del store[name]
            return
        store[name]["status"] = pending[1]
        if kind == "workgroup" and pending[1] == "AVAILABLE":
            store[name]["endpoint"] = {
                "address": f"{name}.{ACCOUNT}.{self.region}.redshift-serverless.amazonaws.com",
                "port": store[name]["port"],
                "vpcEndpoints": [],
            }

    @staticmethod
    def _role_text(arn: str) -> str:
        return f"IamRole(applyStatus=in-sync, iamRoleArn={arn})"

    # namespaces
    def create_namespace(self, **params: Any) -> dict[str, Any]:
        self._call("CreateNamespace", params)
        name = params["namespaceName"]
        if name in self.namespaces:
            self._fail("CreateNamespace", "ConflictException", f"namespace {name} exists")
        arn = self._arn("namespace")
        self.namespaces[name] = {
            "namespaceName": name,
            "namespaceArn": arn,
            "namespaceId": arn.rsplit("/", 1)[1],
            "dbName": params.get("dbName", "dev"),
            "adminUsername": params.get("adminUsername", "admin"),
            "iamRoles": [self._role_text(r) for r in params.get("iamRoles", [])],
            "defaultIamRoleArn": params.get("defaultIamRoleArn", ""),
            "status": "AVAILABLE",
            "creationDate": datetime.now(UTC),
        }
        self.tags[arn] = list(params.get("tags", []))
        return self._answer("CreateNamespace", {"namespace": self.namespaces[name]})

    def get_namespace(self, **params: Any) -> dict[str, Any]:
        self._call("GetNamespace", params)
        name = params["namespaceName"]
        self._settle("namespace", name)
        if name not in self.namespaces:
            self._fail("GetNamespace", "ResourceNotFoundException", f"namespace {name} not found")
        return self._answer("GetNamespace", {"namespace": self.namespaces[name]})

    def update_namespace(self, **params: Any) -> dict[str, Any]:
        self._call("UpdateNamespace", params)
        name = params.pop("namespaceName")
        namespace = self.namespaces.get(name)
        if namespace is None:
            self._fail("UpdateNamespace", "ResourceNotFoundException", f"{name} not found")
        if namespace["status"] != "AVAILABLE":
            self._fail("UpdateNamespace", "ConflictException", f"namespace {name} is busy")
        if "iamRoles" in params:
            namespace["iamRoles"] = [self._role_text(r) for r in params["iamRoles"]]
            namespace["defaultIamRoleArn"] = params["defaultIamRoleArn"]
        if "adminUsername" in params:
            namespace["adminUsername"] = params["adminUsername"]
        self._change("namespace", name, "MODIFYING", "AVAILABLE")
        return self._answer("UpdateNamespace", {"namespace": namespace})

    def delete_namespace(self, **params: Any) -> dict[str, Any]:
        self._call("DeleteNamespace", params)
        name = params["namespaceName"]
        if name not in self.namespaces:
            self._fail("DeleteNamespace", "ResourceNotFoundException", f"{name} not found")
        if any(w["namespaceName"] == name for w in self.workgroups.values()):
            self._fail("DeleteNamespace", "ConflictException", f"a workgroup uses {name}")
        self._change("namespace", name, "DELETING", None)
        return self._answer("DeleteNamespace", {"namespace": self.namespaces[name]})

    # workgroups
    def create_workgroup(self, **params: Any) -> dict[str, Any]:
        self._call("CreateWorkgroup", params)
        name, namespace = params["workgroupName"], params["namespaceName"]
        if name in self.workgroups:
            self._fail("CreateWorkgroup", "ConflictException", f"workgroup {name} exists")
        if namespace not in self.namespaces:
            self._fail("CreateWorkgroup", "ResourceNotFoundException", f"{namespace} not found")
        arn = self._arn("workgroup")
        self.workgroups[name] = {
            "workgroupName": name,
            "workgroupArn": arn,
            "workgroupId": arn.rsplit("/", 1)[1],
            "namespaceName": namespace,
            "baseCapacity": params.get("baseCapacity", 128),
            "port": params.get("port", 5439),
            "publiclyAccessible": params.get("publiclyAccessible", False),
            "securityGroupIds": params.get("securityGroupIds", ["sg-default"]),
            "status": "CREATING",
            "creationDate": datetime.now(UTC),
        }
        self.tags[arn] = list(params.get("tags", []))
        self._change("workgroup", name, "CREATING", "AVAILABLE")
        return self._answer("CreateWorkgroup", {"workgroup": self.workgroups[name]})

    def get_workgroup(self, **params: Any) -> dict[str, Any]:
        self._call("GetWorkgroup", params)
        name = params["workgroupName"]
        self._settle("workgroup", name)
        if name not in self.workgroups:
            self._fail("GetWorkgroup", "ResourceNotFoundException", f"workgroup {name} not found")
        return self._answer("GetWorkgroup", {"workgroup": self.workgroups[name]})

    def update_workgroup(self, **params: Any) -> dict[str, Any]:
        self._call("UpdateWorkgroup", params)
        name = params.pop("workgroupName")
        workgroup = self.workgroups.get(name)
        if workgroup is None:
            self._fail("UpdateWorkgroup", "ResourceNotFoundException", f"{name} not found")
        if len(params) != 1 or not set(params) <= set(self.UPDATABLE):
            self._fail("UpdateWorkgroup", "ValidationException", "one parameter per update")
        if workgroup["status"] != "AVAILABLE":
            self._fail("UpdateWorkgroup", "ConflictException", f"workgroup {name} is busy")
        workgroup.update(params)
        self._change("workgroup", name, "MODIFYING", "AVAILABLE")
        return self._answer("UpdateWorkgroup", {"workgroup": workgroup})

    def delete_workgroup(self, **params: Any) -> dict[str, Any]:
        self._call("DeleteWorkgroup", params)
        name = params["workgroupName"]
        if name not in self.workgroups:
            self._fail("DeleteWorkgroup", "ResourceNotFoundException", f"{name} not found")
        self._change("workgroup", name, "DELETING", None)
        return self._answer("DeleteWorkgroup", {"workgroup": self.workgroups[name]})

    # listing, tags, credentials
    def list_tags_for_resource(self, **params: Any) -> dict[str, Any]:
        self._call("ListTagsForResource", params)
        return self._answer("ListTagsForResource", {"tags": self.tags[params["resourceArn"]]})

    def get_paginator(self, name: str) -> Any:
        operation, key, store = {
            "list_workgroups": ("ListWorkgroups", "workgroups", self.workgroups),
            "list_namespaces": ("ListNamespaces", "namespaces", self.namespaces),
        }[name]
        fake = self

        class Paginator:
            def paginate(self) -> Iterator[dict[str, Any]]:
                fake._call(operation, {})
                yield fake._answer(operation, {key: list(store.values())})

        return Paginator()

    def get_credentials(self, **params: Any) -> dict[str, Any]:
        self._call("GetCredentials", params)
        workgroup = self.workgroups.get(params.get("workgroupName", ""))
        if workgroup is None:
            self._fail("GetCredentials", "ResourceNotFoundException", "workgroup not found")
        now = datetime.now(UTC)
        seconds = params.get("durationSeconds", 900)
        return self._answer(
            "GetCredentials",
            {
                "dbUser": "IAMR:sparkify-etl",
                "dbPassword": secrets.token_urlsafe(24),
                "expiration": now + timedelta(seconds=seconds),
                "nextRefreshTime": now + timedelta(seconds=seconds),
            },
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeServerless:
    """A recording redshift-serverless client that the project's client factory hands out in
    place of boto3's (every other service still goes to boto3, and so to moto)."""
    recording = FakeServerless()

    def client(credentials: Any, service: str) -> Any:
        return recording if service == "redshift-serverless" else aws_client(credentials, service)

    monkeypatch.setattr(serverless_module, "aws_client", client)
    monkeypatch.setattr(sign_in_module, "aws_client", client)
    return recording


# --- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("rpus", [4, 8, 16, 24, 128, 512, 544, 1024])
def test_base_capacities_the_documentation_allows(rpus: int) -> None:
    assert validate_base_capacity(rpus) == rpus
    assert ServerlessSettings(base_capacity=rpus).base_capacity == rpus


@pytest.mark.parametrize("rpus", [0, 2, 5, 12, 100, 520, 1056, 2048])
def test_other_base_capacities_are_refused(rpus: int) -> None:
    with pytest.raises(ValueError, match="is no base capacity"):
        ServerlessSettings(base_capacity=rpus)


def test_serverless_settings_default_to_the_smallest_capacity_and_the_workgroup_name() -> None:
    settings = ServerlessSettings(owner="ana")
    assert settings.base_capacity == 4
    assert (settings.workgroup, settings.namespace_name) == ("sparkify-serverless",) * 2
    assert settings.warehouse_block == "sparkify-serverless"
    assert settings.password_sign_in is False
    assert settings.ingress_cidr is None
    assert ServerlessSettings(namespace="ns1", block_name="b").namespace_name == "ns1"
    assert ServerlessSettings(ttl_hours=2).time_to_live == timedelta(hours=2)
    with pytest.raises(
        ValueError, match="'everywhere' does not appear to be an IPv4 or IPv6 network"
    ):
        ServerlessSettings(ingress_cidr="everywhere")
    with pytest.raises(ValueError, match=r"node_type\s+Extra inputs are not permitted"):
        ServerlessSettings(node_type="dc2.large")  # a cluster's setting is refused
    for name, problem in (
        ("wg", "String should have at least 3 characters"),
        ("Upper-Case", "String should match pattern"),
        ("under_score", "String should match pattern"),
        ("x" * 65, "String should have at most 64 characters"),
    ):
        with pytest.raises(ValueError, match=rf"workgroup\s+{problem}"):
            ServerlessSettings(workgroup=name)


def test_create_arguments_carry_the_tags_the_role_and_no_opening_by_default() -> None:
    settings = ServerlessSettings(workgroup="wg1", owner="ana", ttl_hours=2)
    namespace = create_namespace_arguments(settings, ROLE, "pw", NOW)
    assert namespace == {
        "namespaceName": "wg1",
        "dbName": "dev",
        "adminUsername": "sparkify",
        "adminUserPassword": "pw",
        "iamRoles": [ROLE],
        "defaultIamRoleArn": ROLE,
        "tags": [
            {"key": "project", "value": "sparkify-etl"},
            {"key": "owner", "value": "ana"},
            {"key": "expires-at", "value": "2026-11-20T14:00:00Z"},
        ],
    }
    workgroup = create_workgroup_arguments(settings, NOW, None)
    assert workgroup == {
        "workgroupName": "wg1",
        "namespaceName": "wg1",
        "baseCapacity": 4,
        "port": 5439,
        "publiclyAccessible": False,
        "tags": namespace["tags"],
    }
    opened = ServerlessSettings(workgroup="wg1", ingress_cidr="198.51.100.7/32", base_capacity=8)
    workgroup = create_workgroup_arguments(opened, NOW, "sg-1")
    assert workgroup["publiclyAccessible"] is True
    assert workgroup["securityGroupIds"] == ["sg-1"]
    assert workgroup["baseCapacity"] == 8
    model = botocore.session.get_session().get_service_model("redshift-serverless")
    validate_parameters(namespace, model.operation_model("CreateNamespace").input_shape)
    validate_parameters(workgroup, model.operation_model("CreateWorkgroup").input_shape)


def test_a_reused_workgroup_gets_its_ingress_one_change_at_a_time() -> None:
    existing = WorkgroupInfo("wg1", "wg1", "AVAILABLE", 32, "h", 5439, "arn", None, False, ["sg-0"])
    opened = ServerlessSettings(workgroup="wg1", ingress_cidr="198.51.100.7/32")
    assert workgroup_changes(existing, opened, "sg-1") == [
        {"securityGroupIds": ["sg-0", "sg-1"]},
        {"publiclyAccessible": True},
    ]
    assert workgroup_changes(existing, ServerlessSettings(workgroup="wg1"), None) == []


def test_namespace_roles_are_read_from_getnamespace_text() -> None:
    other = "arn:aws:iam::123456789012:role/service-role/other.role"
    assert role_arns(
        [
            f"IamRole(applyStatus=in-sync, iamRoleArn={ROLE})",
            f"IamRole(iamRoleArn={other}, applyStatus=adding)",
            ROLE,
            "nothing here",
        ]
    ) == [ROLE, other, ROLE]


def workgroup_info(name: str, tags: dict[str, str], status: str = "AVAILABLE") -> WorkgroupInfo:
    return WorkgroupInfo(name, name, status, 4, "h", 5439, "arn", NOW, tags=tags)


def test_expiry_report_and_cost() -> None:
    past = tag_map(serverless_tags("ana", NOW - timedelta(minutes=1)))
    future = tag_map(serverless_tags("ana", NOW + timedelta(hours=1)))
    workgroups = [
        workgroup_info("a", past),
        workgroup_info("b", past, "DELETING"),
        workgroup_info("c", future),
        workgroup_info("d", {}),
        workgroup_info("e", {**past, "project": "other"}),
    ]
    assert [w.name for w in expired_serverless(workgroups, NOW)] == ["a"]
    namespace = NamespaceInfo("a", "AVAILABLE", "dev", "sparkify", "arn", NOW, [ROLE], past)
    assert expired_serverless([namespace], NOW) == [namespace]

    assert busy_hourly_cost(4, "us-east-1") == 1.5
    assert busy_hourly_cost(8, "eu-west-1") is None
    assert "about $1.50/hour while queries run" in describe_serverless_cost(4, "us-east-1")
    assert "nothing while idle" in describe_serverless_cost(4, "us-east-1")
    report = serverless_report(workgroups[0], namespace, "us-east-1", NOW + timedelta(hours=2))
    assert report == {
        "workgroup": "a",
        "status": "AVAILABLE",
        "namespace": "a",
        "namespace_status": "AVAILABLE",
        "endpoint": "h:5439",
        "base_capacity_rpus": 4,
        "age_hours": 2.0,
        "expires_at": "2026-11-20T11:59:00Z",
        "expired": True,
        "owner": "ana",
        "cost_per_busy_hour_usd": 1.5,
    }
    assert serverless_report(None, None, "us-east-1", NOW) == {"status": "absent"}
    assert serverless_report(None, namespace, "us-east-1", NOW)["status"] == "absent"


def test_the_command_line_builds_the_serverless_settings() -> None:
    args = parse_args(
        [
            "serverless",
            "create",
            "--source",
            "s3://b/p",
            "--workgroup",
            "wg1",
            "--base-capacity",
            "8",
            "--ttl-hours",
            "2",
            "--password-sign-in",
            "--poll-seconds",
            ".5",
        ]
    )
    assert (args.command, args.serverless_command) == ("serverless", "create")
    assert serverless_settings_from_args(args) == ServerlessSettings(
        workgroup="wg1", base_capacity=8, ttl_hours=2, password_sign_in=True, poll_seconds=0.5
    )
    args = parse_args(["serverless", "delete", "--namespace", "ns1", "--final-snapshot"])
    assert args.final_snapshot == ""
    assert serverless_settings_from_args(args).namespace == "ns1"
    assert serverless_settings_from_args(parse_args(["serverless", "status"])) == (
        ServerlessSettings()
    )


def test_a_bad_base_capacity_on_the_command_line_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["serverless", "create", "--source", "s3://b/p", "--base-capacity", "12"])
    assert exited.value.code == 2
    assert "argument --base-capacity: Value error, 12 RPUs is no base capacity" in (
        capsys.readouterr().err
    )


# --- the flows: the recording client for Redshift Serverless, moto for IAM and EC2 ---------


@pytest.fixture
def names(bucket_name: str) -> dict[str, str]:
    """Unique workgroup, role and secret names for one test."""
    return {
        "workgroup": unique("sparkify-sl"),
        "role_name": unique("sparkify-role"),
        "password_secret": unique("sparkify-sl-pw"),
        "source": f"s3://{bucket_name}/raw/sparkify",
    }


def settings_for(names: dict[str, str], **extra: Any) -> ServerlessSettings:
    """The test's workgroup: its unique names, owner ana, two hours to live, fast polling."""
    given = {k: v for k, v in names.items() if k != "source"}
    return ServerlessSettings(**given, owner="ana", ttl_hours=2, **FAST, **extra)


def create(names: dict[str, str], credentials_block: str, **extra: Any) -> dict[str, Any]:
    """Run the Serverless create flow for the test's names."""
    return serverless_create(names["source"], settings_for(names, **extra), credentials_block)


def test_create_makes_the_role_namespace_workgroup_and_an_iam_block(
    fake: FakeServerless,
    aws_credentials,
    credentials_block: str,
    names: dict[str, str],
    bucket_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = datetime.now(UTC)
    result = create(names, credentials_block)
    workgroup = names["workgroup"]

    iam = aws_client(aws_credentials, "iam")
    role = iam.get_role(RoleName=names["role_name"])["Role"]
    assert role["AssumeRolePolicyDocument"] == trust_policy()
    assert trust_policy()["Statement"][0]["Principal"]["Service"] == list(REDSHIFT_SERVICES)
    policy = iam.get_role_policy(
        RoleName=names["role_name"], PolicyName=source_policy_name(("namespace", workgroup))
    )
    assert policy["PolicyDocument"] == s3_read_policy(bucket_name, "raw/sparkify")

    ((_, namespace_call),) = fake.called("CreateNamespace")
    password = Secret.load(names["password_secret"]).get()
    assert namespace_call["adminUserPassword"] == password
    assert namespace_call["iamRoles"] == [role["Arn"]] == [namespace_call["defaultIamRoleArn"]]
    ((_, workgroup_call),) = fake.called("CreateWorkgroup")
    assert workgroup_call["baseCapacity"] == 4
    assert workgroup_call["publiclyAccessible"] is False
    assert "securityGroupIds" not in workgroup_call
    for call in (namespace_call, workgroup_call):
        tags = tag_map(call["tags"])
        assert (tags["project"], tags["owner"]) == ("sparkify-etl", "ana")
        expires = datetime.fromisoformat(tags["expires-at"].replace("Z", "+00:00"))
        assert before + timedelta(hours=2) - timedelta(seconds=1) <= expires
        assert expires <= datetime.now(UTC) + timedelta(hours=2)
    # The namespace first, then the workgroup, waited for until AVAILABLE.
    operations = fake.operations()
    assert operations.index("CreateNamespace") < operations.index("CreateWorkgroup")
    looks = [c for c in fake.called("GetWorkgroup") if c[1]["workgroupName"] == workgroup]
    assert len(looks) > fake.LOOKS
    assert fake.workgroups[workgroup]["status"] == "AVAILABLE"

    block = RedshiftWarehouse.load(workgroup)
    host = f"{workgroup}.{ACCOUNT}.us-east-1.redshift-serverless.amazonaws.com"
    assert (block.host, block.port, block.database) == (host, 5439, "dev")
    assert (block.sign_in, block.workgroup, block.cluster_identifier) == ("iam", workgroup, None)
    assert block.password is None
    assert block.user is None
    assert block.iam_role_arn == role["Arn"]
    assert block.region == "us-east-1"
    assert result == {
        "workgroup": workgroup,
        "namespace": workgroup,
        "endpoint": f"{host}:5439",
        "warehouse": f"sparkify-redshift-warehouse/{workgroup}",
        "iam_role_arn": role["Arn"],
        "base_capacity_rpus": 4,
        "expires_at": tag_map(workgroup_call["tags"])["expires-at"],
        "cost": describe_serverless_cost(4, "us-east-1"),
    }
    assert "generated an admin password" in caplog.text
    assert password not in caplog.text
    assert "waiting for workgroup" in caplog.text


def test_password_sign_in_keeps_the_admin_password_in_the_block(
    fake: FakeServerless, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block, password_sign_in=True)
    block = RedshiftWarehouse.load(names["workgroup"])
    assert (block.sign_in, block.user, block.workgroup) == ("password", "sparkify", None)
    password = Secret.load(names["password_secret"]).get()
    assert block.password.get_secret_value() == password


def test_create_again_reuses_them_and_adds_the_ingress_one_change_at_a_time(
    fake: FakeServerless, aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    workgroup = names["workgroup"]
    password = Secret.load(names["password_secret"]).get()
    fake.calls.clear()

    create(names, credentials_block, ingress_cidr="203.0.113.9/24", base_capacity=8)

    assert fake.called("CreateNamespace", "CreateWorkgroup") == []
    updates = [params for _, params in fake.called("UpdateWorkgroup")]
    ec2 = aws_client(aws_credentials, "ec2")
    (group,) = find_security_groups(ec2, workgroup)
    assert updates == [
        {"workgroupName": workgroup, "securityGroupIds": ["sg-default", group["GroupId"]]},
        {"workgroupName": workgroup, "publiclyAccessible": True},
    ]
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
        for p in group["IpPermissions"]
    ] == [("tcp", 5439, 5439, ["203.0.113.0/24"])]
    # The base capacity of a reused workgroup is left as it is; the password too.
    assert fake.workgroups[workgroup]["baseCapacity"] == 4
    assert Secret.load(names["password_secret"]).get() == password
    assert fake.called("UpdateNamespace") == []


def test_a_reused_namespace_gets_the_copy_role_it_lacks(
    fake: FakeServerless, credentials_block: str, names: dict[str, str]
) -> None:
    other = "arn:aws:iam::123456789012:role/someone-elses"
    namespace = create_namespace_arguments(settings_for(names), other, "Pw-123456789", NOW)
    fake.create_namespace(**namespace)
    Secret(value="Pw-123456789").save(names["password_secret"])
    fake.calls.clear()

    create(names, credentials_block)

    ((_, update),) = fake.called("UpdateNamespace")
    role = RedshiftWarehouse.load(names["workgroup"]).iam_role_arn
    assert update == {
        "namespaceName": names["workgroup"],
        "iamRoles": [other, role],
        "defaultIamRoleArn": role,
    }
    assert fake.called("CreateNamespace") == []


def test_status_reports_the_workgroup_and_its_namespace(
    fake: FakeServerless, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block)
    report = serverless_status(names["workgroup"], aws_credentials=credentials_block)
    assert (report["status"], report["namespace_status"]) == ("AVAILABLE", "AVAILABLE")
    assert report["base_capacity_rpus"] == 4
    assert report["cost_per_busy_hour_usd"] == 1.5
    assert report["owner"] == "ana"
    assert report["expired"] is False
    assert report["endpoint"].endswith(".redshift-serverless.amazonaws.com:5439")
    assert serverless_status(unique("absent"), aws_credentials=credentials_block) == {
        "status": "absent"
    }


def test_delete_removes_workgroup_then_namespace_group_and_block_and_succeeds_again(
    fake: FakeServerless, aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    create(names, credentials_block, ingress_cidr="203.0.113.9/32")
    workgroup = names["workgroup"]
    fake.calls.clear()

    deleted = serverless_delete(
        workgroup,
        final_snapshot="snap",
        block_name=workgroup,
        aws_credentials=credentials_block,
        **FAST,
    )

    assert deleted is True
    assert workgroup not in fake.workgroups
    assert workgroup not in fake.namespaces
    # The namespace's read of its source went with it.
    iam = aws_client(aws_credentials, "iam")
    assert iam.list_role_policies(RoleName=names["role_name"])["PolicyNames"] == []
    operations = fake.operations()
    assert operations.index("DeleteWorkgroup") < operations.index("DeleteNamespace")
    # The workgroup was polled until gone before the namespace's deletion was asked for (the
    # recording client, as AWS, refuses to delete a namespace that a workgroup uses).
    between = operations[operations.index("DeleteWorkgroup") : operations.index("DeleteNamespace")]
    assert "GetWorkgroup" in between
    ((_, delete),) = fake.called("DeleteNamespace")
    assert delete == {"namespaceName": workgroup, "finalSnapshotName": "snap"}
    assert find_security_groups(aws_client(aws_credentials, "ec2"), workgroup) == []
    with pytest.raises(ValueError, match="Unable to find block document"):
        RedshiftWarehouse.load(workgroup)

    again = serverless_delete(
        workgroup, block_name=workgroup, aws_credentials=credentials_block, **FAST
    )
    assert again is False


def test_a_source_without_a_bucket_fails_the_create_run_in_one_line(
    fake: FakeServerless, aws_credentials, credentials_block: str, names: dict[str, str]
) -> None:
    """A deployment or the UI hands the flow its source unchecked: the run refuses a malformed
    S3 URI before anything is made, with the line as the state's message."""
    line = "source s3:///raw: it names no bucket: give the source (--source) s3://bucket/prefix"
    settings = settings_for(names)

    state = serverless_create("s3:///raw", settings, credentials_block, return_state=True)

    assert_failed_in_one_line(state, line)
    with pytest.raises(BadSource, match="it names no bucket"):  # a caller still gets the error
        serverless_create("s3:///raw", settings, credentials_block)
    assert fake.calls == []
    with pytest.raises(ClientError, match="NoSuchEntity"):
        aws_client(aws_credentials, "iam").get_role(RoleName=names["role_name"])


# --- the janitor's Serverless half ----------------------------------------------------------


def make_serverless(fake: FakeServerless, name: str, tags: list[dict[str, str]]) -> None:
    """A namespace and a workgroup made directly, as another tool or a person would."""
    fake.create_namespace(namespaceName=name, tags=tags)
    fake.create_workgroup(workgroupName=name, namespaceName=name, tags=tags)
    fake.pending.clear()
    fake.workgroups[name]["status"] = "AVAILABLE"


@pytest.fixture
def janitor_serverless(fake: FakeServerless) -> dict[str, str]:
    """An expired project workgroup and namespace, an unexpired pair, an untagged pair, another
    project's expired pair, and an expired namespace that an unexpired workgroup uses."""
    now = datetime.now(UTC)
    expired = serverless_tags("ana", now - timedelta(minutes=5))
    live = serverless_tags("ana", now + timedelta(hours=1))
    other = [{**t, "value": "other"} if t["key"] == "project" else t for t in expired]
    names = {role: unique(f"jan-{role}") for role in ("expired", "live", "untagged", "other")}
    make_serverless(fake, names["expired"], expired)
    make_serverless(fake, names["live"], live)
    make_serverless(fake, names["untagged"], [])
    make_serverless(fake, names["other"], other)
    names["shared"] = unique("jan-shared")
    fake.create_namespace(namespaceName=names["shared"], tags=expired)
    fake.create_workgroup(workgroupName=names["shared"], namespaceName=names["shared"], tags=live)
    fake.calls.clear()
    return names


def test_the_janitor_deletes_only_expired_project_workgroups_and_free_namespaces(
    fake: FakeServerless,
    aws_credentials,
    credentials_block: str,
    janitor_serverless: dict[str, str],
) -> None:
    names = janitor_serverless
    RedshiftWarehouse(
        host=f"{names['expired']}.{ACCOUNT}.us-east-1.redshift-serverless.amazonaws.com",
        sign_in="iam",
        workgroup=names["expired"],
        iam_role_arn=ROLE,
    ).save(names["expired"], overwrite=True)
    fake.workgroups[names["expired"]]["endpoint"] = {
        "address": f"{names['expired']}.{ACCOUNT}.us-east-1.redshift-serverless.amazonaws.com",
        "port": 5439,
    }

    deleted = cluster_janitor(credentials_block, **FAST)  # clusters on moto, Serverless here

    assert f"workgroup/{names['expired']}" in deleted
    assert f"namespace/{names['expired']}" in deleted
    assert names["expired"] not in fake.workgroups
    assert names["expired"] not in fake.namespaces
    for role in ("live", "untagged", "other"):
        assert names[role] in fake.workgroups
        assert names[role] in fake.namespaces
        assert not any(names[role] in item for item in deleted)
    # An expired namespace stays while a live workgroup uses it.
    assert names["shared"] in fake.namespaces
    assert f"namespace/{names['shared']}" not in deleted
    with pytest.raises(ValueError, match="Unable to find block document"):
        RedshiftWarehouse.load(names["expired"])


def test_the_janitor_dry_run_deletes_no_workgroup(
    fake: FakeServerless, credentials_block: str, janitor_serverless: dict[str, str]
) -> None:
    listed = cluster_janitor(credentials_block, dry_run=True, **FAST)
    names = janitor_serverless
    serverless = [item for item in listed if item.startswith(("workgroup/", "namespace/"))]
    assert serverless == [f"workgroup/{names['expired']}", f"namespace/{names['expired']}"]
    assert fake.called("DeleteWorkgroup", "DeleteNamespace") == []


@pytest.mark.parametrize("failing", ["sweep_expired_clusters", "sweep_expired_serverless"])
def test_a_failing_half_of_the_janitor_does_not_spare_the_other(
    failing: str, monkeypatch: pytest.MonkeyPatch, credentials_block: str
) -> None:
    """Without the permission to list one kind (say Serverless), the janitor still sweeps the
    other, then fails saying why."""
    swept: list[str] = []
    halves = ("sweep_expired_clusters", "sweep_expired_serverless")

    def denied(*args: Any, **options: Any) -> list[str]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "List")

    for half in halves:
        sweep = denied if half == failing else lambda *a, half=half, **k: swept.append(half) or []
        monkeypatch.setattr(janitor_module, half, sweep)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        cluster_janitor(credentials_block, **FAST)
    assert swept == [
        h for h in ("sweep_expired_clusters", "sweep_expired_serverless") if h != failing
    ]


def test_a_users_mistake_in_the_janitor_fails_its_run_in_one_line(
    monkeypatch: pytest.MonkeyPatch, credentials_block: str
) -> None:
    """A half that ends in a user's mistake: the other half still sweeps, and the run ends
    Failed with the mistake's line as its state's message."""
    swept: list[str] = []
    line = "the janitor was given something wrong: give it something right"

    def mistaken(*args: Any, **options: Any) -> list[str]:
        raise BadArgument(line)

    monkeypatch.setattr(janitor_module, "sweep_expired_clusters", mistaken)
    monkeypatch.setattr(
        janitor_module, "sweep_expired_serverless", lambda *a, **k: swept.append("serverless") or []
    )
    state = cluster_janitor(credentials_block, **FAST, return_state=True)

    assert_failed_in_one_line(state, line)
    assert swept == ["serverless"]


def test_the_command_line_creates_reports_and_deletes(
    fake: FakeServerless,
    credentials_block: str,
    names: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python flows/cluster.py serverless create|status|delete`, run in this process (where the
    recording client stands in for Redshift Serverless)."""
    workgroup = names["workgroup"]
    common = ["--workgroup", workgroup, "--aws-credentials", credentials_block]
    waits = ["--poll-seconds", "0.05", "--timeout-minutes", "1"]
    create = ["--source", names["source"], "--role-name", names["role_name"], "--owner", "ana"]
    create += ["--password-secret", names["password_secret"], "--base-capacity", "8"]

    assert cluster_main(["serverless", "create", *common, *waits, *create]) == 0
    out = capsys.readouterr().out
    assert f"sparkify-redshift-warehouse/{workgroup}" in out
    assert "$3.00/hour" in out
    assert fake.workgroups[workgroup]["baseCapacity"] == 8

    assert cluster_main(["serverless", "status", *common]) == 0
    out = capsys.readouterr().out
    assert "AVAILABLE" in out
    assert "redshift-serverless.amazonaws.com:5439" in out

    assert cluster_main(["serverless", "delete", *common, *waits, "--final-snapshot"]) == 0
    out = capsys.readouterr().out
    assert f"deleted         {workgroup}" in out
    assert f"{workgroup}-final-" in out
    assert workgroup not in fake.workgroups
    assert workgroup not in fake.namespaces
    ((_, delete),) = fake.called("DeleteNamespace")
    assert delete["finalSnapshotName"].startswith(f"{workgroup}-final-")
    with pytest.raises(ValueError, match="Unable to find block document"):
        RedshiftWarehouse.load(workgroup)
