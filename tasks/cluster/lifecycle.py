"""The Redshift cluster's lifecycle: create (or reuse), describe, wait, pause, resume, delete.

AWS calls retry throttling and clusters in a changing state, never permission or validation
errors; their inputs are blocks and their point is a side effect, so nothing is cached.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.cluster.cost import describe_cost
from tasks.cluster.iam import revoke_source_read
from tasks.cluster.info import ClusterInfo
from tasks.cluster.network import delete_security_group, security_group_name
from tasks.cluster.password import load_or_create_password
from tasks.cluster.settings import (
    REDSHIFT_PORT,
    ClusterSettings,
    cluster_tags,
    format_expiry,
)
from tasks.common.aws import aws_client, aws_region, error_code
from tasks.common.errors import UserError
from tasks.common.logs import run_logger
from tasks.common.progress import Progress
from tasks.common.retry import RETRY_TRANSIENT


class ClusterWaitTimeout(Exception):
    """A cluster did not reach the awaited state in time (not retried: the deadline is spent)."""


class ClusterNotFound(UserError, ValueError):
    """A cluster to pause or resume that does not exist: a user's mistake, never retried."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        super().__init__(
            f"cluster {identifier} does not exist: give the identifier (--identifier) of an "
            "existing cluster, "
            "or create it first with python flows/cluster.py create"
        )


# --- pure helpers -------------------------------------------------------------------------


def final_snapshot_name(identifier: str, now: datetime) -> str:
    """A snapshot identifier for a cluster's final snapshot."""
    return f"{identifier}-final-{now.astimezone(UTC):%Y%m%d%H%M%S}"


def create_cluster_arguments(
    settings: ClusterSettings,
    role_arn: str,
    password: str,
    now: datetime,
    security_group_id: str | None,
) -> dict[str, Any]:
    """The keyword arguments of redshift.create_cluster (the password included: never log)."""
    multi_node = settings.number_of_nodes > 1
    arguments: dict[str, Any] = {
        "ClusterIdentifier": settings.identifier,
        "NodeType": settings.node_type,
        "ClusterType": "multi-node" if multi_node else "single-node",
        "DBName": settings.database,
        "MasterUsername": settings.master_user,
        "MasterUserPassword": password,
        "Port": REDSHIFT_PORT,
        "IamRoles": [role_arn],
        "PubliclyAccessible": settings.ingress_cidr is not None,
        "Encrypted": True,
        "Tags": cluster_tags(settings.owner_tag, now + settings.time_to_live),
    }
    if multi_node:
        arguments["NumberOfNodes"] = settings.number_of_nodes
    if security_group_id:
        arguments["VpcSecurityGroupIds"] = [security_group_id]
    return arguments


def poll_until(
    check: Callable[[], str | None],
    timeout_s: float,
    delay_s: float,
    report: Callable[[str, float], None],
    sleep: Callable[[float], None] = clock.sleep,
    monotonic: Callable[[], float] = clock.monotonic,
) -> float:
    """Call check until it returns None (done), reporting the state it returns in between;
    ClusterWaitTimeout after timeout_s. Returns the seconds waited."""
    started = monotonic()
    while True:
        state = check()
        waited = monotonic() - started
        if state is None:
            return waited
        if waited + delay_s > timeout_s:
            raise ClusterWaitTimeout(f"still {state} after {waited:.0f} s (timeout {timeout_s} s)")
        report(state, waited)
        sleep(delay_s)


# --- AWS access ---------------------------------------------------------------------------


def find_cluster(redshift: Any, identifier: str) -> ClusterInfo | None:
    """The cluster, or None when there is none by that name."""
    try:
        clusters = redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"]
    except ClientError as error:
        if error_code(error) == "ClusterNotFound":
            return None
        raise
    return ClusterInfo.from_response(clusters[0]) if clusters else None


def require_cluster(redshift: Any, identifier: str) -> ClusterInfo:
    """The cluster's description; ClusterNotFound when it does not exist."""
    info = find_cluster(redshift, identifier)
    if info is None:
        raise ClusterNotFound(identifier)
    return info


