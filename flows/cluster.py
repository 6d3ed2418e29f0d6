"""The Redshift cluster's lifecycle as flows: create, status, pause, resume, delete.

python flows/cluster.py create --source s3://bucket/prefix [--identifier sparkify] [--ttl-hours 8]
python flows/cluster.py status|pause|resume [--identifier sparkify]
python flows/cluster.py delete [--identifier sparkify] [--final-snapshot [NAME]]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from tasks.cluster import (
    DEFAULT_DATABASE,
    DEFAULT_IDENTIFIER,
    DEFAULT_MASTER_USER,
    DEFAULT_NODE_TYPE,
    DEFAULT_PASSWORD_SECRET,
    DEFAULT_ROLE_NAME,
    EXPIRES_TAG,
    ClusterSpec,
    aws_region,
    default_owner,
    delete_cluster,
    delete_warehouse_block,
    describe_cluster,
    describe_cost,
    ensure_cluster,
    ensure_ingress,
    ensure_redshift_role,
    final_snapshot_name,
    load_credentials,
    pause_cluster,
    resume_cluster,
    save_warehouse_block,
    source_location,
    status_report,
    wait_until_available,
    wait_until_deleted,
)
from tasks.report import format_table

POLL_SECONDS = 30.0
TIMEOUT_MINUTES = 30.0


@flow(name="sparkify-cluster-create")
def cluster_create(
    source: str,
    identifier: str = DEFAULT_IDENTIFIER,
    owner: str | None = None,
    ttl_hours: float = 8.0,
    node_type: str = DEFAULT_NODE_TYPE,
    number_of_nodes: int = 1,
    database: str = DEFAULT_DATABASE,
    master_user: str = DEFAULT_MASTER_USER,
    role_name: str = DEFAULT_ROLE_NAME,
    password_secret: str = DEFAULT_PASSWORD_SECRET,
    block_name: str | None = None,
    ingress_cidr: str | None = None,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Create (or reuse) the COPY role and the cluster, wait until it is available, and save the
    Redshift warehouse block (named block_name, default the identifier) for its endpoint.
    source: the s3:// prefix (or s3-bucket/BLOCK) the role may read; ingress_cidr: the only
    network admitted on port 5439 (none by default); aws_credentials: an AwsCredentials block."""
    spec = ClusterSpec(
        identifier, node_type, number_of_nodes, database, master_user,
        owner or default_owner(), ttl_hours, ingress_cidr,
    )  # fmt: skip
    credentials = load_credentials(aws_credentials)
    bucket, prefix = source_location(source, aws_credentials)
    role_arn = ensure_redshift_role(credentials, role_name, bucket, prefix, spec.owner)
    security_group = ensure_ingress(credentials, identifier, ingress_cidr)
    ensure_cluster(credentials, spec, role_arn, password_secret, security_group)
    info = wait_until_available(credentials, identifier, timeout_minutes * 60, poll_seconds)
    warehouse = save_warehouse_block(
        info,
        block_name or identifier,
        password_secret,
        role_arn,
        aws_region(credentials),
        credentials if aws_credentials else None,
    )
    return {
        "identifier": info.identifier,
        "endpoint": f"{info.host}:{info.port}",
        "warehouse": warehouse,
        "iam_role_arn": role_arn,
        "expires_at": info.tags.get(EXPIRES_TAG),
        "cost": describe_cost(node_type, number_of_nodes, aws_region(credentials)),
    }


@flow(name="sparkify-cluster-status")
def cluster_status(
    identifier: str = DEFAULT_IDENTIFIER, aws_credentials: str | None = None
) -> dict[str, Any]:
    """State, endpoint, age, expiry and estimated cost so far of the cluster."""
    credentials = load_credentials(aws_credentials)
    info = describe_cluster(credentials, identifier)
    report = status_report(info, aws_region(credentials), datetime.now(UTC))
    get_run_logger().info("cluster %s: %s", identifier, json.dumps(report, default=str))
    return report


