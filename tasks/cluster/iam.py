"""The IAM role Redshift assumes for COPY: trusted by Redshift (provisioned and Serverless),
allowed to read only the source prefixes of the clusters and namespaces it is attached to, each
by an inline policy of its own: creating one adds its grant and never replaces another's, and
deleting one takes its grant away."""

from __future__ import annotations

import json
from typing import Any, cast

from botocore.exceptions import ClientError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect_aws import AwsCredentials

from tasks.cluster.settings import OWNER_TAG, PROJECT, PROJECT_TAG
from tasks.common.aws import aws_client, error_code
from tasks.common.logs import run_logger
from tasks.common.retry import RETRY_TRANSIENT
from tasks.source.resolve import check_s3_source, resolve_source
from tasks.source.s3 import S3Source

# The inline policy of one cluster or namespace: its kind and name follow.
POLICY_PREFIX = "sparkify-s3-read"


# Provisioned clusters assume the role as redshift.amazonaws.com; Redshift Serverless needs
# redshift-serverless.amazonaws.com too (AWS's "Granting permissions to Amazon Redshift
# Serverless"). Both are always trusted, so a cluster and a workgroup can share the role, and
# creating one never takes the role away from the other.
REDSHIFT_SERVICES = ("redshift.amazonaws.com", "redshift-serverless.amazonaws.com")


def trust_policy() -> dict[str, Any]:
    """The trust policy that lets Redshift (provisioned and Serverless) assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": list(REDSHIFT_SERVICES)},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def s3_read_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """An inline policy allowing only GetObject and ListBucket on one bucket's prefix."""
    prefix = prefix.strip("/")
    objects = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
    listing: dict[str, Any] = {
        "Sid": "ListSourcePrefix",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            listing,
            {
                "Sid": "ReadSourceObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": objects,
            },
        ],
    }


def source_location(source: str, aws_credentials: str | None = None) -> tuple[str, str]:
    """Bucket and prefix of an s3:// URI or s3-bucket/NAME block: what the role may read; a
    BadSource (a user's mistake, one line) for a source that is not on S3 or is malformed."""
    check_s3_source(source)
    resolved = cast(S3Source, resolve_source(source, aws_credentials))  # on S3, checked above
    return resolved.bucket, resolved.prefix


def source_policy_name(holder: tuple[str, str]) -> str:
    """The name of the inline policy by which a cluster or namespace (kind, name) reads its
    source: within IAM's 128 characters, since a cluster identifier or namespace name has 64
    at most."""
    kind, name = holder
    return f"{POLICY_PREFIX}-{kind}-{name}"


@task(name="ensure-redshift-role", cache_policy=NO_CACHE, **RETRY_TRANSIENT)
def ensure_redshift_role(
    credentials: AwsCredentials,
    role_name: str,
    holder: tuple[str, str],
    source: tuple[str, str],
    owner: str,
) -> str:
    """Create (or reuse) the role Redshift assumes for COPY, with its trust policy and the
    inline policy by which the holder (kind, name) reads only its source (bucket, prefix),
    brought up to date; the role's other policies stay. Returns the role's ARN."""
    logger = run_logger()
    iam = aws_client(credentials, "iam")
    trust = json.dumps(trust_policy())
    try:
        role = iam.get_role(RoleName=role_name)["Role"]
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=trust)
        logger.info("reusing IAM role %s", role_name)
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        role = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=trust,
            Description="Lets Redshift COPY read Sparkify's raw JSON from S3",
            Tags=[{"Key": PROJECT_TAG, "Value": PROJECT}, {"Key": OWNER_TAG, "Value": owner}],
        )["Role"]
        logger.info("created IAM role %s", role_name)
    bucket, prefix = source
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName=source_policy_name(holder),
        PolicyDocument=json.dumps(s3_read_policy(bucket, prefix)),
    )
    logger.info(
        "role %s may read s3://%s/%s for %s %s",
        role_name,
        bucket,
        prefix.strip("/"),
        *holder,
    )
    return role["Arn"]


def revoke_source_read(
    credentials: AwsCredentials, role_arns: list[str], holder: tuple[str, str]
) -> None:
    """Take away the read a deleted cluster or namespace (kind, name) had through each of its
    roles; a role or policy already gone is success."""
    iam = aws_client(credentials, "iam")
    for arn in role_arns:
        role_name = arn.rsplit("/", 1)[-1]
        try:
            iam.delete_role_policy(RoleName=role_name, PolicyName=source_policy_name(holder))
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            continue
        run_logger().info("role %s no longer reads for %s %s", role_name, *holder)
