"""The Redshift cluster's lifecycle: the IAM role COPY assumes, the cluster, its network, its
warehouse block, pause/resume, and deletion. Small typed helpers hold the logic; the Prefect
tasks below them call AWS through a prefect-aws AwsCredentials block.

Safe by default: the role may only read the source prefix; no ingress is opened unless a CIDR is
named; every cluster carries project, owner and expiry tags, so the janitor can find it.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import logging
import secrets
import string
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from prefect import get_run_logger, task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger
from prefect_aws import AwsCredentials

from tasks.redshift import RedshiftWarehouse
from tasks.retry import RETRY_TRANSIENT
from tasks.source import S3Source, resolve_source

PROJECT = "sparkify-etl"
PROJECT_TAG = "project"
OWNER_TAG = "owner"
EXPIRES_TAG = "expires-at"
REDSHIFT_PORT = 5439
DEFAULT_IDENTIFIER = "sparkify"
DEFAULT_NODE_TYPE = "dc2.large"
DEFAULT_DATABASE = "dev"
DEFAULT_MASTER_USER = "sparkify"
DEFAULT_ROLE_NAME = "sparkify-redshift-s3-read"
DEFAULT_PASSWORD_SECRET = "sparkify-redshift-master-password"
ROLE_POLICY_NAME = "sparkify-s3-source-read"
WAREHOUSE_BLOCK_SLUG = RedshiftWarehouse.get_block_type_slug()

# On-demand $ per node-hour, provisioned clusters, taken 2026-11 from aws.amazon.com/redshift/
# pricing (as indexed here). dc2.large ($0.25, "start small at $0.25 per hour") and ra3.large
# ($0.543) were read from that page; ra3.xlplus, ra3.4xlarge and ra3.16xlarge are estimates (the
# rates AWS last published for us-east-1: 2x, 6x and 24x ra3.large). us-west-2 charges the same
# as us-east-1. Other regions and node types have no entry: their cost is reported as unknown.
PRICES_TAKEN = "2026-11"
_US_PRICES = {
    "dc2.large": 0.25,
    "ra3.large": 0.543,
    "ra3.xlplus": 1.086,  # estimate
    "ra3.4xlarge": 3.26,  # estimate
    "ra3.16xlarge": 13.04,  # estimate
}
NODE_HOUR_PRICES: dict[str, dict[str, float]] = {
    "us-east-1": _US_PRICES,
    "us-west-2": _US_PRICES,
}

# Redshift master passwords: 8-64 printable ASCII characters with an upper, a lower and a digit;
# ' " \ / @ and space are refused. The punctuation kept here is also safe in connection URLs.
PASSWORD_PUNCTUATION = "!#$%^&*()-_=+"
PASSWORD_FORBIDDEN = frozenset("'\"\\/@ ")

# AWS calls retry throttling and clusters in a changing state, never permission or validation
# errors; their inputs are blocks and their point is a side effect, so nothing is cached.
AWS_TASK: dict[str, Any] = {"cache_policy": NO_CACHE, **RETRY_TRANSIENT}


class ClusterWaitTimeout(Exception):
    """A cluster did not reach the awaited state in time (not retried: the deadline is spent)."""


# --- pure helpers -------------------------------------------------------------------------


def trust_policy() -> dict[str, Any]:
    """The trust policy that lets Redshift assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "redshift.amazonaws.com"},
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


def is_valid_password(password: str) -> bool:
    """True when Redshift accepts the password as a master user password."""
    return (
        8 <= len(password) <= 64
        and any(c.isupper() for c in password)
        and any(c.islower() for c in password)
        and any(c.isdigit() for c in password)
        and all(33 <= ord(c) <= 126 and c not in PASSWORD_FORBIDDEN for c in password)
    )


def generate_password(length: int = 32) -> str:
    """A random master password that satisfies Redshift's rules."""
    if not 8 <= length <= 64:
        raise ValueError(f"Redshift passwords have 8 to 64 characters, not {length}")
    alphabet = string.ascii_letters + string.digits + PASSWORD_PUNCTUATION
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if is_valid_password(password):
            return password


