"""sparkify-etl: stage the raw JSON, transform it into the star schema, check it, publish it.

python flows/etl.py [--source DIR] [--warehouse PATH|BLOCK] [--start-date D] [--end-date D]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.flows import load_flow_from_entrypoint
from prefect.runtime import flow_run
from prefect.states import State
from prefect.utilities.annotations import quote

from tasks.cluster.settings import add_cluster_arguments, cluster_settings_from_args
from tasks.common.cli import (
    add_debug_argument,
    add_flow_parameters,
    command,
    stop_on_interrupt,
)
from tasks.common.errors import BadArgument, fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.run.artifacts import publish_load, publish_rejects
from tasks.run.ledger import choose_files
from tasks.run.outcome import etl_run_name, final_state, outcome
from tasks.run.pipeline import (
    EtlSummary,
    RunChecks,
    RunInParts,
    StageTimer,
    attempts_of,
    one_run_at_a_time,
    stage_part,
    the_runs_transaction,
)
from tasks.run.quality import QualityCheckFailed
from tasks.run.report import count_of, format_table
from tasks.run.schedule import check_date_order, days_of_the_run
from tasks.run.transform import transform
from tasks.source.files import list_run_files
from tasks.source.resolve import check_s3_source, check_source, resolve_source
from tasks.warehouse.duckdb.warehouse import DEFAULT_DUCKDB_FILE
from tasks.warehouse.resolve import check_warehouse, resolve_warehouse
from tasks.warehouse.tables import count_rows, ensure_tables

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = str(PROJECT_ROOT / "data" / "sample")


@flow(name="sparkify-etl", flow_run_name=etl_run_name)
@fails_in_one_line
def etl(
    source: str = DEFAULT_SOURCE,
    warehouse: str = DEFAULT_DUCKDB_FILE,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    days_back: int | None = None,
    reload: bool = False,
) -> State:
    """Load the source's events of [start_date, end_date] (every day when open) and its songs
    into the star schema: the files new or changed since the warehouse loaded them. The run
    ends in a Completed state named by its outcome (tasks/run/outcome.py); a caller of the flow
    gets the run's summary, a dict.

    Args:
        source: a directory holding log_data/ and song_data/, s3://bucket/prefix, or an
            s3-bucket block's name
        warehouse: a DuckDB file path ending in .duckdb, or a saved warehouse block TYPE/NAME
        start_date: the first day of events to load (inclusive); every day when empty
        end_date: the last day of events to load (inclusive); every day when empty
        aws_credentials: an AwsCredentials block for an s3:// source (default: boto3's chain)
        days_back: load only the day that many days before the run's scheduled start (UTC),
            for schedules: 1 loads yesterday
        reload: stage every file of the run again, also those loaded before and unchanged since
    """
    return load(source, warehouse, start_date, end_date, aws_credentials, days_back, reload)


# The deployments' flows: the same flow (by name) as etl, each with the parameters its
# deployment uses only, so that the UI's run form shows no other.


@flow(name="sparkify-etl", flow_run_name=etl_run_name)
@fails_in_one_line
def daily_etl(
    source: str = DEFAULT_SOURCE,
    warehouse: str = DEFAULT_DUCKDB_FILE,
    days_back: int = 1,
    aws_credentials: str | None = None,
    reload: bool = False,
) -> State:
    """Load one day's events, the day `days_back` days before the run's scheduled start (UTC),
    and the songs new or changed since the warehouse loaded them.

    Args:
        source: a directory holding log_data/ and song_data/, s3://bucket/prefix, or an
            s3-bucket block's name
        warehouse: a DuckDB file path ending in .duckdb, or a saved warehouse block TYPE/NAME
        days_back: which day: 1 loads the day before the scheduled start, 0 that day itself
        aws_credentials: an AwsCredentials block for an s3:// source (default: boto3's chain)
        reload: stage the day's file and the songs again, also if unchanged since their load
    """
    return load(source, warehouse, None, None, aws_credentials, days_back, reload)


@flow(name="sparkify-etl", flow_run_name=etl_run_name)
@fails_in_one_line
def backfill_etl(
    source: str = DEFAULT_SOURCE,
    warehouse: str = DEFAULT_DUCKDB_FILE,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
    reload: bool = False,
) -> State:
    """Load the events of [start_date, end_date] (every day when open) and the songs: the files
    new or changed since the warehouse loaded them.

    Args:
        source: a directory holding log_data/ and song_data/, s3://bucket/prefix, or an
            s3-bucket block's name
        warehouse: a DuckDB file path ending in .duckdb, or a saved warehouse block TYPE/NAME
        start_date: the first day to load (inclusive); from the earliest day when empty
        end_date: the last day to load (inclusive); to the latest day when empty
        aws_credentials: an AwsCredentials block for an s3:// source (default: boto3's chain)
        reload: stage every file of the range again, also those unchanged since their load
    """
    return load(source, warehouse, start_date, end_date, aws_credentials, None, reload)


def load(
    source: str,
    warehouse: str,
    start_date: date | None,
    end_date: date | None,
    aws_credentials: str | None,
    days_back: int | None,
    reload: bool,
) -> State:
    """The ETL flows' body: stage, transform, check and publish, in one transaction."""
    start_date, end_date = days_of_the_run(
        start_date, end_date, days_back, flow_run.scheduled_start_time
    )
    target = resolve_warehouse(warehouse)
    raw_data = resolve_source(source, aws_credentials)
    timer = StageTimer()
    with timer("list files"):
        files = list_run_files(raw_data, start_date, end_date)

    with one_run_at_a_time(target, timer):
        for attempt in attempts_of("the load"):
            with attempt, the_runs_transaction(target, timer) as conn:
                with timer("create tables"):
                    ensure_tables(conn)
                with timer("stage"):
                    # quote(): Prefect would otherwise visit every file name of this task
                    # parameter, for no dependency to track.
                    plan = choose_files(conn, quote(files), reload)
                parts = RunInParts(target, plan.files)
                checks = RunChecks(len(parts))
                for part in parts:
                    with timer("stage"):
                        parts.staged.append(stage_part(target, conn, raw_data, part, parts.cut))
                    if parts.all_staged():  # published whatever the transforms find
                        with timer("publish"):
                            publish_rejects(parts.total_staged().reports(), target.describe())
                    with timer("transform + check"):
                        parts.changes.append(transform(conn))
                        checks.after_part(conn)
                with timer("transform + check"):
                    checked = checks.at_end(conn)
                with timer("count rows"):
                    counts = count_rows(conn)

    summary = EtlSummary.build(target, plan, parts, checked, counts, timer.seconds)
    with timer("publish"):
        publish_load(
            parts.total_staged().reports(),
            parts.total_changes(),
            counts,
            summary.warehouse,
            timer.seconds,
            files,
            summary.unchanged_files,
            outcome(summary)[1],
        )
    rows = ", ".join(f"{table} {n:,}" for table, n in sorted(counts.items()))
    get_run_logger().info("published to %s: %s", summary.warehouse, rows)
    return final_state(summary)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python flows/etl.py`: the flow's parameters, as its form in the
    Prefect UI shows them (but days_back, which only a schedule gives meaning), and the
    ephemeral cluster's."""
    parser = argparse.ArgumentParser(description="Load Sparkify's JSON into the star schema.")
    add_flow_parameters(parser, etl, leave_out=("days_back",))
    cluster = parser.add_argument_group("ephemeral Redshift cluster (flows/ephemeral.py)")
    cluster.add_argument(
        "--ephemeral-cluster",
        action="store_true",
        help="create a Redshift cluster for this run, load into it, delete it afterwards "
        "(--source must be on S3; --warehouse is ignored)",
    )
    cluster.add_argument(
        "--data-api",
        action="store_true",
        help="with --ephemeral-cluster: load through the Redshift Data API (HTTPS), not the "
        "cluster's port",
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
    if args.data_api and not args.ephemeral_cluster:
        raise BadArgument(
            "--data-api goes with --ephemeral-cluster: to load an existing cluster through the "
            "Data API, give --warehouse redshift-data://CLUSTER/DATABASE"
        )
    if args.ephemeral_cluster:
        check_s3_source(args.source)
    else:
        check_source(args.source)
        check_warehouse(args.warehouse)
        stop_on_interrupt("etl", argv)  # an ephemeral cluster's teardown must run: not there
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
                data_api=args.data_api,
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
