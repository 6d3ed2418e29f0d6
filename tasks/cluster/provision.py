"""A whole cluster, or Serverless namespace and workgroup, made and unmade: the steps that the
cluster flows, the ephemeral ETL and the janitor share, as plain functions that call the tasks
(flows never import flows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect_aws import AwsCredentials

from tasks.cluster.blocks import (
    BlockAccess,
    delete_warehouse_block,
    forget_warehouse_block,
    save_serverless_block,
    save_warehouse_block,
)
from tasks.cluster.cost import describe_cost, describe_serverless_cost
from tasks.cluster.iam import ensure_redshift_role, source_location
from tasks.cluster.info import expired_serverless
from tasks.cluster.lifecycle import (
    delete_cluster,
    ensure_cluster,
    final_snapshot_name,
    wait_until_available,
    wait_until_deleted,
)
from tasks.cluster.network import ensure_ingress
from tasks.cluster.serverless import (
    delete_namespace,
    delete_workgroup,
    ensure_namespace,
    ensure_workgroup,
    list_serverless,
    wait_until_namespace_deleted,
    wait_until_workgroup_available,
    wait_until_workgroup_deleted,
)
from tasks.cluster.settings import (
    EXPIRES_TAG,
    POLL_SECONDS,
    TIMEOUT_MINUTES,
    ClusterSettings,
    RedshiftSettings,
    ServerlessSettings,
)
from tasks.common.aws import aws_region, load_credentials
from tasks.common.logs import run_logger


@dataclass(frozen=True)
class Groundwork:
    """What a cluster or a workgroup stands on: the AWS access, its ingress group (None: none is
    open), and how its warehouse block is saved, with the COPY role reading the source."""

    credentials: AwsCredentials
    security_group: str | None
    access: BlockAccess


def lay_groundwork(
    source: str, settings: RedshiftSettings, aws_credentials: str | None
) -> Groundwork:
    """Load the credentials, create (or reuse) the COPY role reading `source` and the ingress of
    the cluster or workgroup the settings name."""
    credentials = load_credentials(aws_credentials)
    region = aws_region(credentials)
    role_arn = ensure_redshift_role(
        credentials,
        settings.role_name,
        settings.role_holder,
        source_location(source, aws_credentials),
        settings.owner_tag,
    )
    security_group = ensure_ingress(credentials, settings.name, settings.ingress_cidr)
    access = BlockAccess(
        settings.warehouse_block,
        settings.password_secret,
        role_arn,
        region,
        credentials if aws_credentials else None,
        password_sign_in=settings.password_sign_in,
    )
    return Groundwork(credentials, security_group, access)


def provision_cluster(
    source: str, settings: ClusterSettings, aws_credentials: str | None = None
) -> dict[str, Any]:
    """Create (or reuse) the COPY role reading `source`, the ingress and the cluster, wait until
    it is available, and save its warehouse block; returns the cluster's endpoint, block,
    role, expiry and estimated cost (never its password)."""
    ground = lay_groundwork(source, settings, aws_credentials)
    ensure_cluster(ground.credentials, settings, ground.access.role_arn, ground.security_group)
    info = wait_until_available(
        ground.credentials, settings.identifier, settings.timeout_seconds, settings.poll_seconds
    )
    warehouse = save_warehouse_block(info, ground.access)
    return {
        "identifier": info.identifier,
        "endpoint": f"{info.host}:{info.port}",
        "warehouse": warehouse,
        "iam_role_arn": ground.access.role_arn,
        "expires_at": info.tags.get(EXPIRES_TAG),
        "cost": describe_cost(settings.node_type, settings.number_of_nodes, ground.access.region),
    }


def remove_cluster(
    identifier: str,
    aws_credentials: str | None = None,
    *,
    final_snapshot: str | None = None,
    block_name: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> bool:
    """Delete the cluster (with a final snapshot if named), wait until it is gone with its
    ingress group, and remove the warehouse block `block_name` if named; a cluster already
    gone is success. Returns whether there was a cluster to delete."""
    credentials = load_credentials(aws_credentials)
    existed = delete_cluster(credentials, identifier, final_snapshot)
    wait_until_deleted(credentials, identifier, timeout_minutes * 60, poll_seconds)
    if block_name:
        delete_warehouse_block(block_name)
    return existed


def provision_serverless(
    source: str, settings: ServerlessSettings, aws_credentials: str | None = None
) -> dict[str, Any]:
    """Create (or reuse) the COPY role reading `source`, the ingress, the namespace and the
    workgroup, wait until it is available, and save its warehouse block; returns the endpoint,
    block, role, expiry and estimated cost (never a password)."""
    ground = lay_groundwork(source, settings, aws_credentials)
    namespace = ensure_namespace(ground.credentials, settings, ground.access.role_arn)
    ensure_workgroup(ground.credentials, settings, ground.security_group)
    workgroup = wait_until_workgroup_available(
        ground.credentials, settings.workgroup, settings.timeout_seconds, settings.poll_seconds
    )
    warehouse = save_serverless_block(workgroup, namespace, ground.access)
    return {
        "workgroup": workgroup.name,
        "namespace": namespace.name,
        "endpoint": f"{workgroup.host}:{workgroup.port}",
        "warehouse": warehouse,
        "iam_role_arn": ground.access.role_arn,
        "base_capacity_rpus": workgroup.base_capacity,
        "expires_at": workgroup.tags.get(EXPIRES_TAG),
        "cost": describe_serverless_cost(workgroup.base_capacity, ground.access.region),
    }


def remove_serverless(
    workgroup: str,
    aws_credentials: str | None = None,
    *,
    namespace: str | None = None,
    final_snapshot: str | None = None,
    block_name: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> bool:
    """Delete the workgroup, wait until it is gone with its ingress group, then its namespace
    (`namespace`, else the workgroup's, else the one named like it; with a final snapshot if
    named), and remove the warehouse block `block_name` if named; what is already gone is
    success. Returns whether there was anything to delete."""
    credentials = load_credentials(aws_credentials)
    timeout_s = timeout_minutes * 60
    in_namespace = delete_workgroup(credentials, workgroup)
    wait_until_workgroup_deleted(credentials, workgroup, timeout_s, poll_seconds)
    namespace = namespace or in_namespace or workgroup
    existed = delete_namespace(credentials, namespace, final_snapshot)
    wait_until_namespace_deleted(credentials, namespace, timeout_s, poll_seconds)
    if block_name:
        delete_warehouse_block(block_name)
    return existed or in_namespace is not None


@dataclass(frozen=True)
class SweepOptions:
    """How the janitor sweeps: dry_run only lists what has expired, final_snapshots keeps a
    snapshot of each cluster or namespace it deletes, and it waits for each deletion up to
    timeout_s, looking every poll_seconds."""

    dry_run: bool = False
    final_snapshots: bool = False
    timeout_s: float = TIMEOUT_MINUTES * 60
    poll_seconds: float = POLL_SECONDS


def sweep_expired_serverless(
    credentials: AwsCredentials, now: datetime, options: SweepOptions
) -> list[str]:
    """The janitor's Serverless half: delete every workgroup the project tagged whose expiry has
    passed (and its warehouse block, when it points at its endpoint), then every such namespace
    that no other workgroup uses. Returns `workgroup/NAME` and `namespace/NAME` of what it
    deleted (with dry_run, of what it would delete)."""
    logger = run_logger()
    workgroups, namespaces = list_serverless(credentials)
    expired = expired_serverless(workgroups, now)
    going = {w.name for w in expired}
    used = {w.namespace for w in workgroups if w.name not in going and w.status != "DELETING"}
    doomed = []
    for namespace in expired_serverless(namespaces, now):
        if namespace.name in used:
            logger.warning(
                "namespace %s expired, but a live workgroup uses it: kept", namespace.name
            )
        else:
            doomed.append(namespace)
    names = [f"workgroup/{w.name}" for w in expired] + [f"namespace/{n.name}" for n in doomed]
    for name in names:
        logger.info("%s expired", name)
    if options.dry_run:
        return names
    for workgroup in expired:
        delete_workgroup(credentials, workgroup.name)
    # A namespace goes once all its workgroups are gone, those already being deleted too.
    in_doomed = {n.name for n in doomed}
    leaving = [w for w in workgroups if w.name in going or w.namespace in in_doomed]
    for workgroup in leaving:
        wait_until_workgroup_deleted(
            credentials, workgroup.name, options.timeout_s, options.poll_seconds
        )
        forget_warehouse_block(workgroup)
    for namespace in doomed:
        snapshot = final_snapshot_name(namespace.name, now) if options.final_snapshots else None
        delete_namespace(credentials, namespace.name, snapshot)
    for namespace in doomed:
        wait_until_namespace_deleted(
            credentials, namespace.name, options.timeout_s, options.poll_seconds
        )
    return names