def format_expiry(moment: datetime) -> str:
    """An ISO-8601 UTC timestamp to the second, as written in the expires-at tag."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expiry(value: str) -> datetime | None:
    """The moment an expires-at tag names (naive values are UTC); None if unreadable."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cluster_tags(owner: str, expires_at: datetime) -> list[dict[str, str]]:
    """The tags that mark a cluster as this project's, with its owner and expiry."""
    return [
        {"Key": PROJECT_TAG, "Value": PROJECT},
        {"Key": OWNER_TAG, "Value": owner},
        {"Key": EXPIRES_TAG, "Value": format_expiry(expires_at)},
    ]


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """AWS's list of Key/Value tags as a dict."""
    return {t["Key"]: t["Value"] for t in tags}


def is_expired(tags: dict[str, str], now: datetime) -> bool:
    """True for a cluster tagged by this project whose expiry has passed; an unreadable or
    missing expiry never counts as expired."""
    if tags.get(PROJECT_TAG) != PROJECT:
        return False
    expires = parse_expiry(tags.get(EXPIRES_TAG, ""))
    return expires is not None and expires <= now


def hourly_cost(node_type: str, nodes: int, region: str | None) -> float | None:
    """Estimated on-demand $ per hour of a cluster; None when the price table lacks it."""
    price = NODE_HOUR_PRICES.get(region or "", {}).get(node_type)
    return None if price is None else round(price * nodes, 4)


def describe_cost(node_type: str, nodes: int, region: str | None) -> str:
    """The estimated hourly cost as a sentence for logs."""
    cost = hourly_cost(node_type, nodes, region)
    if cost is None:
        return f"{nodes} x {node_type} in {region}: cost unknown (not in the price table)"
    return (
        f"{nodes} x {node_type} in {region}: about ${cost:.2f}/hour "
        f"(${cost * 24:.2f}/day; on-demand prices of {PRICES_TAKEN})"
    )


def validate_cidr(cidr: str) -> str:
    """The CIDR in canonical form; refuses text that is not an IPv4 network."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"only IPv4 CIDRs are supported, not {cidr!r}")
    return str(network)


def security_group_name(identifier: str) -> str:
    """The name of the security group that holds a cluster's ingress rule."""
    return f"{identifier}-redshift-ingress"


