"""Benchmark of the local pipeline: 1M events and 20k song files through the ETL flow on DuckDB.

    python bench/etl_local.py [--events 1000000] [--songs 20000] [--data DIR] [--keep]

Prints wall time per stage, total rows/s and peak RSS, and the floor: the time DuckDB takes
merely to read the same JSON files (read_json, every field typed, materialised). Data is
generated outside the repository (a temporary directory unless --data names one).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from data.generator import generate_dataset  # noqa: E402
from flows.etl import etl  # noqa: E402
from sql import model  # noqa: E402
from tasks.run.report import format_table  # noqa: E402
from tasks.warehouse.duckdb import DUCKDB_TYPES  # noqa: E402
from tasks.warehouse.records import column_kind  # noqa: E402


def read_floor(events: list[str], songs: list[str]) -> dict[str, float]:
    """Seconds DuckDB takes to read and materialise the files with read_json (typed columns)."""
    floor = {}
    con = duckdb.connect()
    for name, table, files in (
        ("events", model.staging_events, events),
        ("songs", model.staging_songs, songs),
    ):
        columns = {c.info["json"]: DUCKDB_TYPES[column_kind(c.type)] for c in table.columns}
        started = time.perf_counter()
        con.execute(
            "create or replace temp table floor as select * from read_json(?, columns = ?, "
            "format = 'newline_delimited')",
            [files, columns],
        )
        floor[name] = time.perf_counter() - started
    con.close()
    return floor


def main() -> None:
    """Generate, load, compare with the floor, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--songs", type=int, default=20_000)
    parser.add_argument("--data", type=Path, help="directory for the generated data (reused)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sparkify-bench-"))
    data = args.data or work / "data"
    started = time.perf_counter()
    if not (data / "log_data").exists():
        generate_dataset(data, events=args.events, songs=args.songs, seed=1, days=30)
    generate_seconds = time.perf_counter() - started

    events = sorted(str(p) for p in (data / "log_data").rglob("*.json"))
    songs = sorted(str(p) for p in (data / "song_data").rglob("*.json"))
    floor = read_floor(events, songs)

    started = time.perf_counter()
    summary = etl(str(data), str(work / "bench.duckdb"))
    flow_seconds = time.perf_counter() - started
    etl_seconds = sum(summary["seconds"].values())
    staged_rows = summary["staged"]["events"]["rows"] + summary["staged"]["songs"]["rows"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"\ndata: {len(events)} event files, {len(songs)} song files, "
        f"{summary['staged']['events']['rows']:,} events (generated in {generate_seconds:.1f}s)"
    )
    rows = [(stage, seconds) for stage, seconds in summary["seconds"].items()]
    rows += [
        ("  of which stage events", summary["staged"]["events"]["seconds"]),
        ("  of which stage songs", summary["staged"]["songs"]["seconds"]),
    ]
    rows += [(f"  of which transform {c['table']}", c["seconds"]) for c in summary["changes"]]
    rows += [
        ("ETL total (without Prefect start-up)", etl_seconds),
        ("flow wall time (with Prefect)", flow_seconds),
        ("floor: read_json events", floor["events"]),
        ("floor: read_json songs", floor["songs"]),
        ("floor total", sum(floor.values())),
    ]
    print(format_table(["stage", "seconds"], [(s, round(v, 2)) for s, v in rows]))
    print(f"\nrows/s (staged rows / ETL time): {staged_rows / etl_seconds:,.0f}")
    print(f"ETL / floor: {etl_seconds / sum(floor.values()):.2f}x")
    print(f"peak RSS: {peak_mb:,.0f} MB")
    print("row counts:", summary["counts"])
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
