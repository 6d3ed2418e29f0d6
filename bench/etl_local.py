"""Benchmark of the local pipeline: the ETL flow on DuckDB against the floor of merely reading
the same files, at 1M and 3M events (and 10M with --10m), 20k song files each.

    python bench/etl_local.py [--data DIR] [--sizes 1000000 3000000] [--10m] [--songs 20000]
                              [--repeat N] [--daily]

The floor is the fastest full read of the same files: DuckDB's read_json of the event files
with every field typed, materialised in any order (as the ETL stages them: DuckDB's
preserve_insertion_order off), plus parsing the song files with orjson (the ETL reads songs that
way too; DuckDB's read_json pays a few hundred microseconds per file). The ETL time
is the flow's body, the flow called on a warm Prefect server: the sum of the stages the run times
(its summary's seconds), which together are all of it, from listing the files through the
warehouse lock, staging, transforms, checks and commit to publishing the artifacts. Prefect's own
start-up and teardown of the flow run (creating it, its heartbeat thread, the final states) come
on top, the same for any input: the flow's wall time is printed beside it.
Floor and ETL each run in a process of their own, so each peak RSS is its own, the files in the
page cache for both. With --repeat N (default 3) floor and ETL each run N times, taking turns, and
the figures are each one's fastest run (its median is printed beside it): the machine is shared
and a single run varies by some 20%. Data sets are generated once under --data (DIR/events-<n>,
kept) or in a temporary directory.

With --daily it measures instead the everyday run, a new day on a warehouse that holds the
others: the data set's last day loaded into a warehouse of every earlier day, beside the same
day loaded into a warehouse of the first day only. The two should take about the same time,
whatever the history held: a run's work follows its input, not the warehouse's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The targets.
FLOOR_RATIO = 3.0  # ETL time / floor time, at 1M events
LINEAR_RATIO = 3.6  # 3M events' time / 1M events' time
PEAK_RSS_MB = 1536  # at 1M and 10M events


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_files(data: Path) -> tuple[list[str], list[str]]:
    """The event and song files of a generated data set."""
    events = sorted(str(p) for p in (data / "log_data").rglob("*.json"))
    songs = sorted(str(p) for p in (data / "song_data").rglob("*.json"))
    return events, songs


def measure_floor(data: Path) -> dict[str, float]:
    """Seconds to read the files at best: events with DuckDB's typed read_json, materialised
    in any order; songs parsed with orjson."""
    import duckdb
    import orjson

    from sql import model
    from tasks.warehouse.duckdb.records import column_kind
    from tasks.warehouse.duckdb.sql import DUCKDB_TYPES

    events, songs = data_files(data)
    for name in events + songs:  # a warm page cache, as the ETL run after it gets
        with open(name, "rb") as warm:
            while warm.read(2**24):
                pass
    columns = {c.info["json"]: DUCKDB_TYPES[column_kind(c.type)] for c in model.staging_events.c}
    # Rows in any order, as the ETL stages them: keeping the files' order costs DuckDB a third
    # more time on this read (0.87 s against 0.64 s at 1M events), work the floor need not do.
    con = duckdb.connect(config={"preserve_insertion_order": False})
    started = time.perf_counter()
    con.execute(
        "create temp table floor as select * from read_json(?, columns = ?, "
        "format = 'newline_delimited')",
        [events, columns],
    )
    rows = con.execute("select count(*) from floor").fetchall()[0][0]
    events_seconds = time.perf_counter() - started
    con.close()
    started = time.perf_counter()
    records = []
    for name in songs:
        with open(name, "rb") as song:
            records.append(orjson.loads(song.read()))
    songs_seconds = time.perf_counter() - started
    return {
        "events": events_seconds,
        "songs": songs_seconds,
        "rows": rows + len(records),
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_etl(data: Path, warehouse: Path) -> dict:
    """The flow's stage timings, staged rows, row counts and this process's peak RSS."""
    from flows.etl import etl

    started = time.perf_counter()
    summary = etl(str(data), str(warehouse))
    staged = summary["staged"]
    return {
        "seconds": summary["seconds"],
        "stage_events": staged["events"]["seconds"],
        "stage_songs": staged["songs"]["seconds"],
        "transforms": {c["table"]: c["seconds"] for c in summary["changes"]},
        "rows": staged["events"]["rows"] + staged["songs"]["rows"],
        "event_rows": staged["events"]["rows"],
        "rejects": staged["events"]["rejects"] + staged["songs"]["rejects"],
        "counts": summary["counts"],
        "flow_seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
    }


def in_child(what: str, *args: str, env: dict[str, str]) -> dict:
    """Run one measurement in a fresh Python process; its result."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", what, *args],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_data(root: Path, events: int, songs: int) -> Path:
    """The data set of that many events (generated once under root)."""
    from tasks.generator import generate_dataset

    out = root / f"events-{events}"
    if not (out / "log_data").exists():
        started = time.perf_counter()
        generate_dataset(out, events=events, songs=songs, seed=1, days=30)
        print(f"generated {events:,} events in {time.perf_counter() - started:.0f}s into {out}")
    return out