def final_snapshot_name(identifier: str, now: datetime) -> str:
    """A snapshot identifier for a cluster's final snapshot."""
    return f"{identifier}-final-{now.astimezone(UTC):%Y%m%d%H%M%S}"


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to create and how it is configured."""

    identifier: str = DEFAULT_IDENTIFIER
    node_type: str = DEFAULT_NODE_TYPE
    number_of_nodes: int = 1
    database: str = DEFAULT_DATABASE
    master_user: str = DEFAULT_MASTER_USER
    owner: str = "unknown"
    ttl_hours: float = 8.0
    ingress_cidr: str | None = None

    def __post_init__(self) -> None:
        if self.number_of_nodes < 1:
            raise ValueError("a cluster has at least one node")
        if self.ttl_hours <= 0:
            raise ValueError("ttl_hours must be positive")
        if self.ingress_cidr is not None:
            validate_cidr(self.ingress_cidr)

    def create_arguments(
        self, role_arn: str, password: str, now: datetime, security_group_id: str | None
    ) -> dict[str, Any]:
        """The keyword arguments of redshift.create_cluster (the password included: never log)."""
        arguments: dict[str, Any] = {
            "ClusterIdentifier": self.identifier,
            "NodeType": self.node_type,
            "ClusterType": "multi-node" if self.number_of_nodes > 1 else "single-node",
            "DBName": self.database,
            "MasterUsername": self.master_user,
            "MasterUserPassword": password,
            "Port": REDSHIFT_PORT,
            "IamRoles": [role_arn],
            "PubliclyAccessible": self.ingress_cidr is not None,
            "Encrypted": True,
            "Tags": cluster_tags(self.owner, now + timedelta(hours=self.ttl_hours)),
        }
        if self.number_of_nodes > 1:
            arguments["NumberOfNodes"] = self.number_of_nodes
        if security_group_id:
            arguments["VpcSecurityGroupIds"] = [security_group_id]
        return arguments


@dataclass(frozen=True)
class ClusterInfo:
    """What describe_clusters says about a cluster."""

    identifier: str
    status: str
    node_type: str
    number_of_nodes: int
    host: str | None
    port: int | None
    database: str
    master_user: str
    created_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    iam_roles: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)

    @classmethod
    def from_response(cls, cluster: dict[str, Any]) -> ClusterInfo:
        """Read one entry of describe_clusters' Clusters."""
        endpoint = cluster.get("Endpoint") or {}
        return cls(
            identifier=cluster["ClusterIdentifier"],
            status=cluster.get("ClusterStatus", "unknown"),
            node_type=cluster.get("NodeType", ""),
            number_of_nodes=int(cluster.get("NumberOfNodes", 1)),
            host=endpoint.get("Address"),
            port=endpoint.get("Port"),
            database=cluster.get("DBName", DEFAULT_DATABASE),
            master_user=cluster.get("MasterUsername", ""),
            created_at=cluster.get("ClusterCreateTime"),
            tags=tag_map(cluster.get("Tags", [])),
            iam_roles=[r["IamRoleArn"] for r in cluster.get("IamRoles", [])],
            security_groups=[g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])],
        )

    def expires_at(self) -> datetime | None:
        """The expiry its tag names, if any."""
        return parse_expiry(self.tags.get(EXPIRES_TAG, ""))

    def age(self, now: datetime) -> timedelta | None:
        """Time since the cluster was created."""
        return None if self.created_at is None else now - self.created_at

    def cost_so_far(self, region: str | None, now: datetime) -> float | None:
        """Estimated $ since creation at the on-demand rate (paused hours counted too)."""
        rate = hourly_cost(self.node_type, self.number_of_nodes, region)
        age = self.age(now)
        if rate is None or age is None:
            return None
        return round(rate * age.total_seconds() / 3600, 2)


def poll_until(
    check: Callable[[], str | None],
    timeout_s: float,
    delay_s: float,
    report: Callable[[str, float], None],
    sleep: Callable[[float], None] = clock.sleep,
    monotonic: Callable[[], float] = clock.monotonic,
) -> float:
    """Call check until it returns None (done), reporting the state it returns in between;
    ClusterWaitTimeout after timeout_s. Returns the seconds waited."""
    started = monotonic()
    while True:
        state = check()
        waited = monotonic() - started
        if state is None:
            return waited
        if waited + delay_s > timeout_s:
            raise ClusterWaitTimeout(f"still {state} after {waited:.0f} s (timeout {timeout_s} s)")
        report(state, waited)
        sleep(delay_s)


def default_owner() -> str:
    """Who the cluster belongs to when no owner is named: the local user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def status_report(info: ClusterInfo | None, region: str | None, now: datetime) -> dict[str, Any]:
    """What `status` prints: state, endpoint, age, expiry and estimated cost so far."""
    if info is None:
        return {"status": "absent"}
    age = info.age(now)
    expires = info.expires_at()
    return {
        "identifier": info.identifier,
        "status": info.status,
        "endpoint": f"{info.host}:{info.port}" if info.host else None,
        "nodes": f"{info.number_of_nodes} x {info.node_type}",
        "age_hours": None if age is None else round(age.total_seconds() / 3600, 2),
        "expires_at": format_expiry(expires) if expires else None,
        "expired": is_expired(info.tags, now),
        "owner": info.tags.get(OWNER_TAG),
        "cost_per_hour_usd": hourly_cost(info.node_type, info.number_of_nodes, region),
        "cost_so_far_usd": info.cost_so_far(region, now),
    }


def expired_clusters(clusters: list[ClusterInfo], now: datetime) -> list[ClusterInfo]:
    """The project's clusters whose expiry has passed and that are not already being deleted."""
    return [c for c in clusters if is_expired(c.tags, now) and c.status != "deleting"]


