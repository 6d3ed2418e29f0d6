"""sparkify-etl-ephemeral: create a Redshift cluster, run the ETL on it, delete it.

The cluster is deleted however the run ends: `finally` covers success, failure and in-process
cancellation; the on_cancellation / on_crashed hooks cover a run whose process was killed. Its
identifier derives from the flow run's id, so a hook finds it from the run alone. As a last
resort the expiry tag (ttl_hours) lets the janitor delete it.

python flows/etl.py --source s3://bucket/prefix --ephemeral-cluster
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from prefect import flow, runtime
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from flows.etl import etl
from tasks.cluster.blocks import delete_warehouse_block
from tasks.cluster.lifecycle import delete_cluster, wait_until_deleted
from tasks.cluster.provision import provision_cluster, remove_cluster
from tasks.cluster.settings import EPHEMERAL_TTL_HOURS, ClusterSettings
from tasks.common.aws import load_credentials
from tasks.common.errors import fails_in_one_line
from tasks.common.logs import run_logger
from tasks.warehouse.redshift_data.spec import spec_of_cluster_block


def ephemeral_identifier(flow_run_id: UUID | str) -> str:
    """The cluster identifier (and warehouse block name) of one ephemeral run."""
    return f"sparkify-eph-{UUID(str(flow_run_id)).hex[:12]}"


def ephemeral_settings(cluster: ClusterSettings | None, flow_run_id: UUID | str) -> ClusterSettings:
    """The run's cluster: named after the run, its block too, expiring after
    EPHEMERAL_TTL_HOURS unless another ttl_hours is given."""
    cluster = cluster or ClusterSettings()
    identifier = ephemeral_identifier(flow_run_id)
    return cluster.model_copy(
        update={
            "identifier": identifier,
            "block_name": identifier,
            "ttl_hours": cluster.ttl_hours or EPHEMERAL_TTL_HOURS,
        }
    )


def tear_down(flow: Any, flow_run: FlowRun, state: State) -> None:
    """State hook: delete the run's cluster and block when the run is cancelled or crashed."""
    identifier = ephemeral_identifier(flow_run.id)
    parameters = flow_run.parameters or {}
    cluster = ClusterSettings.model_validate(parameters.get("cluster") or {})
    credentials = load_credentials(parameters.get("aws_credentials"))
    run_logger().warning("run %s %s: deleting cluster %s", flow_run.id, state.name, identifier)
    delete_cluster.fn(credentials, identifier)
    wait_until_deleted.fn(credentials, identifier, cluster.timeout_seconds, cluster.poll_seconds)
    delete_warehouse_block.fn(identifier)


@flow(name="sparkify-etl-ephemeral", on_cancellation=[tear_down], on_crashed=[tear_down])
@fails_in_one_line
def ephemeral_etl(
    source: str,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    cluster: ClusterSettings | None = None,
    data_api: bool = False,
) -> dict:
    """Create a cluster for this run, load [start_date, end_date] of the S3 source into it as
    the sparkify-etl flow does, and delete the cluster and its block whatever the outcome.

    Args:
        source: s3://bucket/prefix (or an s3-bucket block's name) holding log_data/ and
            song_data/: Redshift loads by COPY from S3
        start_date: the first day of events to load (inclusive); every day when empty
        end_date: the last day of events to load (inclusive); every day when empty
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        cluster: how the cluster is made (node type, nodes, ingress); its identifier and block
            name are the run's own
        data_api: load through the Redshift Data API (HTTPS) instead of a connection to the
            cluster's port, for a worker outside its network
    """
    settings = ephemeral_settings(cluster, runtime.flow_run.id)
    try:
        created = provision_cluster(source, settings, aws_credentials)
        warehouse = created["warehouse"]
        if data_api:
            warehouse = spec_of_cluster_block(warehouse, settings.identifier, aws_credentials)
        return etl(source, warehouse, start_date, end_date, aws_credentials)
    finally:
        remove_cluster(
            settings.identifier,
            aws_credentials,
            block_name=settings.warehouse_block,
            timeout_minutes=settings.timeout_minutes,
            poll_seconds=settings.poll_seconds,
        )
