"""What a cluster or a Serverless workgroup costs: the on-demand price tables and the estimates
built on them."""

from __future__ import annotations

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


# Redshift Serverless, on demand, $ per RPU-hour, taken 2026-11 from aws.amazon.com/redshift/
# pricing (as indexed here): us-east-1's $0.375 was read from that page; us-west-2 is an estimate
# (the same, as for the node prices above). Compute is billed per second while queries run (60 s
# at least each time), nothing while the workgroup is idle; storage is billed apart.
RPU_HOUR_PRICES: dict[str, float] = {"us-east-1": 0.375, "us-west-2": 0.375}


def busy_hourly_cost(base_capacity: int, region: str | None) -> float | None:
    """Estimated $ per hour of a workgroup busy at its base capacity; None when the price table
    lacks the region."""
    price = RPU_HOUR_PRICES.get(region or "")
    return None if price is None else round(price * base_capacity, 4)


def describe_serverless_cost(base_capacity: int, region: str | None) -> str:
    """The estimated cost of a workgroup as a sentence for logs."""
    cost = busy_hourly_cost(base_capacity, region)
    if cost is None:
        return f"{base_capacity} RPUs in {region}: cost unknown (not in the price table)"
    return (
        f"{base_capacity} RPUs in {region}: about ${cost:.2f}/hour while queries run "
        f"(${RPU_HOUR_PRICES[region or '']:g} per RPU-hour, billed per second, 60 s at least; "
        f"nothing while idle; on-demand prices of {PRICES_TAKEN})"
    )