# --- AWS access ---------------------------------------------------------------------------


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger; a plain one where there is no run (a state hook after a crash)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("sparkify.cluster")


def load_credentials(name: str | None) -> AwsCredentials:
    """The named AwsCredentials block, or boto3's standard chain when no name is given."""
    return AwsCredentials.load(name) if name else AwsCredentials()


def source_location(source: str, aws_credentials: str | None = None) -> tuple[str, str]:
    """Bucket and prefix of an s3:// URI or s3-bucket/NAME block: what the role may read."""
    resolved = resolve_source(source, aws_credentials)
    if not isinstance(resolved, S3Source):
        raise ValueError(f"Redshift loads from S3: {source!r} is not s3://bucket/prefix")
    return resolved.bucket, resolved.prefix


def aws_client(credentials: AwsCredentials, service: str) -> Any:
    """A new boto3 client (prefect-aws caches its own per block, which outlives endpoints)."""
    overrides = credentials.aws_client_parameters.get_params_override()
    return credentials.get_boto3_session().client(service, **overrides)


def aws_region(credentials: AwsCredentials) -> str | None:
    """The region the credentials' clients talk to."""
    return credentials.region_name or credentials.get_boto3_session().region_name


def error_code(error: ClientError) -> str:
    """The AWS error code of a failed call."""
    return error.response.get("Error", {}).get("Code", "")


def find_cluster(redshift: Any, identifier: str) -> ClusterInfo | None:
    """The cluster, or None when there is none by that name."""
    try:
        clusters = redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"]
    except ClientError as error:
        if error_code(error) == "ClusterNotFound":
            return None
        raise
    return ClusterInfo.from_response(clusters[0]) if clusters else None


def waiter_check(redshift: Any, waiter_name: str, identifier: str) -> Callable[[], str | None]:
    """One probe of a boto3 waiter: None when its success state is reached, else the state."""
    waiter = redshift.get_waiter(waiter_name)

    def check() -> str | None:
        try:
            waiter.wait(ClusterIdentifier=identifier, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
        except WaiterError as error:
            if "Max attempts exceeded" not in str(error):
                raise
            clusters = (error.last_response or {}).get("Clusters") or [{}]
            return clusters[0].get("ClusterStatus", "not found yet")
        return None

    return check


def status_check(redshift: Any, identifier: str, wanted: str) -> Callable[[], str | None]:
    """A probe that is done when the cluster's status is `wanted` (no boto3 waiter exists)."""

    def check() -> str | None:
        info = require_cluster(redshift, identifier)
        return None if info.status == wanted else info.status

    return check


def is_missing_block(error: ValueError) -> bool:
    """True when Prefect's load or delete failed because no block has that name."""
    return str(error).startswith("Unable to find block document")


def load_or_create_password(secret_name: str) -> tuple[str, bool]:
    """The password held by a Secret block, generating and saving one if there is none; the
    flag says whether it was generated now."""
    try:
        return str(Secret.load(secret_name).get()), False
    except ValueError as error:
        if not is_missing_block(error):
            raise
        password = generate_password()
        Secret(value=password).save(secret_name)
        return password, True


def wait_for(
    check: Callable[[], str | None], identifier: str, timeout_s: float, delay_s: float
) -> float:
    """Poll a cluster probe until done, logging the cluster's state at each wait."""
    logger = run_logger()
    return poll_until(
        check,
        timeout_s,
        delay_s,
        lambda state, s: logger.info("cluster %s is %s after %.0f s", identifier, state, s),
    )


def require_cluster(redshift: Any, identifier: str) -> ClusterInfo:
    """The cluster's description; ValueError when it does not exist."""
    info = find_cluster(redshift, identifier)
    if info is None:
        raise ValueError(f"cluster {identifier} does not exist")
    return info


def delete_security_group(ec2: Any, identifier: str) -> bool:
    """Remove a cluster's ingress security group if there is one; True if one was removed."""
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [security_group_name(identifier)]}]
    )["SecurityGroups"]
    for group in groups:
        ec2.delete_security_group(GroupId=group["GroupId"])
    return bool(groups)