def run_size(data: Path, work: Path, env: dict[str, str], repeat: int) -> dict:
    """Floor and ETL of one data set, `repeat` times each taking turns, and the figures derived
    from each one's fastest run (a fresh warehouse for every ETL run)."""
    floors, etls = [], []
    warehouse = work / f"{data.name}.duckdb"
    for _ in range(repeat):
        floors.append(in_child("floor", str(data), env=env))
        warehouse.unlink(missing_ok=True)
        etls.append(in_child("etl", str(data), str(warehouse), env=env))
        warehouse.unlink(missing_ok=True)
    floor_times = [f["events"] + f["songs"] for f in floors]
    etl_times = [sum(e["seconds"].values()) for e in etls]
    floor = floors[floor_times.index(min(floor_times))]
    etl = etls[etl_times.index(min(etl_times))]
    floor_seconds, etl_seconds = min(floor_times), min(etl_times)
    return {
        "floor": {**floor, "peak_rss_mb": max(f["peak_rss_mb"] for f in floors)},
        "etl": {**etl, "peak_rss_mb": max(e["peak_rss_mb"] for e in etls)},
        "floor_seconds": floor_seconds,
        "etl_seconds": etl_seconds,
        "floor_median": statistics.median(floor_times),
        "etl_median": statistics.median(etl_times),
        "runs": repeat,
        "ratio": etl_seconds / floor_seconds,
        "rows_per_second": etl["rows"] / etl_seconds,
    }


def source_of_days(data: Path, out: Path, days: list[str]) -> Path:
    """A source at `out` holding the data set's song files and these of its event files
    (symbolic links, no copies)."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "song_data").exists():
        (out / "song_data").symlink_to(data / "song_data")
    for name in days:
        link = out / Path(name).relative_to(data)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(name)
    return out


def run_daily(data: Path, work: Path, env: dict[str, str], repeat: int) -> dict:
    """A day's run (the data set's last day) on a warehouse holding every earlier day, against
    the same run on a warehouse holding the first day only: the run's time should not grow
    with the warehouse's history. Each warehouse is loaded once, untimed, and copied afresh
    for each of `repeat` runs of the day; the figures are each one's fastest run."""
    events, _ = data_files(data)
    last = events[-1]
    results = {}
    for held in (events[:1], events[:-1]):
        history = f"{len(held)} day{'s' if len(held) > 1 else ''} held"
        source = work / f"daily-{data.name}-{len(held)}"
        loaded = work / f"daily-{data.name}-{len(held)}.duckdb"
        before = in_child("etl", str(source_of_days(data, source, held)), str(loaded), env=env)
        source_of_days(data, source, [last])
        runs = []
        for _ in range(repeat):
            warehouse = work / "daily.duckdb"
            shutil.copyfile(loaded, warehouse)
            # On disk before the run: its commit's sync would otherwise write out the copy.
            with open(warehouse, "rb+") as copy:
                os.fsync(copy.fileno())
            runs.append(in_child("etl", str(source), str(warehouse), env=env))
            warehouse.unlink()
        loaded.unlink()
        shutil.rmtree(source)
        fastest = min(runs, key=lambda run: sum(run["seconds"].values()))
        results[history] = {"plays held": before["counts"]["songplays"], "run": fastest}
    return results


