"""The warehouse block of a cluster or a Serverless workgroup: saved for its endpoint once it is
available, so that the ETL's --warehouse can name it, and removed with it. IAM sign-in by
default (temporary credentials per connection, no password in the block); password sign-in
copies the master or admin password from its Secret block."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.aws import DEFAULT_REGION
from tasks.cluster.info import ClusterInfo, NamespaceInfo, WorkgroupInfo
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
    password_sign_in: bool = False,
) -> str:
    """Save (or overwrite) the Redshift warehouse block for the cluster's endpoint, signing in
    as the master user by IAM (or with its password); returns the `slug/name` the ETL's
    --warehouse takes."""
    if not info.host:
        raise ValueError(f"cluster {info.identifier} has no endpoint yet")
    sign_in = sign_in_fields(password_secret, password_sign_in, cluster=info.identifier)
    block = RedshiftWarehouse(
        host=info.host,
        port=info.port or REDSHIFT_PORT,
        database=info.database,
        user=info.master_user,
        iam_role_arn=role_arn,
        region=region or DEFAULT_REGION,
        aws_credentials=credentials,
        **sign_in,
    )
    return _save(block, block_name)


@task(name="save-serverless-block", cache_policy=NO_CACHE)
def save_serverless_block(
    workgroup: WorkgroupInfo,
    namespace: NamespaceInfo,
    block_name: str,
    password_secret: str,
    role_arn: str,
    region: str | None,
    credentials: AwsCredentials | None,
    password_sign_in: bool = False,
) -> str:
    """Save (or overwrite) the Redshift warehouse block for the workgroup's endpoint, signing in
    by IAM as the caller's identity (or as the admin user with its password); returns the
    `slug/name` the ETL's --warehouse takes."""
    if not workgroup.host:
        raise ValueError(f"workgroup {workgroup.name} has no endpoint yet")
    sign_in = sign_in_fields(password_secret, password_sign_in, workgroup=workgroup.name)
    block = RedshiftWarehouse(
        host=workgroup.host,
        port=workgroup.port or REDSHIFT_PORT,
        database=namespace.database,
        user=namespace.admin_user if password_sign_in else None,
        iam_role_arn=role_arn,
        region=region or DEFAULT_REGION,
        aws_credentials=credentials,
        **sign_in,
    )
    return _save(block, block_name)


def sign_in_fields(
    password_secret: str,
    password_sign_in: bool,
    *,
    cluster: str | None = None,
    workgroup: str | None = None,
) -> dict[str, Any]:
    """The block's sign-in fields: the password from its Secret block, or IAM sign-in on the
    cluster or workgroup (no password)."""
    if password_sign_in:
        return {"sign_in": "password", "password": Secret.load(password_secret).get()}
    return {"sign_in": "iam", "cluster_identifier": cluster, "workgroup": workgroup}


def _save(block: RedshiftWarehouse, block_name: str) -> str:
    block.save(block_name, overwrite=True)
    reference = f"{WAREHOUSE_BLOCK_SLUG}/{block_name}"
    run_logger().info("saved %s for %s (%s sign-in)", reference, block.describe(), block.sign_in)
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
def forget_warehouse_block(cluster: ClusterInfo | WorkgroupInfo) -> bool:
    """Remove the warehouse block named after a deleted cluster (or workgroup), when it points
    at its endpoint (a block reused for another endpoint is left alone)."""
    name = cluster.identifier if isinstance(cluster, ClusterInfo) else cluster.name
    try:
        block = RedshiftWarehouse.load(name)
    except ValueError as error:
        if is_missing_block(error):
            return False
        raise
    if cluster.host is None or block.host != cluster.host:
        return False
    return delete_warehouse_block(name)