# --- Prefect tasks ------------------------------------------------------------------------


@task(name="ensure-redshift-role", **AWS_TASK)
def ensure_redshift_role(
    credentials: AwsCredentials, role_name: str, bucket: str, prefix: str, owner: str
) -> str:
    """Create (or reuse) the role Redshift assumes for COPY, with its trust policy and an inline
    policy reading only the source prefix brought up to date; returns its ARN."""
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
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName=ROLE_POLICY_NAME,
        PolicyDocument=json.dumps(s3_read_policy(bucket, prefix)),
    )
    logger.info("role %s may read s3://%s/%s only", role_name, bucket, prefix.strip("/"))
    return role["Arn"]


@task(name="ensure-ingress", **AWS_TASK)
def ensure_ingress(credentials: AwsCredentials, identifier: str, cidr: str | None) -> str | None:
    """The security group admitting `cidr` on port 5439 (created in the default VPC if needed);
    None, and nothing opened, when no CIDR is named."""
    logger = run_logger()
    if cidr is None:
        logger.info("no ingress CIDR named: the cluster is not reachable from outside its VPC")
        return None
    cidr = validate_cidr(cidr)
    if cidr == "0.0.0.0/0":
        logger.warning("opening port %d to the whole internet, as asked", REDSHIFT_PORT)
    ec2 = aws_client(credentials, "ec2")
    name = security_group_name(identifier)
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    if found["SecurityGroups"]:
        group_id = found["SecurityGroups"][0]["GroupId"]
    else:
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ValueError("no default VPC: create the cluster's network first")
        group_id = ec2.create_security_group(
            GroupName=name,
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
    logger.info("security group %s admits %s on port %d", group_id, cidr, REDSHIFT_PORT)
    return group_id


@task(name="ensure-cluster", **AWS_TASK)
def ensure_cluster(
    credentials: AwsCredentials,
    spec: ClusterSpec,
    role_arn: str,
    password_secret: str,
    security_group_id: str | None,
) -> ClusterInfo:
    """Create the cluster, or reuse the one of that name (attaching the role and ingress group
    it lacks); the master password comes from the Secret block, generated there if absent."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    password, generated = load_or_create_password(password_secret)
    if generated:
        logger.info("generated a master password into Secret block %r", password_secret)
    logger.info(
        "estimated cost: %s",
        describe_cost(spec.node_type, spec.number_of_nodes, aws_region(credentials)),
    )
    existing = find_cluster(redshift, spec.identifier)
    if existing is None:
        now = datetime.now(UTC)
        created = redshift.create_cluster(
            **spec.create_arguments(role_arn, password, now, security_group_id)
        )["Cluster"]
        logger.info(
            "creating cluster %s (expires %s)",
            spec.identifier,
            format_expiry(now + timedelta(hours=spec.ttl_hours)),
        )
        return ClusterInfo.from_response(created)
    logger.info("reusing cluster %s (%s)", existing.identifier, existing.status)
    if role_arn not in existing.iam_roles:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=spec.identifier, AddIamRoles=[role_arn])
    changes: dict[str, Any] = {}
    if security_group_id and security_group_id not in existing.security_groups:
        changes["VpcSecurityGroupIds"] = [*existing.security_groups, security_group_id]
    if generated:
        # The secret was lost or never made: the reused cluster takes the new password, so the
        # secret and the warehouse block are right again.
        changes["MasterUserPassword"] = password
    if changes:
        redshift.modify_cluster(ClusterIdentifier=spec.identifier, **changes)
    return existing


@task(name="wait-until-available", **AWS_TASK)
def wait_until_available(
    credentials: AwsCredentials, identifier: str, timeout_s: float = 1800, delay_s: float = 30
) -> ClusterInfo:
    """Wait with boto3's cluster_available waiter, logging progress, up to timeout_s."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    waited = wait_for(
        waiter_check(redshift, "cluster_available", identifier), identifier, timeout_s, delay_s
    )
    info = require_cluster(redshift, identifier)
    logger.info(
        "cluster %s is available at %s:%s (%.0f s)", identifier, info.host, info.port, waited
    )
    return info


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
        region=region or "us-west-2",
        aws_credentials=credentials,
    )
    block.save(block_name, overwrite=True)
    reference = f"{WAREHOUSE_BLOCK_SLUG}/{block_name}"
    run_logger().info("saved %s for %s", reference, block.describe())
    return reference