def report_daily(size: int, results: dict) -> None:
    """Print a data set's day runs, side by side."""
    from tasks.run.report import format_table

    runs = {history: result["run"] for history, result in results.items()}
    stages = list(next(iter(runs.values()))["seconds"])
    rows = [(stage, *(round(r["seconds"][stage], 2) for r in runs.values())) for stage in stages]
    rows.append(("total", *(round(sum(r["seconds"].values()), 2) for r in runs.values())))
    rows.append(("songplays held before", *(f"{r['plays held']:,}" for r in results.values())))
    rows.append(("events of the day", *(f"{r['event_rows']:,}" for r in runs.values())))
    print(f"\n{size:,} events: the last day's run, fastest of each (seconds)")
    print(format_table(["stage", *runs], rows))


def report(size: int, result: dict) -> None:
    """Print one data set's figures."""
    from tasks.run.report import format_table

    floor, etl = result["floor"], result["etl"]
    rows = [(stage, seconds) for stage, seconds in etl["seconds"].items()]
    rows += [
        ("  of which stage events", etl["stage_events"]),
        ("  of which stage songs", etl["stage_songs"]),
    ]
    rows += [(f"  of which transform {table}", s) for table, s in etl["transforms"].items()]
    rows += [
        ("ETL total (the flow's body)", result["etl_seconds"]),
        ("flow wall time (with Prefect's start-up)", etl["flow_seconds"]),
        ("floor: read_json events, typed", floor["events"]),
        ("floor: orjson songs", floor["songs"]),
        ("floor total", result["floor_seconds"]),
    ]
    print(f"\n{size:,} events: {etl['rows']:,} rows staged, {etl['rejects']} rejected")
    print(f"fastest of {result['runs']} runs each (ETL's stages from its fastest run)")
    print(format_table(["stage", "seconds"], [(s, round(v, 2)) for s, v in rows]))
    print(
        f"median of the runs: ETL {result['etl_median']:.2f}s, "
        f"floor {result['floor_median']:.2f}s "
        f"({result['etl_median'] / result['floor_median']:.2f}x)"
    )
    print(f"ETL / floor: {result['ratio']:.2f}x (target <= {FLOOR_RATIO}x)")
    print(f"rows/s (staged rows / ETL time): {result['rows_per_second']:,.0f}")
    print(
        f"peak RSS, highest of the runs: ETL {etl['peak_rss_mb']:,.0f} MB "
        f"(target <= {PEAK_RSS_MB:,}), floor {floor['peak_rss_mb']:,.0f} MB"
    )
    print("row counts:", etl["counts"])


def start_prefect_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A Prefect server of the benchmark's own (its own PREFECT_HOME), warm before any run."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return server, url
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the Prefect server did not start") from None
            time.sleep(0.5)


def main() -> None:
    """Generate (or reuse) the data sets, measure floor and ETL of each, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="directory of the data sets (kept, reused)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="add 10M events")
    parser.add_argument("--songs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of floor and ETL each")
    parser.add_argument(
        "--daily",
        action="store_true",
        help="instead: the last day's run on a warehouse of the earlier days, and on one of the "
        "first day only",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, *paths = args.child
        measure = measure_floor if what == "floor" else measure_etl
        print(json.dumps(measure(*map(Path, paths))))
        return

    sizes = [*args.sizes, *([10_000_000] if args.ten_million else [])]
    work = Path(tempfile.mkdtemp(prefix="sparkify-bench-"))
    root = args.data or work / "data"
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PYTHONPATH": str(PROJECT_ROOT)}
    server, url = start_prefect_server(env)
    env["PREFECT_API_URL"] = url
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores, {os.uname().nodename}")
    results = {}
    try:
        for size in sizes:
            data = ensure_data(root, size, args.songs)
            if args.daily:
                report_daily(size, run_daily(data, work, env, max(args.repeat, 1)))
                continue
            results[size] = run_size(data, work, env, max(args.repeat, 1))
            report(size, results[size])
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    if 1_000_000 in results and 3_000_000 in results:
        growth = results[3_000_000]["etl_seconds"] / results[1_000_000]["etl_seconds"]
        print(f"\n3M / 1M ETL time: {growth:.2f}x (target <= {LINEAR_RATIO}x)")


if __name__ == "__main__":
    main()
