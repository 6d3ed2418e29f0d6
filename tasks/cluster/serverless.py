"""Redshift Serverless's lifecycle beside the cluster's: a namespace (the database, its admin user
and the COPY role) and a workgroup (the compute, at a base capacity in RPUs, and the endpoint),
created or reused with the project's tags and expiry, described, waited for and deleted
(workgroup first, then namespace, which AWS refuses to delete while a workgroup uses it).

boto3 has no waiter for Redshift Serverless: the waits poll get_workgroup and get_namespace,
with progress through lifecycle.wait_for. UpdateWorkgroup takes one parameter per call and
leaves the workgroup MODIFYING, so a reused workgroup is changed one call at a time, waiting in
between. As in lifecycle.py, AWS calls retry throttling, never permission or validation errors;
nothing is cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.cluster.cost import describe_serverless_cost
from tasks.cluster.iam import revoke_source_read
from tasks.cluster.info import NamespaceInfo, WorkgroupInfo
from tasks.cluster.lifecycle import wait_for
from tasks.cluster.network import (
    delete_security_group,
    find_security_groups,
    security_group_name,
)
from tasks.cluster.password import load_or_create_password
from tasks.cluster.settings import (
    REDSHIFT_PORT,
    ServerlessSettings,
    format_expiry,
    serverless_tags,
)
from tasks.common.aws import aws_client, aws_region, error_code
from tasks.common.logs import run_logger
from tasks.common.retry import RETRY_TRANSIENT

SERVICE = "redshift-serverless"
NOT_FOUND = "ResourceNotFoundException"
AVAILABLE = "AVAILABLE"
DELETING = "DELETING"
# EC2 refuses to delete a security group that network interfaces still use; a deleted
# workgroup's interfaces can outlive it by a little while.
GROUP_IN_USE = "DependencyViolation"

Check = Callable[[], str | None]


# --- pure helpers -------------------------------------------------------------------------


def create_namespace_arguments(
    settings: ServerlessSettings, role_arn: str, password: str, now: datetime
) -> dict[str, Any]:
    """The keyword arguments of create_namespace (the password included: never log)."""
    return {
        "namespaceName": settings.namespace_name,
        "dbName": settings.database,
        "adminUsername": settings.admin_user,
        "adminUserPassword": password,
        "iamRoles": [role_arn],
        "defaultIamRoleArn": role_arn,
        "tags": serverless_tags(settings.owner_tag, now + settings.time_to_live),
    }


def create_workgroup_arguments(
    settings: ServerlessSettings, now: datetime, security_group_id: str | None
) -> dict[str, Any]:
    """The keyword arguments of create_workgroup: publicly accessible only with an ingress."""
    arguments: dict[str, Any] = {
        "workgroupName": settings.workgroup,
        "namespaceName": settings.namespace_name,
        "baseCapacity": settings.base_capacity,
        "port": REDSHIFT_PORT,
        "publiclyAccessible": settings.ingress_cidr is not None,
        "tags": serverless_tags(settings.owner_tag, now + settings.time_to_live),
    }
    if security_group_id:
        arguments["securityGroupIds"] = [security_group_id]
    return arguments


def workgroup_changes(
    existing: WorkgroupInfo, settings: ServerlessSettings, security_group_id: str | None
) -> list[dict[str, Any]]:
    """The update_workgroup calls (one parameter each) that give a reused workgroup the ingress
    it lacks. Its base capacity is left as it is, as a reused cluster keeps its nodes."""
    changes: list[dict[str, Any]] = []
    if security_group_id and security_group_id not in existing.security_groups:
        changes.append({"securityGroupIds": [*existing.security_groups, security_group_id]})
    if settings.ingress_cidr is not None and not existing.publicly_accessible:
        changes.append({"publiclyAccessible": True})
    return changes


# --- AWS access ---------------------------------------------------------------------------


def resource_tags(client: Any, arn: str) -> list[dict[str, str]]:
    """A namespace's or workgroup's tags (key/value)."""
    return client.list_tags_for_resource(resourceArn=arn)["tags"] if arn else []


def find_namespace(client: Any, name: str, with_tags: bool = True) -> NamespaceInfo | None:
    """The namespace (with its tags unless told not), or None when there is none by that name."""
    try:
        found = client.get_namespace(namespaceName=name)["namespace"]
    except ClientError as error:
        if error_code(error) == NOT_FOUND:
            return None
        raise
    tags = resource_tags(client, found["namespaceArn"]) if with_tags else []
    return NamespaceInfo.from_response(found, tags)


def find_workgroup(client: Any, name: str, with_tags: bool = True) -> WorkgroupInfo | None:
    """The workgroup (with its tags unless told not), or None when there is none by that name."""
    try:
        found = client.get_workgroup(workgroupName=name)["workgroup"]
    except ClientError as error:
        if error_code(error) == NOT_FOUND:
            return None
        raise
    tags = resource_tags(client, found["workgroupArn"]) if with_tags else []
    return WorkgroupInfo.from_response(found, tags)


def state_check(client: Any, kind: str, name: str, wanted: str | None) -> Check:
    """A probe of the namespace or workgroup (`kind`): done when its status is `wanted` (None:
    when it is gone), else its status. One gone while awaited is a ValueError."""
    find = find_namespace if kind == "namespace" else find_workgroup

    def check() -> str | None:
        found = find(client, name, with_tags=False)
        if found is None:
            if wanted is None:
                return None
            raise ValueError(f"{kind} {name} does not exist (awaited {wanted})")
        return None if found.status == wanted else found.status

    return check


def wait_for_state(
    client: Any, kind: str, name: str, wanted: str | None, timeout_s: float, delay_s: float
) -> float:
    """Poll the namespace or workgroup (`kind`) until its status is `wanted` (None: until it is
    gone), with progress; returns the seconds waited."""
    goal = "deleted" if wanted is None else wanted.lower()
    check = state_check(client, kind, name, wanted)
    return wait_for(check, name, goal, timeout_s, delay_s, kind=kind)


def group_removed_check(ec2: Any, workgroup: str) -> Check:
    """A probe that removes the workgroup's ingress group, done once EC2 lets it go."""

    def check() -> str | None:
        try:
            delete_security_group(ec2, workgroup)
        except ClientError as error:
            if error_code(error) != GROUP_IN_USE:
                raise
            return "in use"
        return None

    return check


