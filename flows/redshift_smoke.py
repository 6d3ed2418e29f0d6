"""sparkify-redshift-smoke: the bundled sample on a throwaway Redshift cluster and on DuckDB,
compared star table by star table, then everything deleted, and the cost estimated.

Everything the run makes is named after its flow run: the cluster and its warehouse block
(sparkify-smoke-<run>) and the S3 prefix the sample is uploaded to (<SOURCE>/smoke-<run>/), so
the state hooks find them from the run alone; the expiry tag lets the janitor delete a cluster
that outlives both. It costs money and needs an AWS account: CI never runs it.

make redshift-smoke SOURCE=s3://bucket/prefix [AWS_CREDENTIALS=BLOCK] [INGRESS_CIDR=CIDR]
python flows/redshift_smoke.py --source s3://bucket/prefix [--aws-credentials BLOCK] ...
"""

from __future__ import annotations

import argparse
import sys
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import UUID

from prefect import flow, runtime
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

from flows.etl import etl
from tasks.cluster.blocks import delete_warehouse_block
from tasks.cluster.cost import PRICES_TAKEN, hourly_cost
from tasks.cluster.lifecycle import delete_cluster, wait_until_deleted
from tasks.cluster.provision import provision_cluster, remove_cluster
from tasks.cluster.questions import Probe, ask
from tasks.cluster.settings import (
    DEFAULT_ROLE_NAME,
    ClusterSettings,
    add_cluster_arguments,
    cluster_settings_from_args,
)
from tasks.common.aws import aws_region, load_credentials
from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import BadArgument, fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.common.logs import run_logger
from tasks.run.digest import (
    TableComparison,
    compare_digests,
    format_comparison,
    warehouse_digests,
)
from tasks.source.s3 import S3Source, delete_prefix, parse_s3_uri, upload_tree
from tasks.warehouse.resolve import resolve_warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLE = str(PROJECT_ROOT / "data" / "sample")
# Short enough that the hourly janitor deletes a leaked cluster within three hours.
SMOKE_TTL_HOURS = 2.0
# A role of its own (instead of the default one), so that a smoke run never rewrites the
# production COPY role's policy.
SMOKE_ROLE_NAME = "sparkify-redshift-smoke-s3-read"
SMOKE_CLUSTER = ClusterSettings(role_name=SMOKE_ROLE_NAME, ttl_hours=SMOKE_TTL_HOURS)


# --- what a run makes, named after the run -------------------------------------------------


@dataclass(frozen=True)
class SmokePlan:
    """The run's cluster settings (identifier and block named after the run), the prefix the
    COPY role may read (the user's) and the prefix this run's sample goes to (under it)."""

    cluster: ClusterSettings
    source: str
    run_source: str

    def run_objects(self, aws_credentials: str | None) -> S3Source:
        """The run's prefix as an S3 source, reached with the named credentials."""
        return S3Source.from_uri(self.run_source, load_credentials(aws_credentials))


def smoke_plan(source: str, cluster: ClusterSettings | None, flow_run_id: UUID | str) -> SmokePlan:
    """Name the run's cluster, block and S3 prefix after its flow run id, with the smoke's
    expiry and COPY role unless others are given; refuses a source that is not s3://bucket/…"""
    bucket, prefix = parse_s3_uri(source)
    run = UUID(str(flow_run_id)).hex[:12]
    identifier = f"sparkify-smoke-{run}"
    cluster = cluster or SMOKE_CLUSTER
    own_role = cluster.role_name != DEFAULT_ROLE_NAME
    settings = cluster.model_copy(
        update={
            "identifier": identifier,
            "block_name": identifier,
            "ttl_hours": cluster.ttl_hours or SMOKE_TTL_HOURS,
            "role_name": cluster.role_name if own_role else SMOKE_ROLE_NAME,
        }
    )
    run_prefix = "/".join(p for p in (prefix.strip("/"), f"smoke-{run}") if p)
    return SmokePlan(settings, source, f"s3://{bucket}/{run_prefix}")


# --- the comparison and the bill: pure helpers ---------------------------------------------


def smoke_cost(cluster: ClusterSettings, region: str | None, seconds: float | None) -> str:
    """The estimated cost of `seconds` of the cluster's existence, as a sentence."""
    if seconds is None:
        return "cost: no cluster was created"
    nodes = f"{cluster.number_of_nodes} x {cluster.node_type} in {region}"
    minutes = f"{seconds / 60:.1f} minutes"
    rate = hourly_cost(cluster.node_type, cluster.number_of_nodes, region)
    if rate is None:
        return f"cost: unknown ({nodes} is not in the price table; the cluster existed {minutes})"
    return (
        f"cost: about ${rate * seconds / 3600:.2f} ({nodes} at ${rate:.2f}/hour for {minutes}; "
        f"an estimate from the on-demand price table of {PRICES_TAKEN} in "
        "tasks/cluster/cost.py, not AWS's bill)"
    )