@task(name="describe-cluster", **AWS_TASK)
def describe_cluster(credentials: AwsCredentials, identifier: str) -> ClusterInfo | None:
    """The cluster's description, or None if it does not exist."""
    return find_cluster(aws_client(credentials, "redshift"), identifier)


@task(name="list-clusters", **AWS_TASK)
def list_clusters(credentials: AwsCredentials) -> list[ClusterInfo]:
    """Every cluster of the region."""
    paginator = aws_client(credentials, "redshift").get_paginator("describe_clusters")
    return [
        ClusterInfo.from_response(cluster)
        for page in paginator.paginate()
        for cluster in page["Clusters"]
    ]


@task(name="pause-cluster", **AWS_TASK)
def pause_cluster(
    credentials: AwsCredentials, identifier: str, timeout_s: float = 1800, delay_s: float = 30
) -> str:
    """Pause the cluster (compute billing stops) and wait until it is paused."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    info = require_cluster(redshift, identifier)
    if info.status != "paused":
        redshift.pause_cluster(ClusterIdentifier=identifier)
    wait_for(status_check(redshift, identifier, "paused"), identifier, timeout_s, delay_s)
    logger.info("cluster %s is paused", identifier)
    return "paused"


@task(name="resume-cluster", **AWS_TASK)
def resume_cluster(credentials: AwsCredentials, identifier: str) -> str:
    """Ask a paused cluster to resume; returns the status it had."""
    redshift = aws_client(credentials, "redshift")
    info = require_cluster(redshift, identifier)
    if info.status == "paused":
        redshift.resume_cluster(ClusterIdentifier=identifier)
        run_logger().info("resuming cluster %s", identifier)
    return info.status


@task(name="delete-cluster", **AWS_TASK)
def delete_cluster(
    credentials: AwsCredentials, identifier: str, final_snapshot: str | None = None
) -> bool:
    """Ask for the cluster's deletion (with a final snapshot if named); False if it was
    already gone, which is success."""
    logger = run_logger()
    redshift = aws_client(credentials, "redshift")
    info = find_cluster(redshift, identifier)
    if info is None:
        logger.info("cluster %s does not exist: nothing to delete", identifier)
        return False
    if info.status == "deleting":
        return True
    snapshot = (
        {"SkipFinalClusterSnapshot": False, "FinalClusterSnapshotIdentifier": final_snapshot}
        if final_snapshot
        else {"SkipFinalClusterSnapshot": True}
    )
    try:
        redshift.delete_cluster(ClusterIdentifier=identifier, **snapshot)
    except ClientError as error:
        if error_code(error) == "ClusterNotFound":
            return False
        raise
    logger.info(
        "deleting cluster %s (%s)",
        identifier,
        f"final snapshot {final_snapshot}" if final_snapshot else "no final snapshot",
    )
    return True


@task(name="wait-until-deleted", **AWS_TASK)
def wait_until_deleted(
    credentials: AwsCredentials, identifier: str, timeout_s: float = 1800, delay_s: float = 30
) -> None:
    """Wait with boto3's cluster_deleted waiter, logging progress; then remove the cluster's
    ingress security group, which only a deleted cluster releases."""
    logger = run_logger()
    wait_for(
        waiter_check(aws_client(credentials, "redshift"), "cluster_deleted", identifier),
        identifier,
        timeout_s,
        delay_s,
    )
    if delete_security_group(aws_client(credentials, "ec2"), identifier):
        logger.info("removed security group %s", security_group_name(identifier))
    logger.info("cluster %s is deleted", identifier)


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
