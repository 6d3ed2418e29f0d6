"""sparkify-etl: stage the raw JSON, transform it into the star schema, check it, publish it.

python flows/etl.py [--source DIR] [--warehouse PATH|BLOCK] [--start-date D] [--end-date D]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from prefect import flow
from prefect.flows import load_flow_from_entrypoint

from tasks.cluster.settings import add_cluster_arguments, cluster_settings_from_args
from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.run.pipeline import run_etl
from tasks.run.quality import QualityCheckFailed
from tasks.run.report import count_of, format_table
from tasks.run.schedule import check_date_order
from tasks.source.resolve import check_s3_source, check_source
from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE
from tasks.warehouse.resolve import check_warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = str(PROJECT_ROOT / "data" / "sample")


@flow(name="sparkify-etl")
@fails_in_one_line
def etl(
    source: str = DEFAULT_SOURCE,
    warehouse: str = DEFAULT_DUCKDB_FILE,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    days_back: int | None = None,
    reload: bool = False,
) -> dict:
    """Load the source's events of [start_date, end_date] (all days when open) and all songs,
    the files new or changed since the warehouse loaded them.
    source: a directory, s3://bucket/prefix or s3-bucket/BLOCK; warehouse: a DuckDB path or a
    warehouse block; aws_credentials: an AwsCredentials block for an s3:// source; days_back:
    load only the day that many days before the run's scheduled start (UTC), for schedules;
    reload: stage every file of the run again, loaded before or not."""
    return run_etl(source, warehouse, start_date, end_date, aws_credentials, days_back, reload)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python flows/etl.py`."""
    parser = argparse.ArgumentParser(description="Load Sparkify's JSON into the star schema.")
    parser.add_argument(
        "--source", default=DEFAULT_SOURCE, help="directory with log_data/ and song_data/"
    )
    parser.add_argument(
        "--warehouse", default=DEFAULT_DUCKDB_FILE, help="DuckDB file path or warehouse block name"
    )
    parser.add_argument("--start-date", type=date.fromisoformat, help="first day (inclusive)")
    parser.add_argument("--end-date", type=date.fromisoformat, help="last day (inclusive)")
    parser.add_argument(
        "--aws-credentials",
        help="AwsCredentials block for an s3:// source (default: boto3's chain)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="stage every file of the run again, also those the warehouse loaded before and "
        "that are unchanged since (by default only new and changed files are staged)",
    )
    cluster = parser.add_argument_group("ephemeral Redshift cluster (flows/ephemeral.py)")
    cluster.add_argument(
        "--ephemeral-cluster",
        action="store_true",
        help="create a Redshift cluster for this run, load into it, delete it afterwards "
        "(--source must be on S3; --warehouse is ignored)",
    )
    add_cluster_arguments(cluster, ["node_type", "number_of_nodes", "ingress_cidr"])
    add_debug_argument(parser)
    return parser.parse_args(argv)


@command("etl")
def main(argv: list[str] | None = None) -> int:
    """Run the flow and print the row counts: exit status 1 when a quality check fails, 2 (one
    line, checked before any Prefect server starts where it can be) for a user's mistake."""
    args = parse_args(argv)
    check_date_order(args.start_date, args.end_date)
    if args.ephemeral_cluster:
        check_s3_source(args.source)
    else:
        check_source(args.source)
        check_warehouse(args.warehouse)
    start_temporary_server()
    try:
        if args.ephemeral_cluster:
            # Loaded by path, not imported: flows never import flows.
            entrypoint = f"{PROJECT_ROOT}/flows/ephemeral.py:ephemeral_etl"
            ephemeral_etl = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
            summary = ephemeral_etl(
                args.source,
                args.start_date,
                args.end_date,
                args.aws_credentials,
                cluster=cluster_settings_from_args(args),
            )
        else:
            summary = etl(
                args.source,
                args.warehouse,
                args.start_date,
                args.end_date,
                args.aws_credentials,
                reload=args.reload,
            )
    except QualityCheckFailed as error:
        print(f"\nETL FAILED: {error}", file=sys.stderr)
        return 1
    staged = summary["staged"]
    rejects = staged["events"]["rejects"] + staged["songs"]["rejects"]
    unchanged = summary["unchanged_files"]
    skipped = (
        f"; {unchanged['events']} event files and {unchanged['songs']} song files unchanged "
        "since loaded, not staged (--reload stages them)"
        if any(unchanged.values())
        else ""
    )
    print(
        f"\nLoaded {summary['event_files']} event files and {summary['song_files']} song files "
        f"into {summary['warehouse']} ({count_of(rejects, 'record')} rejected; see load_rejects)"
        f"{skipped}\n"
    )
    print(format_table(["table", "rows"], sorted(summary["counts"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
