"""sparkify-cluster-janitor: delete every cluster this project tagged whose expiry has passed,
and the warehouse block named after it when that block points at the deleted endpoint.

Only clusters tagged project=sparkify-etl with an expires-at in the past are touched; a cluster
without the tags, or with an expiry that cannot be read, is never deleted. Deployed on an hourly
schedule (deployments/prefect.yaml), it bounds what a forgotten cluster can cost.

python flows/janitor.py [--aws-credentials BLOCK] [--dry-run] [--final-snapshot]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from prefect import flow, get_run_logger

from tasks.aws import load_credentials
from tasks.cli import add_debug_argument, command
from tasks.cluster.blocks import forget_warehouse_block
from tasks.cluster.info import expired_clusters
from tasks.cluster.lifecycle import (
    delete_cluster,
    final_snapshot_name,
    list_clusters,
    wait_until_deleted,
)
from tasks.cluster.settings import OWNER_TAG, POLL_SECONDS, TIMEOUT_MINUTES, format_expiry


@flow(name="sparkify-cluster-janitor")
def cluster_janitor(
    aws_credentials: str | None = None,
    dry_run: bool = False,
    final_snapshot: bool = False,
    timeout_minutes: float = TIMEOUT_MINUTES,
    poll_seconds: float = POLL_SECONDS,
) -> list[str]:
    """Delete the project's expired clusters (with final snapshots if asked) and wait until they
    are gone; returns their identifiers. dry_run only lists them."""
    logger = get_run_logger()
    credentials = load_credentials(aws_credentials)
    now = datetime.now(UTC)
    expired = expired_clusters(list_clusters(credentials), now)
    for cluster in expired:
        logger.info(
            "cluster %s (owner %s) expired at %s",
            cluster.identifier,
            cluster.tags.get(OWNER_TAG),
            format_expiry(cluster.expires_at() or now),
        )
    if dry_run or not expired:
        return [c.identifier for c in expired]
    for cluster in expired:
        snapshot = final_snapshot_name(cluster.identifier, now) if final_snapshot else None
        delete_cluster(credentials, cluster.identifier, snapshot)
    for cluster in expired:
        wait_until_deleted(credentials, cluster.identifier, timeout_minutes * 60, poll_seconds)
        forget_warehouse_block(cluster)
    logger.info("deleted %d expired clusters", len(expired))
    return [c.identifier for c in expired]


@command("janitor")
def main(argv: list[str] | None = None) -> int:
    """Run the janitor once and print the clusters it deleted (or would delete)."""
    parser = argparse.ArgumentParser(description="Delete Sparkify's expired Redshift clusters.")
    parser.add_argument("--aws-credentials", help="AwsCredentials block (default: boto3 chain)")
    parser.add_argument("--dry-run", action="store_true", help="list, do not delete")
    parser.add_argument("--final-snapshot", action="store_true", help="snapshot before delete")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    deleted = cluster_janitor(args.aws_credentials, args.dry_run, args.final_snapshot)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(deleted)} expired clusters" + "".join(f"\n  {c}" for c in deleted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
