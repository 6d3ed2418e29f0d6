"""The Redshift cluster's lifecycle as flows: create, status, pause, resume, delete; and Redshift
Serverless's (a namespace and a workgroup): create, status, delete.

python flows/cluster.py create --source s3://bucket/prefix [--identifier sparkify] [--ttl-hours 8]
python flows/cluster.py status|pause|resume [--identifier sparkify]
python flows/cluster.py delete [--identifier sparkify] [--final-snapshot [NAME]]
python flows/cluster.py serverless create --source s3://bucket/prefix [--base-capacity 4]
python flows/cluster.py serverless status|delete [--workgroup sparkify-serverless]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from tasks.cluster.info import serverless_report, status_report
from tasks.cluster.lifecycle import (
    describe_cluster,
    final_snapshot_name,
    pause_cluster,
    resume_cluster,
    wait_until_available,
)
from tasks.cluster.provision import (
    provision_cluster,
    provision_serverless,
    remove_cluster,
    remove_serverless,
)
from tasks.cluster.serverless import describe_serverless
from tasks.cluster.settings import (
    DEFAULT_IDENTIFIER,
    DEFAULT_WORKGROUP,
    POLL_SECONDS,
    TIMEOUT_MINUTES,
    ClusterSettings,
    ServerlessSettings,
    add_cluster_arguments,
    cluster_settings_from_args,
    serverless_settings_from_args,
)
from tasks.common.aws import aws_region, load_credentials
from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.run.report import format_table
from tasks.source.resolve import check_s3_source

DEFAULT_CLUSTER = ClusterSettings()
DEFAULT_SERVERLESS = ServerlessSettings()


@flow(name="sparkify-cluster-create")
@fails_in_one_line
def cluster_create(
    source: str, cluster: ClusterSettings = DEFAULT_CLUSTER, aws_credentials: str | None = None
) -> dict[str, Any]:
    """Create (or reuse) the COPY role and the cluster, wait until it is available, and save the
    Redshift warehouse block for its endpoint.

    Args:
        source: the s3:// prefix (or s3-bucket/BLOCK) the cluster's role may read
        cluster: how the cluster is made: identifier, node type and count, ingress, block name
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
    """
    return provision_cluster(source, cluster, aws_credentials)


@flow(name="sparkify-cluster-status")
@fails_in_one_line
def cluster_status(
    identifier: str = DEFAULT_IDENTIFIER, aws_credentials: str | None = None
) -> dict[str, Any]:
    """State, endpoint, age, expiry and estimated cost so far of the cluster.

    Args:
        identifier: the cluster's identifier
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
    """
    credentials = load_credentials(aws_credentials)
    info = describe_cluster(credentials, identifier)
    report = status_report(info, aws_region(credentials), datetime.now(UTC))
    get_run_logger().info("cluster %s: %s", identifier, json.dumps(report, default=str))
    return report


@flow(name="sparkify-cluster-pause")
@fails_in_one_line
def cluster_pause(
    identifier: str = DEFAULT_IDENTIFIER,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> str:
    """Pause the cluster: compute billing stops, storage is still billed.

    Args:
        identifier: the cluster's identifier
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        timeout_minutes: how long to wait for the cluster to get there
        poll_seconds: how often to look while waiting
    """
    credentials = load_credentials(aws_credentials)
    return pause_cluster(credentials, identifier, timeout_minutes * 60, poll_seconds)


@flow(name="sparkify-cluster-resume")
@fails_in_one_line
def cluster_resume(
    identifier: str = DEFAULT_IDENTIFIER,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> str:
    """Resume a paused cluster and wait until it is available again.

    Args:
        identifier: the cluster's identifier
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        timeout_minutes: how long to wait for the cluster to get there
        poll_seconds: how often to look while waiting
    """
    credentials = load_credentials(aws_credentials)
    resume_cluster(credentials, identifier)
    return wait_until_available(credentials, identifier, timeout_minutes * 60, poll_seconds).status


@flow(name="sparkify-cluster-delete")
@fails_in_one_line
def cluster_delete(
    identifier: str = DEFAULT_IDENTIFIER,
    final_snapshot: str | None = None,
    block_name: str | None = None,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> bool:
    """Delete the cluster (with a final snapshot if named), wait until it is gone, and remove
    its ingress group and its warehouse block; a cluster already gone is success. Returns
    whether there was a cluster to delete.

    Args:
        identifier: the cluster's identifier
        final_snapshot: the identifier of a snapshot to take before deleting; none when empty
        block_name: the Redshift warehouse block to remove with the cluster
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        timeout_minutes: how long to wait for the cluster to get there
        poll_seconds: how often to look while waiting
    """
    return remove_cluster(
        identifier,
        aws_credentials,
        final_snapshot=final_snapshot,
        block_name=block_name,
        timeout_minutes=timeout_minutes,
        poll_seconds=poll_seconds,
    )


@flow(name="sparkify-serverless-create")
@fails_in_one_line
def serverless_create(
    source: str,
    serverless: ServerlessSettings = DEFAULT_SERVERLESS,
    aws_credentials: str | None = None,
) -> dict[str, Any]:
    """Create (or reuse) the COPY role, the Redshift Serverless namespace and workgroup, wait
    until it is available, and save the Redshift warehouse block for its endpoint.

    Args:
        source: the s3:// prefix (or s3-bucket/BLOCK) the namespace's role may read
        serverless: how the namespace and workgroup are made: names, base capacity, ingress
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
    """
    return provision_serverless(source, serverless, aws_credentials)


@flow(name="sparkify-serverless-status")
@fails_in_one_line
def serverless_status(
    workgroup: str = DEFAULT_WORKGROUP,
    namespace: str | None = None,
    aws_credentials: str | None = None,
) -> dict[str, Any]:
    """States, endpoint, base capacity, age, expiry and estimated cost of the workgroup and its
    namespace.

    Args:
        workgroup: the Serverless workgroup's name
        namespace: its namespace's name (default: the workgroup's own)
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
    """
    credentials = load_credentials(aws_credentials)
    found, in_namespace = describe_serverless(credentials, workgroup, namespace)
    report = serverless_report(found, in_namespace, aws_region(credentials), datetime.now(UTC))
    get_run_logger().info("workgroup %s: %s", workgroup, json.dumps(report, default=str))
    return report


@flow(name="sparkify-serverless-delete")
@fails_in_one_line
def serverless_delete(
    workgroup: str = DEFAULT_WORKGROUP,
    namespace: str | None = None,
    final_snapshot: str | None = None,
    block_name: str | None = None,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> bool:
    """Delete the workgroup, wait until it is gone with its ingress group, then its namespace
    (with a final snapshot if named), and remove the warehouse block; what is already gone is
    success. Returns whether there was anything to delete.

    Args:
        workgroup: the Serverless workgroup's name
        namespace: its namespace's name (default: the workgroup's own)
        final_snapshot: the name of a snapshot of the namespace to take before deleting it
        block_name: the Redshift warehouse block to remove with them
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        timeout_minutes: how long to wait for each deletion to finish
        poll_seconds: how often to look while waiting
    """
    return remove_serverless(
        workgroup,
        aws_credentials,
        namespace=namespace,
        final_snapshot=final_snapshot,
        block_name=block_name,
        timeout_minutes=timeout_minutes,
        poll_seconds=poll_seconds,
    )


def add_serverless_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """`serverless create|status|delete`, with ServerlessSettings' options."""
    parser = commands.add_parser("serverless", help="Redshift Serverless: create, status, delete")
    steps = parser.add_subparsers(dest="serverless_command", required=True)
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    add_cluster_arguments(shared, ["workgroup"], ServerlessSettings)
    waits = argparse.ArgumentParser(add_help=False)
    add_cluster_arguments(waits, ["timeout_minutes", "poll_seconds"], ServerlessSettings)
    create = steps.add_parser("create", parents=[shared, waits], help="create or reuse")
    create.add_argument("--source", required=True, help="s3://bucket/prefix COPY may read")
    given = {"workgroup", "timeout_minutes", "poll_seconds"}
    rest = [f for f in ServerlessSettings.model_fields if f not in given]
    add_cluster_arguments(create, rest, ServerlessSettings)
    status = steps.add_parser("status", parents=[shared], help="states, endpoint, cost")
    add_cluster_arguments(status, ["namespace"], ServerlessSettings)
    delete = steps.add_parser("delete", parents=[shared, waits], help="delete, wait")
    delete.add_argument(
        "--final-snapshot",
        nargs="?",
        const="",
        help="keep a final snapshot of the namespace (NAME, or <namespace>-final-<time>)",
    )
    add_cluster_arguments(delete, ["namespace", "block_name"], ServerlessSettings)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python flows/cluster.py`."""
    parser = argparse.ArgumentParser(description="Sparkify's Redshift cluster lifecycle.")
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    add_cluster_arguments(common, ["identifier"])
    common.add_argument(
        "--aws-credentials", help="AwsCredentials block name (default: boto3's standard chain)"
    )
    add_debug_argument(common)
    waits = argparse.ArgumentParser(add_help=False)
    add_cluster_arguments(waits, ["timeout_minutes", "poll_seconds"])
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument(
        "--aws-credentials", help="AwsCredentials block name (default: boto3's standard chain)"
    )
    add_debug_argument(aws)
    add_serverless_parser(commands, aws)

    create = commands.add_parser("create", parents=[common, waits], help="create or reuse")
    create.add_argument("--source", required=True, help="s3://bucket/prefix COPY may read")
    shared = {"identifier", "timeout_minutes", "poll_seconds"}
    add_cluster_arguments(create, [f for f in ClusterSettings.model_fields if f not in shared])

    commands.add_parser("status", parents=[common], help="state, endpoint, age, cost")
    commands.add_parser("pause", parents=[common, waits], help="pause compute billing")
    commands.add_parser("resume", parents=[common, waits], help="resume a paused cluster")
    delete = commands.add_parser("delete", parents=[common, waits], help="delete, wait")
    delete.add_argument(
        "--final-snapshot",
        nargs="?",
        const="",
        help="keep a final snapshot (named NAME, or <identifier>-final-<time>)",
    )
    add_cluster_arguments(delete, ["block_name"])
    return parser.parse_args(argv)


def run_serverless(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Run the chosen Serverless flow; the workgroup's name and what the flow reports."""
    settings = serverless_settings_from_args(args)
    workgroup, step = settings.workgroup, args.serverless_command
    waits = {"timeout_minutes": settings.timeout_minutes, "poll_seconds": settings.poll_seconds}
    if step == "create":
        check_s3_source(args.source)
        return workgroup, serverless_create(args.source, settings, args.aws_credentials)
    if step == "status":
        return workgroup, serverless_status(workgroup, settings.namespace, args.aws_credentials)
    snapshot = args.final_snapshot
    if snapshot == "":
        snapshot = final_snapshot_name(settings.namespace_name, datetime.now(UTC))
    existed = serverless_delete(
        workgroup,
        settings.namespace,
        snapshot,
        settings.warehouse_block,
        args.aws_credentials,
        **waits,
    )
    return workgroup, {"deleted": workgroup if existed else None, "final_snapshot": snapshot}


@command("cluster")
def main(argv: list[str] | None = None) -> int:
    """Run the chosen lifecycle flow and print what it reports."""
    args = parse_args(argv)
    if args.command == "serverless":
        start_temporary_server()
        name, report = run_serverless(args)
        print()
        print(format_table(["", name], [[k, v] for k, v in report.items()]))
        return 0
    if args.command == "create":
        check_s3_source(args.source)
    cluster = cluster_settings_from_args(args)
    start_temporary_server()
    identifier = cluster.identifier
    waits = {"timeout_minutes": cluster.timeout_minutes, "poll_seconds": cluster.poll_seconds}
    if args.command == "create":
        result: Any = cluster_create(args.source, cluster, args.aws_credentials)
    elif args.command == "status":
        result = cluster_status(identifier, args.aws_credentials)
    elif args.command == "pause":
        result = {"status": cluster_pause(identifier, args.aws_credentials, **waits)}
    elif args.command == "resume":
        result = {"status": cluster_resume(identifier, args.aws_credentials, **waits)}
    else:
        snapshot = args.final_snapshot
        if snapshot == "":
            snapshot = final_snapshot_name(identifier, datetime.now(UTC))
        existed = cluster_delete(
            identifier, snapshot, cluster.warehouse_block, args.aws_credentials, **waits
        )
        result = {"deleted": identifier if existed else None, "final_snapshot": snapshot}
    print()
    print(format_table(["", identifier], [[k, v] for k, v in result.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
