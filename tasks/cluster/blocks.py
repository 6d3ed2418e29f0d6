"""The warehouse block of a cluster or a Serverless workgroup: saved for its endpoint once it is
available, so that the ETL's --warehouse can name it, and removed with it. IAM sign-in by
default (temporary credentials per connection, no password in the block); password sign-in
copies the master or admin password from its Secret block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.cluster.info import ClusterInfo, NamespaceInfo, WorkgroupInfo
from tasks.cluster.settings import REDSHIFT_PORT
from tasks.common.aws import DEFAULT_REGION
from tasks.common.logs import run_logger
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse

WAREHOUSE_BLOCK_SLUG = RedshiftWarehouse.get_block_type_slug()


def is_missing_block(error: ValueError) -> bool:
    """True when Prefect's load or delete failed because no block has that name."""
    return str(error).startswith("Unable to find block document")


@dataclass(frozen=True)
class BlockAccess:
    """How a cluster's or workgroup's warehouse block is saved and signs in: the block's name,
    the Secret block holding the master or admin password, the COPY role, the region and the
    AwsCredentials it keeps (None: boto3's chain); password_sign_in keeps the password in the
    block instead of signing in by IAM."""

    block_name: str
    password_secret: str
    role_arn: str
    region: str | None
    credentials: AwsCredentials | None
    password_sign_in: bool = False


@task(name="save-warehouse-block", cache_policy=NO_CACHE)
def save_warehouse_block(info: ClusterInfo, access: BlockAccess) -> str:
    """Save (or overwrite) the Redshift warehouse block for the cluster's endpoint, signing in
    as the master user by IAM (or with its password); returns the `slug/name` the ETL's
    --warehouse takes."""
    if not info.host:
        raise ValueError(f"cluster {info.identifier} has no endpoint yet")
    return _save_block(
        access, info.host, info.port, info.database, info.master_user, cluster=info.identifier
    )


@task(name="save-serverless-block", cache_policy=NO_CACHE)
def save_serverless_block(
    workgroup: WorkgroupInfo, namespace: NamespaceInfo, access: BlockAccess
) -> str:
    """Save (or overwrite) the Redshift warehouse block for the workgroup's endpoint, signing in
    by IAM as the caller's identity (or as the admin user with its password); returns the
    `slug/name` the ETL's --warehouse takes."""
    if not workgroup.host:
        raise ValueError(f"workgroup {workgroup.name} has no endpoint yet")
    user = namespace.admin_user if access.password_sign_in else None
    return _save_block(
        access, workgroup.host, workgroup.port, namespace.database, user, workgroup=workgroup.name
    )


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


def _save_block(
    access: BlockAccess,
    host: str,
    port: int | None,
    database: str,
    user: str | None,
    *,
    cluster: str | None = None,
    workgroup: str | None = None,
) -> str:
    sign_in = sign_in_fields(
        access.password_secret, access.password_sign_in, cluster=cluster, workgroup=workgroup
    )
    block = RedshiftWarehouse(
        host=host,
        port=port or REDSHIFT_PORT,
        database=database,
        user=user,
        iam_role_arn=access.role_arn,
        region=access.region or DEFAULT_REGION,
        aws_credentials=access.credentials,
        **sign_in,
    )
    block.save(access.block_name, overwrite=True)
    reference = f"{WAREHOUSE_BLOCK_SLUG}/{access.block_name}"
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
