"""sparkify-widths: how wide the source's text fields are, against the table model's widths.

python flows/widths.py [--source DIR|s3://bucket/prefix] [--start-date D] [--end-date D]

Descriptive text (names, places, user agents) wider than its star column is cut to it, and
other text wider than its column is a reject, the same on both warehouses; run this on new data
before a load to see which fields would be cut or lose records, and widen the model
(sql/model.py) where needed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from prefect import flow

from tasks.common.cli import add_debug_argument, command, stop_on_interrupt
from tasks.common.errors import fails_in_one_line
from tasks.common.local_server import start_temporary_server
from tasks.run.report import format_table
from tasks.source.files import list_run_files
from tasks.source.resolve import check_source, resolve_source
from tasks.warehouse.widths import measure_widths

DEFAULT_SOURCE = "data/sample"


@flow(name="sparkify-widths")
@fails_in_one_line
def widths(
    source: str = DEFAULT_SOURCE,
    start_date: date | None = None,
    end_date: date | None = None,
    aws_credentials: str | None = None,
) -> list[dict[str, object]]:
    """The widest value of each text field of the source's event files of [start_date,
    end_date] (all when open) and song files, against what the model keeps of it.

    Args:
        source: a directory holding log_data/ and song_data/, s3://bucket/prefix, or an
            s3-bucket block's name
        start_date: the first day of event files to measure (inclusive); from the earliest
            day when empty
        end_date: the last day of event files to measure (inclusive); to the latest day when
            empty
        aws_credentials: an AwsCredentials block for an s3:// source (default: boto3's chain)
    """
    raw_data = resolve_source(source, aws_credentials)
    files = list_run_files(raw_data, start_date, end_date)
    return [w.row() for w in measure_widths(raw_data, files.event_files, files.song_files)]


@command("widths")
def main(argv: list[str] | None = None) -> int:
    """Print the widths; exit status 1 when some value would be a reject for its width."""
    parser = argparse.ArgumentParser(description="Text widths of the source against the model.")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="directory or s3:// prefix")
    parser.add_argument("--start-date", type=date.fromisoformat, help="first day (inclusive)")
    parser.add_argument("--end-date", type=date.fromisoformat, help="last day (inclusive)")
    parser.add_argument("--aws-credentials", help="AwsCredentials block for an s3:// source")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    check_source(args.source)
    stop_on_interrupt("widths", argv)
    start_temporary_server()
    rows = widths(args.source, args.start_date, args.end_date, args.aws_credentials)
    print(format_table(list(rows[0]), [list(r.values()) for r in rows]))
    rejected = (r for r in rows if r["wider values are"] == "rejected")
    return 1 if any(r["values wider"] for r in rejected) else 0


if __name__ == "__main__":
    sys.exit(main())
