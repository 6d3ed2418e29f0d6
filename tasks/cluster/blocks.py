"""The cluster's warehouse block: saved for its endpoint once it is available, so that the ETL's
--warehouse can name it, and removed with the cluster."""

from __future__ import annotations

from prefect import task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.aws import DEFAULT_REGION
from tasks.cluster.info import ClusterInfo
from tasks.cluster.settings import REDSHIFT_PORT
from tasks.logs import run_logger
from tasks.warehouse.redshift import RedshiftWarehouse

WAREHOUSE_BLOCK_SLUG = RedshiftWarehouse.get_block_type_slug()


def is_missing_block(error: ValueError) -> bool:
    """True when Prefect's load or delete failed because no block has that name."""
    return str(error).startswith("Unable to find block document")


@task(name="save-warehouse-block", cache_policy=NO_CACHE)
def save_warehouse_block(
    info: ClusterInfo,
    block_name: str,
    password_secret: str,
    role_arn: str,
    region: str | None,
    credentials: AwsCredentials | None,
) -> str:
    """Save (or overwrite) the Redshift warehouse block for the cluster's endpoint; returns the
    `slug/name` the ETL's --warehouse takes."""
    if not info.host:
        raise ValueError(f"cluster {info.identifier} has no endpoint yet")
    password = Secret.load(password_secret).get()
    block = RedshiftWarehouse(
        host=info.host,
        port=info.port or REDSHIFT_PORT,
        database=info.database,
        user=info.master_user,
        password=password,
        iam_role_arn=role_arn,
        region=region or DEFAULT_REGION,
        aws_credentials=credentials,
    )
    block.save(block_name, overwrite=True)
    reference = f"{WAREHOUSE_BLOCK_SLUG}/{block_name}"
    run_logger().info("saved %s for %s", reference, block.describe())
    return reference


@task(name="delete-warehouse-block", cache_policy=NO_CACHE)
def delete_warehouse_block(block_name: str) -> bool:
    """Remove the warehouse block of a deleted cluster; False if there was none."""
    try:
        RedshiftWarehouse.delete(block_name)
    except ValueError as error:
        if is_missing_block(error):
            return False
        raise
    run_logger().info("removed %s/%s", WAREHOUSE_BLOCK_SLUG, block_name)
    return True


@task(name="forget-warehouse-block", cache_policy=NO_CACHE)
def forget_warehouse_block(cluster: ClusterInfo) -> bool:
    """Remove the warehouse block named after a deleted cluster, when it points at that
    cluster's endpoint (a block reused for another endpoint is left alone)."""
    try:
        block = RedshiftWarehouse.load(cluster.identifier)
    except ValueError as error:
        if is_missing_block(error):
            return False
        raise
    if cluster.host is None or block.host != cluster.host:
        return False
    return delete_warehouse_block(cluster.identifier)