# --- Prefect tasks ------------------------------------------------------------------------


@task(name="ensure-namespace", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def ensure_namespace(
    credentials: AwsCredentials, settings: ServerlessSettings, role_arn: str
) -> NamespaceInfo:
    """Create the namespace, or reuse the one of that name (attaching the COPY role it lacks);
    the admin password comes from the Secret block, generated there if absent."""
    logger = run_logger()
    name = settings.namespace_name
    client = aws_client(credentials, SERVICE)
    password, generated = load_or_create_password(settings.password_secret)
    if generated:
        logger.info("generated an admin password into Secret block %r", settings.password_secret)
    existing = find_namespace(client, name)
    if existing is None:
        now = datetime.now(UTC)
        arguments = create_namespace_arguments(settings, role_arn, password, now)
        created = client.create_namespace(**arguments)["namespace"]
        expires = format_expiry(now + settings.time_to_live)
        logger.info("creating namespace %s (expires %s)", name, expires)
        return NamespaceInfo.from_response(created, arguments["tags"])
    if existing.status == DELETING:
        raise ValueError(f"namespace {name} is being deleted: create it again once it is gone")
    logger.info("reusing namespace %s (%s)", name, existing.status)
    waits = settings.timeout_seconds, settings.poll_seconds
    # UpdateNamespace takes the roles with the default role, the admin user with its password,
    # and one such change at a time.
    changes: list[dict[str, Any]] = []
    if role_arn not in existing.iam_roles:
        changes.append({"iamRoles": [*existing.iam_roles, role_arn], "defaultIamRoleArn": role_arn})
    if generated:
        # The secret was lost or never made: the reused namespace takes the new password.
        admin = existing.admin_user or settings.admin_user
        changes.append({"adminUsername": admin, "adminUserPassword": password})
    for change in changes:
        wait_for_state(client, "namespace", name, AVAILABLE, *waits)
        client.update_namespace(namespaceName=name, **change)
        logger.info("namespace %s: updating %s", name, change.get("defaultIamRoleArn", "admin"))
    wait_for_state(client, "namespace", name, AVAILABLE, *waits)
    return find_namespace(client, name) or existing


@task(name="ensure-workgroup", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def ensure_workgroup(
    credentials: AwsCredentials, settings: ServerlessSettings, security_group_id: str | None
) -> WorkgroupInfo:
    """Create the workgroup in the namespace, or reuse the one of that name (giving it the
    ingress it lacks, one change at a time)."""
    logger = run_logger()
    name = settings.workgroup
    client = aws_client(credentials, SERVICE)
    logger.info(
        "estimated cost: %s",
        describe_serverless_cost(settings.base_capacity, aws_region(credentials)),
    )
    existing = find_workgroup(client, name)
    if existing is None:
        now = datetime.now(UTC)
        arguments = create_workgroup_arguments(settings, now, security_group_id)
        created = client.create_workgroup(**arguments)["workgroup"]
        expires = format_expiry(now + settings.time_to_live)
        logger.info(
            "creating workgroup %s, %d RPUs (expires %s)", name, settings.base_capacity, expires
        )
        return WorkgroupInfo.from_response(created, arguments["tags"])
    if existing.status == DELETING:
        raise ValueError(f"workgroup {name} is being deleted: create it again once it is gone")
    logger.info("reusing workgroup %s (%s)", name, existing.status)
    waits = settings.timeout_seconds, settings.poll_seconds
    if existing.base_capacity != settings.base_capacity:
        logger.warning(
            "workgroup %s has a base capacity of %d RPUs, not %d: left as it is",
            name,
            existing.base_capacity,
            settings.base_capacity,
        )
    for change in workgroup_changes(existing, settings, security_group_id):
        wait_for_state(client, "workgroup", name, AVAILABLE, *waits)
        client.update_workgroup(workgroupName=name, **change)
        logger.info("workgroup %s: updating %s", name, ", ".join(change))
    return find_workgroup(client, name) or existing


@task(name="wait-until-workgroup-available", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def wait_until_workgroup_available(
    credentials: AwsCredentials, name: str, timeout_s: float, delay_s: float
) -> WorkgroupInfo:
    """Poll the workgroup until it is AVAILABLE, logging progress, up to timeout_s."""
    client = aws_client(credentials, SERVICE)
    waited = wait_for_state(client, "workgroup", name, AVAILABLE, timeout_s, delay_s)
    info = find_workgroup(client, name)
    if info is None or not info.host:
        raise ValueError(f"workgroup {name} is available but has no endpoint")
    run_logger().info(
        "workgroup %s is available at %s:%s (%.0f s)", name, info.host, info.port, waited
    )
    return info


@task(name="describe-serverless", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def describe_serverless(
    credentials: AwsCredentials, workgroup: str, namespace: str | None = None
) -> tuple[WorkgroupInfo | None, NamespaceInfo | None]:
    """The workgroup and its namespace (the one named, else the workgroup's, else the one named
    like the workgroup); None for each that does not exist."""
    client = aws_client(credentials, SERVICE)
    found = find_workgroup(client, workgroup)
    namespace = namespace or (found.namespace if found else workgroup)
    return found, find_namespace(client, namespace)


@task(name="list-serverless", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def list_serverless(
    credentials: AwsCredentials,
) -> tuple[list[WorkgroupInfo], list[NamespaceInfo]]:
    """Every workgroup and namespace of the region, with their tags."""
    client = aws_client(credentials, SERVICE)
    workgroups = [
        WorkgroupInfo.from_response(w, resource_tags(client, w["workgroupArn"]))
        for page in client.get_paginator("list_workgroups").paginate()
        for w in page["workgroups"]
    ]
    namespaces = [
        NamespaceInfo.from_response(n, resource_tags(client, n["namespaceArn"]))
        for page in client.get_paginator("list_namespaces").paginate()
        for n in page["namespaces"]
    ]
    return workgroups, namespaces


@task(name="delete-workgroup", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def delete_workgroup(credentials: AwsCredentials, name: str) -> str | None:
    """Ask for the workgroup's deletion; returns its namespace's name, or None if the
    workgroup was already gone, which is success."""
    logger = run_logger()
    client = aws_client(credentials, SERVICE)
    info = find_workgroup(client, name)
    if info is None:
        logger.info("workgroup %s does not exist: nothing to delete", name)
        return None
    if info.status != DELETING:
        try:
            client.delete_workgroup(workgroupName=name)
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                return None
            raise
        logger.info("deleting workgroup %s", name)
    return info.namespace


@task(name="wait-until-workgroup-deleted", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def wait_until_workgroup_deleted(
    credentials: AwsCredentials, name: str, timeout_s: float, delay_s: float
) -> None:
    """Poll until the workgroup is gone, then remove its ingress security group, waiting while
    its network interfaces still hold it."""
    logger = run_logger()
    client = aws_client(credentials, SERVICE)
    wait_for_state(client, "workgroup", name, None, timeout_s, delay_s)
    ec2 = aws_client(credentials, "ec2")
    if find_security_groups(ec2, name):
        group = security_group_name(name)
        removed = group_removed_check(ec2, name)
        wait_for(removed, group, "removed", timeout_s, delay_s, kind="security group")
        logger.info("removed security group %s", group)
    logger.info("workgroup %s is deleted", name)


@task(name="delete-namespace", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def delete_namespace(
    credentials: AwsCredentials, name: str, final_snapshot: str | None = None
) -> bool:
    """Ask for the namespace's deletion (with a final snapshot if named), once its workgroups
    are gone; False if it was already gone, which is success."""
    logger = run_logger()
    client = aws_client(credentials, SERVICE)
    info = find_namespace(client, name)
    if info is None:
        logger.info("namespace %s does not exist: nothing to delete", name)
        return False
    # Its read of the source goes first: the role may serve others, this one is going.
    revoke_source_read(credentials, info.iam_roles, ("namespace", name))
    if info.status == DELETING:
        return True
    snapshot = {"finalSnapshotName": final_snapshot} if final_snapshot else {}
    try:
        client.delete_namespace(namespaceName=name, **snapshot)
    except ClientError as error:
        if error_code(error) == NOT_FOUND:
            return False
        raise
    logger.info(
        "deleting namespace %s (%s)",
        name,
        f"final snapshot {final_snapshot}" if final_snapshot else "no final snapshot",
    )
    return True


@task(name="wait-until-namespace-deleted", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def wait_until_namespace_deleted(
    credentials: AwsCredentials, name: str, timeout_s: float, delay_s: float
) -> None:
    """Poll until the namespace is gone."""
    client = aws_client(credentials, SERVICE)
    wait_for_state(client, "namespace", name, None, timeout_s, delay_s)
    run_logger().info("namespace %s is deleted", name)
