"""Generate a synthetic Sparkify data set (log_data/ and song_data/) on local disk.

The committed sample in data/sample was made from the repository root with:

    .venv/bin/python flows/generate.py --events 5000 --songs 150 --out data/sample --seed 42 \\
        --start-date 2018-11-01 --days 30
"""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import BadArgument
from tasks.generator import DEFAULT_START_DATE, generate_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Generate a synthetic Sparkify data set (log_data/ and song_data/)."
    )
    parser.add_argument("--events", type=int, required=True, help="event log lines in all")
    parser.add_argument("--songs", type=int, required=True, help="song metadata files")
    parser.add_argument("--out", type=Path, required=True, help="output root directory")
    parser.add_argument("--seed", type=int, required=True, help="same seed, same bytes")
    parser.add_argument(
        "--start-date",
        type=date.fromisoformat,
        default=DEFAULT_START_DATE,
        help="first day, YYYY-MM-DD (default: %(default)s)",
    )
    parser.add_argument("--days", type=int, default=30, help="days of logs (default: 30)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT/log_data and OUT/song_data if they exist",
    )
    add_debug_argument(parser)
    return parser.parse_args(argv)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse counts out of range and an output that would be overwritten without --overwrite."""
    least = {"events": 0, "songs": 1, "days": 1}
    for option, minimum in least.items():
        if getattr(args, option) < minimum:
            raise BadArgument(
                f"--{option} {getattr(args, option)} is too few: give at least {minimum}"
            )
    for name in ("log_data", "song_data"):
        if not args.overwrite and (args.out / name).exists():
            raise BadArgument(
                f"{args.out / name} exists: pass --overwrite to replace it, or another --out"
            )


@command("generate")
def main(argv: list[str] | None = None) -> None:
    """Generate the data set and print a one-line summary."""
    args = parse_args(argv)
    check_arguments(args)
    started = time.perf_counter()
    try:
        summary = generate_dataset(
            args.out,
            events=args.events,
            songs=args.songs,
            seed=args.seed,
            start_date=args.start_date,
            days=args.days,
            overwrite=args.overwrite,
        )
    except (FileExistsError, ValueError) as error:
        raise BadArgument(str(error)) from error
    print(f"{summary.describe()} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