class StarTablesDiffer(Exception):
    """DuckDB and Redshift loaded the same files into different star tables."""

    def __init__(self, comparisons: list[TableComparison]) -> None:
        self.comparisons = comparisons
        differ = [c.table for c in comparisons if not c.equal]
        super().__init__(f"star tables differ between DuckDB and Redshift: {', '.join(differ)}")


@contextmanager
def step(description: str) -> Iterator[None]:
    """Say in the error of a failing step which step it was."""
    try:
        yield
    except Exception as error:
        error.add_note(f"while {description}")
        raise


# --- the flow ------------------------------------------------------------------------------


def clean_up(plan: SmokePlan, aws_credentials: str | None, created_at: float | None) -> str:
    """Delete the run's cluster (waiting until it is gone) and its block, then the run's S3
    objects even if that failed; returns the estimated cost of the cluster's life."""
    cluster = plan.cluster
    waits = cluster.model_dump(include={"timeout_minutes", "poll_seconds"})
    try:
        remove_cluster(cluster.identifier, aws_credentials, block_name=cluster.identifier, **waits)
    except Exception as error:
        error.add_note(
            f"cluster {cluster.identifier} may be left: delete it with "
            f"python flows/cluster.py delete --identifier {cluster.identifier}"
        )
        raise
    finally:
        delete_prefix(plan.run_objects(aws_credentials))
    seconds = None if created_at is None else clock.monotonic() - created_at
    cost = smoke_cost(cluster, aws_region(load_credentials(aws_credentials)), seconds)
    logger = run_logger()
    logger.info("removed cluster %s, its block and %s/", cluster.identifier, plan.run_source)
    logger.info("%s", cost)
    return cost


def tear_down(flow: Any, flow_run: FlowRun, state: State) -> None:
    """State hook: delete the run's cluster, block and S3 objects when the run is cancelled or
    crashed (the tasks' bodies run directly: the run's engine may be gone)."""
    parameters = flow_run.parameters or {}
    cluster = ClusterSettings.model_validate(parameters.get("cluster") or SMOKE_CLUSTER)
    plan = smoke_plan(parameters["source"], cluster, flow_run.id)
    aws_credentials = parameters.get("aws_credentials")
    credentials = load_credentials(aws_credentials)
    identifier = plan.cluster.identifier
    run_logger().warning("run %s %s: deleting cluster %s", flow_run.id, state.name, identifier)
    try:
        delete_cluster.fn(credentials, identifier)
        wait_until_deleted.fn(
            credentials, identifier, cluster.timeout_seconds, cluster.poll_seconds
        )
        delete_warehouse_block.fn(identifier)
    finally:
        delete_prefix.fn(plan.run_objects(aws_credentials))


@flow(name="sparkify-redshift-smoke", on_cancellation=[tear_down], on_crashed=[tear_down])
@fails_in_one_line
def redshift_smoke(
    source: str,
    aws_credentials: str | None = None,
    cluster: ClusterSettings = SMOKE_CLUSTER,
    sample: str = DEFAULT_SAMPLE,
) -> dict[str, Any]:
    """Load the sample directory into a temporary DuckDB file and, through <source>/smoke-<run>/,
    into a Redshift cluster made for this run; ask the cluster what Redshift's documentation
    leaves open (tasks/cluster/questions.py); compare every star table's rows and digest;
    delete the cluster, its block and the uploaded objects whatever happens; estimate the cost.
    Fails (StarTablesDiffer) when a table differs.

    Args:
        source: s3://bucket/prefix the sample is uploaded under (to <source>/smoke-<run>/),
            which the cluster's COPY role may read
        aws_credentials: an AwsCredentials block for AWS (default: boto3's chain)
        cluster: the throwaway cluster's settings (node type, nodes, ingress range, expiry)
        sample: the directory loaded into both warehouses (the bundled sample by default)
    """
    plan = smoke_plan(source, cluster, runtime.flow_run.id)
    created_at = None
    try:
        with step("loading the sample into DuckDB"), TemporaryDirectory() as folder:
            duckdb = str(Path(folder) / "smoke.duckdb")
            etl(sample, duckdb)
            expected = warehouse_digests(duckdb)
        with step(f"uploading the sample to {plan.run_source}/"):
            upload_tree(sample, plan.run_objects(aws_credentials))
        with step(f"creating cluster {plan.cluster.identifier}"):
            created_at = clock.monotonic()
            warehouse = provision_cluster(plan.source, plan.cluster, aws_credentials)["warehouse"]
        with step("loading the sample into Redshift"):
            etl(plan.run_source, warehouse, aws_credentials=aws_credentials)
            actual = warehouse_digests(warehouse)
        with step("asking the cluster what its documentation leaves open"):
            probe = Probe(resolve_warehouse(warehouse), plan.run_objects(aws_credentials))
            probe.cluster_identifier = plan.cluster.identifier
            answers = ask(probe)
            said = "\n".join(f"- {a.question}: {a.answer}" for a in answers)
            run_logger().info("what the cluster answered:\n%s", said)
    except BaseException as error:
        error.add_note(clean_up(plan, aws_credentials, created_at))
        raise
    cost = clean_up(plan, aws_credentials, created_at)
    comparisons = compare_digests(expected, actual)
    run_logger().info("star tables, DuckDB against Redshift:\n%s", format_comparison(comparisons))
    if not all(c.equal for c in comparisons):
        differ = StarTablesDiffer(comparisons)
        differ.add_note(cost)
        raise differ
    return {
        "identifier": plan.cluster.identifier,
        "uploaded_to": plan.run_source,
        "tables": [asdict(c) for c in comparisons],
        "answers": [asdict(a) for a in answers],
        "cost": cost,
    }


