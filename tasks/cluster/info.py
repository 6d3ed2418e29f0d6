"""A Redshift cluster, or a Serverless namespace and workgroup, as AWS describes them, and what
the project reads from that: their tags, expiry, age, cost, and the status report the flows
print."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tasks.cluster.cost import busy_hourly_cost, hourly_cost
from tasks.cluster.settings import (
    DEFAULT_DATABASE,
    EXPIRES_TAG,
    OWNER_TAG,
    format_expiry,
    is_expired,
    parse_expiry,
    tag_map,
)


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


# --- Redshift Serverless ------------------------------------------------------------------

# GetNamespace lists a namespace's roles as text, `IamRole(applyStatus=in-sync, iamRoleArn=...)`
# with the two fields in either order, or as bare ARNs: the ARN is what is read from it.
IAM_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=.@/-]+")


def role_arns(iam_roles: list[str]) -> list[str]:
    """The role ARNs named in a namespace's iamRoles."""
    return [match.group(0) for text in iam_roles if (match := IAM_ROLE_ARN.search(text))]


@dataclass(frozen=True)
class NamespaceInfo:
    """What get_namespace says about a namespace, with its tags."""

    name: str
    status: str
    database: str
    admin_user: str
    arn: str
    created_at: datetime | None
    iam_roles: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_response(cls, namespace: dict[str, Any], tags: list[dict[str, str]]) -> NamespaceInfo:
        """Read one namespace of get_namespace or list_namespaces, and its tags."""
        return cls(
            name=namespace["namespaceName"],
            status=namespace.get("status", "unknown"),
            database=namespace.get("dbName", DEFAULT_DATABASE),
            admin_user=namespace.get("adminUsername", ""),
            arn=namespace.get("namespaceArn", ""),
            created_at=namespace.get("creationDate"),
            iam_roles=role_arns(namespace.get("iamRoles", [])),
            tags=tag_map(tags),
        )


@dataclass(frozen=True)
class WorkgroupInfo:
    """What get_workgroup says about a workgroup, with its tags."""

    name: str
    namespace: str
    status: str
    base_capacity: int
    host: str | None
    port: int | None
    arn: str
    created_at: datetime | None
    publicly_accessible: bool = False
    security_groups: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_response(cls, workgroup: dict[str, Any], tags: list[dict[str, str]]) -> WorkgroupInfo:
        """Read one workgroup of get_workgroup or list_workgroups, and its tags."""
        endpoint = workgroup.get("endpoint") or {}
        return cls(
            name=workgroup["workgroupName"],
            namespace=workgroup.get("namespaceName", ""),
            status=workgroup.get("status", "unknown"),
            base_capacity=int(workgroup.get("baseCapacity", 0)),
            host=endpoint.get("address"),
            port=endpoint.get("port"),
            arn=workgroup.get("workgroupArn", ""),
            created_at=workgroup.get("creationDate"),
            publicly_accessible=bool(workgroup.get("publiclyAccessible", False)),
            security_groups=list(workgroup.get("securityGroupIds", [])),
            tags=tag_map(tags),
        )

    def expires_at(self) -> datetime | None:
        """The expiry its tag names, if any."""
        return parse_expiry(self.tags.get(EXPIRES_TAG, ""))


Resource = TypeVar("Resource", NamespaceInfo, WorkgroupInfo)


def serverless_report(
    workgroup: WorkgroupInfo | None,
    namespace: NamespaceInfo | None,
    region: str | None,
    now: datetime,
) -> dict[str, Any]:
    """What Serverless `status` prints: states, endpoint, base capacity, age, expiry and the
    estimated cost of an hour busy at base capacity (compute costs nothing while idle)."""
    if workgroup is None and namespace is None:
        return {"status": "absent"}
    report: dict[str, Any] = {"namespace": namespace.name if namespace else None}
    report["namespace_status"] = namespace.status if namespace else "absent"
    if workgroup is None:
        return {"workgroup": None, "status": "absent", **report}
    created = workgroup.created_at
    expires = workgroup.expires_at()
    return {
        "workgroup": workgroup.name,
        "status": workgroup.status,
        **report,
        "endpoint": f"{workgroup.host}:{workgroup.port}" if workgroup.host else None,
        "base_capacity_rpus": workgroup.base_capacity,
        "age_hours": None if created is None else round((now - created).total_seconds() / 3600, 2),
        "expires_at": format_expiry(expires) if expires else None,
        "expired": is_expired(workgroup.tags, now),
        "owner": workgroup.tags.get(OWNER_TAG),
        "cost_per_busy_hour_usd": busy_hourly_cost(workgroup.base_capacity, region),
    }


def expired_serverless(items: list[Resource], now: datetime) -> list[Resource]:
    """The project's namespaces or workgroups whose expiry has passed and that are not already
    being deleted."""
    return [item for item in items if is_expired(item.tags, now) and item.status != "DELETING"]
