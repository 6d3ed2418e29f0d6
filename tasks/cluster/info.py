"""A Redshift cluster as AWS describes it, and what the project reads from that: its tags,
expiry, age, cost so far, and the status report the flows print."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks.cluster.cost import hourly_cost
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