def waiter_check(redshift: Any, waiter_name: str, identifier: str) -> Callable[[], str | None]:
    """One probe of a boto3 waiter: None when its success state is reached, else the state."""
    waiter = redshift.get_waiter(waiter_name)

    def check() -> str | None:
        try:
            waiter.wait(ClusterIdentifier=identifier, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
        except WaiterError as error:
            if "Max attempts exceeded" not in str(error):
                raise
            clusters = (error.last_response or {}).get("Clusters") or [{}]
            return clusters[0].get("ClusterStatus", "not found yet")
        return None

    return check


def status_check(redshift: Any, identifier: str, wanted: str) -> Callable[[], str | None]:
    """A probe that is done when the cluster's status is `wanted` (no boto3 waiter exists)."""

    def check() -> str | None:
        info = require_cluster(redshift, identifier)
        return None if info.status == wanted else info.status

    return check


def wait_for(
    check: Callable[[], str | None],
    identifier: str,
    goal: str,
    timeout_s: float,
    delay_s: float,
    kind: str = "cluster",
) -> float:
    """Poll a cluster probe (or a Serverless workgroup's or namespace's, named by `kind`) until
    done, reporting the state and the time waited (in the log, and in a progress artifact
    inside a run)."""
    title = f"waiting for {kind} {identifier} to be {goal}"
    with Progress.wait(title, timeout_s) as progress:
        return poll_until(check, timeout_s, delay_s, lambda state, _: progress.status(state))


# --- Prefect tasks ------------------------------------------------------------------------


@task(name="ensure-cluster", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def ensure_cluster(
    credentials: AwsCredentials,
    settings: ClusterSettings,
    role_arn: str,
    security_group_id: str | None,
) -> ClusterInfo:
    """Create the cluster, or reuse the one of that name (attaching the role and ingress group
    it lacks); the master password comes from the Secret block, generated there if absent."""
    logger = run_logger()
    identifier = settings.identifier
    redshift = aws_client(credentials, "redshift")
    password, generated = load_or_create_password(settings.password_secret)
    if generated:
        logger.info("generated a master password into Secret block %r", settings.password_secret)
    logger.info(
        "estimated cost: %s",
        describe_cost(settings.node_type, settings.number_of_nodes, aws_region(credentials)),
    )
    existing = find_cluster(redshift, identifier)
    if existing is None:
        now = datetime.now(UTC)
        created = redshift.create_cluster(
            **create_cluster_arguments(settings, role_arn, password, now, security_group_id)
        )["Cluster"]
        expires = format_expiry(now + settings.time_to_live)
        logger.info("creating cluster %s (expires %s)", identifier, expires)
        return ClusterInfo.from_response(created)
    logger.info("reusing cluster %s (%s)", existing.identifier, existing.status)
    if role_arn not in existing.iam_roles:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=identifier, AddIamRoles=[role_arn])
    changes: dict[str, Any] = {}
    if security_group_id and security_group_id not in existing.security_groups:
        changes["VpcSecurityGroupIds"] = [*existing.security_groups, security_group_id]
    if generated:
        # The secret was lost or never made: the reused cluster takes the new password, so the
        # secret and the warehouse block are right again.
        changes["MasterUserPassword"] = password
    if changes:
        redshift.modify_cluster(ClusterIdentifier=identifier, **changes)
    return existing


@task(name="wait-until-available", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def wait_until_available(
    credentials: AwsCredentials, identifier: str, timeout_s: float, delay_s: float
) -> ClusterInfo:
    """Wait with boto3's cluster_available waiter, logging progress, up to timeout_s."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    waited = wait_for(
        waiter_check(redshift, "cluster_available", identifier),
        identifier,
        "available",
        timeout_s,
        delay_s,
    )
    info = require_cluster(redshift, identifier)
    logger.info(
        "cluster %s is available at %s:%s (%.0f s)", identifier, info.host, info.port, waited
    )
    return info


@task(name="describe-cluster", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def describe_cluster(credentials: AwsCredentials, identifier: str) -> ClusterInfo | None:
    """The cluster's description, or None if it does not exist."""
    return find_cluster(aws_client(credentials, "redshift"), identifier)


@task(name="list-clusters", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def list_clusters(credentials: AwsCredentials) -> list[ClusterInfo]:
    """Every cluster of the region."""
    paginator = aws_client(credentials, "redshift").get_paginator("describe_clusters")
    return [
        ClusterInfo.from_response(cluster)
        for page in paginator.paginate()
        for cluster in page["Clusters"]
    ]


@task(name="pause-cluster", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def pause_cluster(
    credentials: AwsCredentials, identifier: str, timeout_s: float, delay_s: float
) -> str:
    """Pause the cluster (compute billing stops) and wait until it is paused."""
    redshift = aws_client(credentials, "redshift")
    if require_cluster(redshift, identifier).status != "paused":
        redshift.pause_cluster(ClusterIdentifier=identifier)
    wait_for(status_check(redshift, identifier, "paused"), identifier, "paused", timeout_s, delay_s)
    run_logger().info("cluster %s is paused", identifier)
    return "paused"


@task(name="resume-cluster", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def resume_cluster(credentials: AwsCredentials, identifier: str) -> str:
    """Ask a paused cluster to resume; returns the status it had."""
    redshift = aws_client(credentials, "redshift")
    info = require_cluster(redshift, identifier)
    if info.status == "paused":
        redshift.resume_cluster(ClusterIdentifier=identifier)
        run_logger().info("resuming cluster %s", identifier)
    return info.status


@task(name="delete-cluster", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def delete_cluster(
    credentials: AwsCredentials, identifier: str, final_snapshot: str | None = None
) -> bool:
    """Ask for the cluster's deletion (with a final snapshot if named); False if it was
    already gone, which is success."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    info = find_cluster(redshift, identifier)
    if info is None:
        logger.info("cluster %s does not exist: nothing to delete", identifier)
        return False
    # Its read of the source goes first: the role may serve others, this one is going.
    revoke_source_read(credentials, info.iam_roles, ("cluster", identifier))
    if info.status == "deleting":
        return True
    snapshot = (
        {"SkipFinalClusterSnapshot": False, "FinalClusterSnapshotIdentifier": final_snapshot}
        if final_snapshot
        else {"SkipFinalClusterSnapshot": True}
    )
    try:
        redshift.delete_cluster(ClusterIdentifier=identifier, **snapshot)
    except ClientError as error:
        if error_code(error) == "ClusterNotFound":
            return False
        raise
    logger.info(
        "deleting cluster %s (%s)",
        identifier,
        f"final snapshot {final_snapshot}" if final_snapshot else "no final snapshot",
    )
    return True


@task(name="wait-until-deleted", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def wait_until_deleted(
    credentials: AwsCredentials, identifier: str, timeout_s: float, delay_s: float
) -> None:
    """Wait with boto3's cluster_deleted waiter, logging progress; then remove the cluster's
    ingress security group, which only a deleted cluster releases."""
    logger = run_logger()
    wait_for(
        waiter_check(aws_client(credentials, "redshift"), "cluster_deleted", identifier),
        identifier,
        "deleted",
        timeout_s,
        delay_s,
    )
    if delete_security_group(aws_client(credentials, "ec2"), identifier):
        logger.info("removed security group %s", security_group_name(identifier))
    logger.info("cluster %s is deleted", identifier)