@flow(name="sparkify-cluster-pause")
def cluster_pause(
    identifier: str = DEFAULT_IDENTIFIER,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> str:
    """Pause the cluster: compute billing stops, storage is still billed."""
    credentials = load_credentials(aws_credentials)
    return pause_cluster(credentials, identifier, timeout_minutes * 60, poll_seconds)


@flow(name="sparkify-cluster-resume")
def cluster_resume(
    identifier: str = DEFAULT_IDENTIFIER,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> str:
    """Resume a paused cluster and wait until it is available again."""
    credentials = load_credentials(aws_credentials)
    resume_cluster(credentials, identifier)
    return wait_until_available(credentials, identifier, timeout_minutes * 60, poll_seconds).status


@flow(name="sparkify-cluster-delete")
def cluster_delete(
    identifier: str = DEFAULT_IDENTIFIER,
    final_snapshot: str | None = None,
    block_name: str | None = None,
    aws_credentials: str | None = None,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> bool:
    """Delete the cluster (with a final snapshot if named), wait until it is gone, and remove
    its ingress group and its warehouse block (block_name); a cluster already gone is success.
    Returns whether there was a cluster to delete."""
    credentials = load_credentials(aws_credentials)
    existed = delete_cluster(credentials, identifier, final_snapshot)
    wait_until_deleted(credentials, identifier, timeout_minutes * 60, poll_seconds)
    if block_name:
        delete_warehouse_block(block_name)
    return existed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python flows/cluster.py`."""
    parser = argparse.ArgumentParser(description="Sparkify's Redshift cluster lifecycle.")
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--identifier", default=DEFAULT_IDENTIFIER, help="cluster identifier")
    common.add_argument(
        "--aws-credentials", help="AwsCredentials block name (default: boto3's standard chain)"
    )
    waits = argparse.ArgumentParser(add_help=False)
    waits.add_argument("--timeout-minutes", type=float, default=TIMEOUT_MINUTES)
    waits.add_argument("--poll-seconds", type=float, default=POLL_SECONDS)

    create = commands.add_parser("create", parents=[common, waits], help="create or reuse")
    create.add_argument("--source", required=True, help="s3://bucket/prefix COPY may read")
    create.add_argument("--owner", help="owner tag (default: your user name)")
    create.add_argument("--ttl-hours", type=float, default=8.0, help="expiry tag, from now")
    create.add_argument("--node-type", default=DEFAULT_NODE_TYPE)
    create.add_argument("--number-of-nodes", type=int, default=1)
    create.add_argument("--database", default=DEFAULT_DATABASE)
    create.add_argument("--master-user", default=DEFAULT_MASTER_USER)
    create.add_argument("--role-name", default=DEFAULT_ROLE_NAME)
    create.add_argument("--password-secret", default=DEFAULT_PASSWORD_SECRET)
    create.add_argument("--block-name", help="warehouse block to save (default: identifier)")
    create.add_argument("--ingress-cidr", help="open port 5439 to this CIDR (default: none)")

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
    delete.add_argument("--block-name", help="warehouse block to remove (default: identifier)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen lifecycle flow and print what it reports."""
    args = parse_args(argv)
    common = {"identifier": args.identifier, "aws_credentials": args.aws_credentials}
    waits = {
        "timeout_minutes": getattr(args, "timeout_minutes", TIMEOUT_MINUTES),
        "poll_seconds": getattr(args, "poll_seconds", POLL_SECONDS),
    }
    if args.command == "create":
        result: Any = cluster_create(
            source=args.source, owner=args.owner, ttl_hours=args.ttl_hours,
            node_type=args.node_type, number_of_nodes=args.number_of_nodes,
            database=args.database, master_user=args.master_user, role_name=args.role_name,
            password_secret=args.password_secret, block_name=args.block_name,
            ingress_cidr=args.ingress_cidr, **common, **waits,
        )  # fmt: skip
    elif args.command == "status":
        result = cluster_status(**common)
    elif args.command == "pause":
        result = {"status": cluster_pause(**common, **waits)}
    elif args.command == "resume":
        result = {"status": cluster_resume(**common, **waits)}
    else:
        snapshot = args.final_snapshot
        if snapshot == "":
            snapshot = final_snapshot_name(args.identifier, datetime.now(UTC))
        existed = cluster_delete(
            final_snapshot=snapshot, block_name=args.block_name or args.identifier,
            **common, **waits,
        )  # fmt: skip
        result = {"deleted": args.identifier if existed else None, "final_snapshot": snapshot}
    print()
    print(format_table(["", args.identifier], [[k, v] for k, v in result.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
