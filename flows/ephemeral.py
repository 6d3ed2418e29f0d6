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

from flows.cluster import POLL_SECONDS, TIMEOUT_MINUTES, cluster_create, cluster_delete
from flows.etl import etl
from tasks.cluster import (
    DEFAULT_NODE_TYPE,
    DEFAULT_PASSWORD_SECRET,
    DEFAULT_ROLE_NAME,
    delete_cluster,
    delete_warehouse_block,
    load_credentials,
    run_logger,
    wait_until_deleted,
)

EPHEMERAL_TTL_HOURS = 3.0


def ephemeral_identifier(flow_run_id: UUID | str) -> str:
    """The cluster identifier (and warehouse block name) of one ephemeral run."""
    return f"sparkify-eph-{UUID(str(flow_run_id)).hex[:12]}"


def tear_down(flow: Any, flow_run: FlowRun, state: State) -> None:
    """State hook: delete the run's cluster and block when the run is cancelled or crashed."""
    identifier = ephemeral_identifier(flow_run.id)
    parameters = flow_run.parameters or {}
    credentials = load_credentials(parameters.get("aws_credentials"))
    run_logger().warning("run %s %s: deleting cluster %s", flow_run.id, state.name, identifier)
    delete_cluster.fn(credentials, identifier)
    wait_until_deleted.fn(
        credentials,
        identifier,
        parameters.get("timeout_minutes", TIMEOUT_MINUTES) * 60,
        parameters.get("poll_seconds", POLL_SECONDS),
    )
    delete_warehouse_block.fn(identifier)


@flow(name="sparkify-etl-ephemeral", on_cancellation=[tear_down], on_crashed=[tear_down])
def ephemeral_etl(
    source: str,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    node_type: str = DEFAULT_NODE_TYPE,
    number_of_nodes: int = 1,
    owner: str | None = None,
    ttl_hours: float = EPHEMERAL_TTL_HOURS,
    ingress_cidr: str | None = None,
    role_name: str = DEFAULT_ROLE_NAME,
    password_secret: str = DEFAULT_PASSWORD_SECRET,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> dict:
    """Create a cluster for this run, load [start_date, end_date] of the S3 source into it with
    the sparkify-etl flow, and delete the cluster and its block whatever the outcome."""
    identifier = ephemeral_identifier(runtime.flow_run.id)
    try:
        cluster = cluster_create(
            source=source, identifier=identifier, owner=owner, ttl_hours=ttl_hours,
            node_type=node_type, number_of_nodes=number_of_nodes, role_name=role_name,
            password_secret=password_secret, block_name=identifier,
            ingress_cidr=ingress_cidr, aws_credentials=aws_credentials,
            timeout_minutes=timeout_minutes, poll_seconds=poll_seconds,
        )  # fmt: skip
        return etl(source, cluster["warehouse"], start_date, end_date, aws_credentials)
    finally:
        cluster_delete(
            identifier, block_name=identifier, aws_credentials=aws_credentials,
            timeout_minutes=timeout_minutes, poll_seconds=poll_seconds,
        )  # fmt: skip
