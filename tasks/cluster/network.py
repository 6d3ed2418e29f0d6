"""The cluster's network: a security group admitting one named CIDR on port 5439, and nothing
at all unless a CIDR is named."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.cluster.settings import PROJECT, PROJECT_TAG, REDSHIFT_PORT, validate_cidr
from tasks.common.aws import aws_client, error_code
from tasks.common.logs import run_logger
from tasks.common.retry import RETRY_TRANSIENT


def security_group_name(identifier: str) -> str:
    """The name of the security group that holds a cluster's ingress rule."""
    return f"{identifier}-redshift-ingress"


def find_security_groups(ec2: Any, identifier: str) -> list[dict[str, Any]]:
    """The cluster's ingress security group, as a list of none or one."""
    name = security_group_name(identifier)
    filters = [{"Name": "group-name", "Values": [name]}]
    return ec2.describe_security_groups(Filters=filters)["SecurityGroups"]


def delete_security_group(ec2: Any, identifier: str) -> bool:
    """Remove a cluster's ingress security group if there is one; True if one was removed."""
    groups = find_security_groups(ec2, identifier)
    for group in groups:
        ec2.delete_security_group(GroupId=group["GroupId"])
    return bool(groups)


@task(name="ensure-ingress", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def ensure_ingress(credentials: AwsCredentials, identifier: str, cidr: str | None) -> str | None:
    """The security group admitting `cidr`, and no other range, on port 5439 (created in the
    default VPC if needed; a range admitted by an earlier create is revoked). None when no CIDR
    is named: nothing is opened, and a group left by an earlier create admits nothing more."""
    logger = run_logger()
    ec2 = aws_client(credentials, "ec2")
    found = find_security_groups(ec2, identifier)
    if cidr is None:
        for group in found:
            revoke_other_ranges(ec2, group, keep=None)
        logger.info("no ingress CIDR named: the cluster is not reachable from outside its VPC")
        return None
    cidr = validate_cidr(cidr)
    if cidr == "0.0.0.0/0":
        logger.warning("opening port %d to the whole internet, as asked", REDSHIFT_PORT)
    if found:
        group_id = found[0]["GroupId"]
    else:
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ValueError("no default VPC: create the cluster's network first")
        group_id = ec2.create_security_group(
            GroupName=security_group_name(identifier),
            Description=f"Redshift {identifier}: port {REDSHIFT_PORT} from named CIDRs",
            VpcId=vpcs[0]["VpcId"],
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": PROJECT_TAG, "Value": PROJECT}]}
            ],
        )["GroupId"]
    try:
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": REDSHIFT_PORT,
                    "ToPort": REDSHIFT_PORT,
                    "IpRanges": [{"CidrIp": cidr, "Description": "sparkify-etl"}],
                }
            ],
        )
    except ClientError as error:
        if error_code(error) != "InvalidPermission.Duplicate":
            raise
    for group in found:
        revoke_other_ranges(ec2, group, keep=cidr)
    logger.info("security group %s admits %s on port %d", group_id, cidr, REDSHIFT_PORT)
    return group_id


def revoke_other_ranges(ec2: Any, group: dict[str, Any], keep: str | None) -> None:
    """Revoke every IPv4 range the group admits on port 5439 but `keep`."""
    for permission in group.get("IpPermissions", []):
        if permission.get("FromPort") != REDSHIFT_PORT:
            continue
        others = [r for r in permission.get("IpRanges", []) if r.get("CidrIp") != keep]
        if others:
            ec2.revoke_security_group_ingress(
                GroupId=group["GroupId"],
                IpPermissions=[
                    {
                        "IpProtocol": permission["IpProtocol"],
                        "FromPort": REDSHIFT_PORT,
                        "ToPort": permission.get("ToPort", REDSHIFT_PORT),
                        "IpRanges": [{"CidrIp": r["CidrIp"]} for r in others],
                    }
                ],
            )
            run_logger().info(
                "security group %s no longer admits %s",
                group["GroupId"],
                ", ".join(r["CidrIp"] for r in others),
            )
