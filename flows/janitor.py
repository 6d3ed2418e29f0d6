"""sparkify-cluster-janitor: delete every cluster this project tagged whose expiry has passed,
and the warehouse block named after it when that block points at the deleted endpoint; then the
same for Redshift Serverless workgroups, and the namespaces no other workgroup uses.

Only resources tagged project=sparkify-etl with an expires-at in the past are touched; one
without the tags, or with an expiry that cannot be read, is never deleted. Deployed on an hourly
schedule (prefect.yaml), it bounds what a forgotten cluster or workgroup can cost.

python flows/janitor.py [--aws-credentials BLOCK] [--dry-run] [--final-snapshot] [--no-serverless]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect_aws import AwsCredentials

from tasks.cluster.blocks import forget_warehouse_block
from tasks.cluster.info import expired_clusters
from tasks.cluster.lifecycle import (
    delete_cluster,
    final_snapshot_name,
    list_clusters,
    wait_until_deleted,
)
from tasks.cluster.provision import SweepOptions, sweep_expired_serverless
from tasks.cluster.settings import OWNER_TAG, POLL_SECONDS, TIMEOUT_MINUTES, format_expiry
from tasks.common.aws import load_credentials, require_aws
from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server


@flow(name="sparkify-cluster-janitor")
@fails_in_one_line
def cluster_janitor(
    aws_credentials: str | None = None,
    dry_run: bool = False,
    final_snapshot: bool = False,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
    serverless: bool = True,
) -> list[str]:
    """Delete the project's expired clusters (with final snapshots if asked) and wait until they
    are gone; then, with serverless, its expired Serverless workgroups and namespaces. Returns
    the cluster identifiers, then `workgroup/NAME` and `namespace/NAME`. dry_run only lists.

    Args:
        aws_credentials: an AwsCredentials block's name (default: boto3's credential chain)
        dry_run: only list what has expired, delete nothing
        final_snapshot: take a final snapshot of each cluster and namespace before deleting it
        timeout_minutes: how long to wait for each deletion to finish
        poll_seconds: how often to look while waiting
        serverless: sweep expired Serverless workgroups and namespaces too
    """
    credentials = load_credentials(aws_credentials)
    require_aws(credentials, "nothing to sweep")
    now = datetime.now(UTC)
    options = SweepOptions(
        dry_run=dry_run,
        final_snapshots=final_snapshot,
        timeout_s=timeout_minutes * 60,
        poll_seconds=poll_seconds,
    )
    sweeps = [sweep_expired_clusters, *([sweep_expired_serverless] if serverless else [])]
    deleted: list[str] = []
    failed: list[Exception] = []
    for sweep in sweeps:  # one half failing does not spare the other half's resources
        try:
            deleted += sweep(credentials, now, options)
        except Exception as error:
            get_run_logger().error("janitor: %s failed: %s", sweep.__name__, error)
            failed.append(error)
    if failed:
        raise failed[0]
    return deleted


def sweep_expired_clusters(
    credentials: AwsCredentials, now: datetime, options: SweepOptions
) -> list[str]:
    """The janitor's cluster half: delete the expired clusters (with final snapshots if asked)
    and their blocks; returns their identifiers (with dry_run, of those it would delete)."""
    logger = get_run_logger()
    expired = expired_clusters(list_clusters(credentials), now)
    for cluster in expired:
        logger.info(
            "cluster %s (owner %s) expired at %s",
            cluster.identifier,
            cluster.tags.get(OWNER_TAG),
            format_expiry(cluster.expires_at() or now),
        )
    if options.dry_run or not expired:
        return [c.identifier for c in expired]
    for cluster in expired:
        snapshot = final_snapshot_name(cluster.identifier, now) if options.final_snapshots else None
        delete_cluster(credentials, cluster.identifier, snapshot)
    for cluster in expired:
        wait_until_deleted(credentials, cluster.identifier, options.timeout_s, options.poll_seconds)
        forget_warehouse_block(cluster)
    logger.info("deleted %d expired clusters", len(expired))
    return [c.identifier for c in expired]


@command("janitor")
def main(argv: list[str] | None = None) -> int:
    """Run the janitor once and print the clusters it deleted (or would delete)."""
    parser = argparse.ArgumentParser(
        description="Delete Sparkify's expired Redshift clusters and Serverless workgroups."
    )
    parser.add_argument("--aws-credentials", help="AwsCredentials block (default: boto3 chain)")
    parser.add_argument("--dry-run", action="store_true", help="list, do not delete")
    parser.add_argument("--final-snapshot", action="store_true", help="snapshot before delete")
    parser.add_argument(
        "--no-serverless",
        dest="serverless",
        action="store_false",
        help="leave Redshift Serverless alone (clusters only)",
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    start_temporary_server()
    deleted = cluster_janitor(
        args.aws_credentials, args.dry_run, args.final_snapshot, serverless=args.serverless
    )
    verb = "would delete" if args.dry_run else "deleted"
    what = "clusters, workgroups and namespaces" if args.serverless else "clusters"
    print(f"{verb} {len(deleted)} expired {what}" + "".join(f"\n  {c}" for c in deleted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
