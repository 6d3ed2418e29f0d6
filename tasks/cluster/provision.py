"""A whole cluster made and unmade: the steps that the cluster flows and the ephemeral ETL share,
as plain functions that call the tasks (flows never import flows)."""

from __future__ import annotations

from typing import Any

from tasks.aws import aws_region, load_credentials
from tasks.cluster.blocks import delete_warehouse_block, save_warehouse_block
from tasks.cluster.cost import describe_cost
from tasks.cluster.iam import ensure_redshift_role, source_location
from tasks.cluster.lifecycle import (
    delete_cluster,
    ensure_cluster,
    wait_until_available,
    wait_until_deleted,
)
from tasks.cluster.network import ensure_ingress
from tasks.cluster.settings import EXPIRES_TAG, POLL_SECONDS, TIMEOUT_MINUTES, ClusterSettings


def provision_cluster(
    source: str, settings: ClusterSettings, aws_credentials: str | None = None
) -> dict[str, Any]:
    """Create (or reuse) the COPY role reading `source`, the ingress and the cluster, wait until
    it is available, and save its warehouse block; returns the cluster's endpoint, block,
    role, expiry and estimated cost (never its password)."""
    credentials = load_credentials(aws_credentials)
    region = aws_region(credentials)
    bucket, prefix = source_location(source, aws_credentials)
    role_arn = ensure_redshift_role(
        credentials, settings.role_name, bucket, prefix, settings.owner_tag
    )
    security_group = ensure_ingress(credentials, settings.identifier, settings.ingress_cidr)
    ensure_cluster(credentials, settings, role_arn, security_group)
    info = wait_until_available(
        credentials, settings.identifier, settings.timeout_seconds, settings.poll_seconds
    )
    warehouse = save_warehouse_block(
        info,
        settings.warehouse_block,
        settings.password_secret,
        role_arn,
        region,
        credentials if aws_credentials else None,
    )
    return {
        "identifier": info.identifier,
        "endpoint": f"{info.host}:{info.port}",
        "warehouse": warehouse,
        "iam_role_arn": role_arn,
        "expires_at": info.tags.get(EXPIRES_TAG),
        "cost": describe_cost(settings.node_type, settings.number_of_nodes, region),
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