# --- the command line ----------------------------------------------------------------------

EXAMPLE = "make redshift-smoke SOURCE=s3://my-bucket/sparkify-smoke"


def source_problem(source: str, sample: str) -> str | None:
    """What is wrong with the command line's source or sample, in one line; None if nothing."""
    if not source:
        return f"no source: name the S3 prefix the sample is uploaded under, e.g. {EXAMPLE}"
    try:
        parse_s3_uri(source)
    except ValueError:
        return (
            f"source {source!r} is not s3://bucket/prefix: Redshift loads by COPY from S3, "
            f"e.g. {EXAMPLE}"
        )
    if not Path(sample).is_dir():
        return f"sample {sample!r} is not a directory with log_data/ and song_data/"
    return None


def failure_lines(error: BaseException) -> list[str]:
    """A failed run in a few lines: the error's first line, then its notes (step, cost)."""
    first = (str(error).strip().splitlines() or [""])[0]
    return [f"{type(error).__name__}: {first}", *getattr(error, "__notes__", [])]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python flows/redshift_smoke.py`."""
    parser = argparse.ArgumentParser(
        description="Load the sample into a throwaway Redshift cluster and into DuckDB, compare "
        "the star tables, delete everything. Costs money (about $0.10 on one dc2.large)."
    )
    parser.add_argument(
        "--source",
        default="",
        help="s3://bucket/prefix: the sample goes to <prefix>/smoke-<run>/ (deleted afterwards) "
        "and the COPY role may read the prefix",
    )
    parser.add_argument(
        "--aws-credentials", help="AwsCredentials block name (default: boto3's standard chain)"
    )
    parser.add_argument("--sample", default=DEFAULT_SAMPLE, help="directory of raw JSON to load")
    fields = ["node_type", "number_of_nodes", "ingress_cidr", "owner"]
    add_cluster_arguments(parser, [*fields, "timeout_minutes", "poll_seconds"])
    add_debug_argument(parser)
    return parser.parse_args(argv)


@command("redshift-smoke")
def main(argv: list[str] | None = None) -> int:
    """Run the smoke test and print the comparison and the cost: 0 when every star table is the
    same on both warehouses, 1 when one differs or the run fails, 2 for a wrong command line."""
    args = parse_args(argv)
    problem = source_problem(args.source, args.sample)
    if problem:
        raise BadArgument(problem)
    cluster = cluster_settings_from_args(args)
    if cluster.ingress_cidr is None:
        print(
            "note: no --ingress-cidr (INGRESS_CIDR=): the cluster is reachable only from inside "
            "its VPC; from a laptop, give your address, e.g. 203.0.113.7/32",
            file=sys.stderr,
        )
    start_temporary_server()
    try:
        report = redshift_smoke(args.source, args.aws_credentials, cluster, args.sample)
    except Exception as error:
        if isinstance(error, StarTablesDiffer):
            print("\n" + format_comparison(error.comparisons))
        print("\nSMOKE FAILED: " + "\n".join(failure_lines(error)), file=sys.stderr)
        return 1
    comparisons = [TableComparison(**row) for row in report["tables"]]
    print("\n" + format_comparison(comparisons))
    print(f"\nall {len(comparisons)} star tables are the same on DuckDB and Redshift")
    print("\nwhat the cluster answered:")
    print("\n".join(f"- {a['question']}: {a['answer']}" for a in report["answers"]))
    print(report["cost"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
