"""A user's mistake ends in one line naming the problem and the fix, exit status 2, no traceback:
checked before any Prefect server starts where the command line can tell, and inside a flow run
(Prefect's logs and the run's state message carry the line, never a traceback) where it cannot."""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.common.cli import INTERRUPTED_LINE, INTERRUPTED_STATUS, run_cli
from tasks.common.errors import (
    BadArgument,
    DatesReversed,
    NotADuckDBFile,
    SourceNotFound,
    UnknownWarehouse,
    UserError,
    UserErrorLogFilter,
    WarehouseBusy,
    set_debug,
)
from tasks.common.retry import is_transient
from tasks.source.files import SourceLayoutError
from tasks.warehouse.resolve import check_warehouse, warehouse_block_types, warehouse_kind
from tests.conftest import PROJECT_ROOT, Said
from tests.helpers import run
from tests.shared_servers import free_port, migrated_home

SOURCE_FIX = (
    "give the source (--source) a directory holding log_data/ and song_data/, or s3://bucket/prefix"
)


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """No PREFECT_API_URL, a PREFECT_HOME of the test's own: a flow run here would start a
    temporary Prefect server (and say so), so an error without that line came before it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("SPARKIFY_DEBUG", None)
    return {
        **env,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


@pytest.fixture
def not_duckdb(tmp_path: Path) -> Path:
    """A SQLite database named like a DuckDB file."""
    path = tmp_path / "wh.duckdb"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (a integer)")
    return path


# --- mistakes the command line finds before any Prefect server starts ----------------------


def block_types_named() -> str:
    """The warehouse block types as the one line names them: the project's two, and those a test
    module of this process defined (the PostgreSQL stand-in's), in order."""
    types = warehouse_block_types()
    assert {"sparkify-duckdb-warehouse", "sparkify-redshift-warehouse"} <= set(types)
    return " or ".join(f"{slug}/NAME" for slug in types)


def argument_cases(tmp: Path, not_duckdb: Path) -> list[tuple[str, list[str], str]]:
    (tmp / "no-logs" / "song_data").mkdir(parents=True)
    (tmp / "file.txt").write_text("x")
    (tmp / "generated" / "log_data").mkdir(parents=True)
    generate = ["--events", "10", "--songs", "2", "--seed", "1"]
    return [
        ("etl.py", ["--source", f"{tmp}/nope"], f"source {tmp}/nope does not exist: {SOURCE_FIX}"),
        (
            "etl.py",
            ["--start-date", "2018-11-07", "--end-date", "2018-11-01"],
            "start date 2018-11-07 is after end date 2018-11-01: "
            "give the start date (--start-date) on or before the end date (--end-date)",
        ),
        (
            "etl.py",
            ["--warehouse", f"{tmp}/x.sqlite"],
            f"warehouse {tmp}/x.sqlite is not a DuckDB file name (.sqlite): give the warehouse "
            "(--warehouse) a "
            "path ending in .duckdb (created on first use) or a saved block TYPE/NAME",
        ),
        (
            "etl.py",
            ["--warehouse", str(not_duckdb)],
            f"warehouse {not_duckdb} is a SQLite database, not a DuckDB one: give the warehouse "
            "(--warehouse) "
            "a DuckDB file, or a new path ending in .duckdb to create one",
        ),
        (
            "etl.py",
            ["--warehouse", f"{tmp}/missing/dir/wh.duckdb"],
            f"warehouse {tmp}/missing/dir/wh.duckdb is in a directory that does not exist "
            f"({tmp}/missing/dir): create it first (mkdir -p {tmp}/missing/dir), or give the "
            "warehouse (--warehouse) a path in an existing directory",
        ),
        (
            "etl.py",
            ["--warehouse", "production"],
            "warehouse 'production' is neither a DuckDB file nor a saved block: give the "
            "warehouse (--warehouse) "
            f"a path ending in .duckdb, or a block as {block_types_named()}",
        ),
        (
            "etl.py",
            ["--warehouse", "sparkify-duckdb-warehous/laptop"],
            "warehouse sparkify-duckdb-warehous/laptop: sparkify-duckdb-warehous is no warehouse "
            f"block type: give the warehouse (--warehouse) a block as {block_types_named()}, or a "
            "path ending in "
            ".duckdb",
        ),
        (
            "etl.py",
            ["--source", "s3:/bucket/raw"],
            f"source s3:/bucket/raw is neither a directory nor s3://bucket/prefix: {SOURCE_FIX}",
        ),
        (
            "etl.py",
            ["--source", "s3:///raw"],
            "source s3:///raw: it names no bucket: give the source (--source) s3://bucket/prefix",
        ),
        (
            "etl.py",
            ["--source", f"{tmp}/file.txt"],
            f"source {tmp}/file.txt is a file, not a directory: {SOURCE_FIX}",
        ),
        (
            "etl.py",
            ["--source", f"{tmp}/no-logs"],
            f"{tmp}/no-logs has no log_data/ folder: give the source (--source) the directory or "
            "s3:// prefix "
            "that holds log_data/ and song_data/",
        ),
        (
            "etl.py",
            ["--ephemeral-cluster", "--source", f"{tmp}/no-logs"],
            f"source {tmp}/no-logs is not on S3: Redshift loads by COPY from S3: give the source "
            "(--source) "
            "s3://bucket/prefix or s3-bucket/NAME",
        ),
        (
            "analytics.py",
            ["--warehouse", f"{tmp}/missing.duckdb"],
            f"warehouse {tmp}/missing.duckdb does not exist yet: load it first with python "
            f"flows/etl.py --warehouse {tmp}/missing.duckdb, or name an existing one",
        ),
        (
            "create_tables.py",
            ["--warehouse", str(tmp)],
            f"warehouse {tmp} is a directory: give the warehouse (--warehouse) a file in it, such "
            "as "
            f"{tmp}/sparkify.duckdb",
        ),
        (
            "cluster.py",
            ["create", "--source", "data/sample"],
            "source data/sample is not on S3: Redshift loads by COPY from S3: give the source "
            "(--source) "
            "s3://bucket/prefix or s3-bucket/NAME",
        ),
        (
            "cluster.py",
            ["create", "--source", "s3://bkt/r*"],
            "source s3://bkt/r* holds a wildcard (*): the cluster's role would be granted read on "
            "every prefix it matches; give the exact prefix, e.g. s3://bucket/raw",
        ),
        (
            "etl.py",
            ["--ephemeral-cluster", "--source", "s3://bkt/raw/../other"],
            "source s3://bkt/raw/../other holds a . or .. segment: S3 keys are taken as they are "
            "written; give the exact prefix, e.g. s3://bucket/raw",
        ),
        (
            "generate.py",
            [*generate, "--out", f"{tmp}/generated"],
            f"{tmp}/generated/log_data exists: pass --overwrite to replace it, or another --out",
        ),
        (
            "generate.py",
            [*generate, "--out", f"{tmp}/g2", "--days", "0"],
            "--days 0 is too few: give at least 1",
        ),
        (
            "redshift_smoke.py",
            ["--source", "data/sample"],
            "source 'data/sample' is not s3://bucket/prefix: Redshift loads by COPY from S3, "
            "e.g. make redshift-smoke SOURCE=s3://my-bucket/sparkify-smoke",
        ),
    ]


CASES = [
    "missing-source",
    "dates-reversed",
    "sqlite-suffix",
    "sqlite-file-named-duckdb",
    "warehouse-in-a-missing-directory",
    "neither-file-nor-block",
    "unknown-block-type",
    "malformed-s3-scheme",
    "s3-without-bucket",
    "source-is-a-file",
    "source-without-log-data",
    "ephemeral-needs-s3",
    "analytics-without-warehouse",
    "warehouse-is-a-directory",
    "cluster-create-needs-s3",
    "cluster-source-with-a-wildcard",
    "ephemeral-source-with-dot-dot",
    "generate-would-overwrite",
    "generate-zero-days",
    "smoke-source-not-s3",
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASES)
def test_a_wrong_argument_is_one_line_and_status_2_before_any_server_starts(
    case: int, tmp_path: Path, not_duckdb: Path, command_line: Callable[..., Said]
) -> None:
    script, args, message = argument_cases(tmp_path, not_duckdb)[case]
    prog = {"redshift_smoke.py": "redshift-smoke"}.get(script, script.removesuffix(".py"))
    said = command_line(script, *args)

    assert said.status == 2, said
    assert said.err.splitlines() == [f"{prog}: {message}"], said.err
    assert said.out == ""
    assert "Traceback" not in said.out + said.err
    # The line came before the command line started a Prefect server, so before any flow run.
    assert said.server_starts == 0


def test_an_unreachable_prefect_api_is_one_line_before_any_run(
    tmp_path: Path, command_line: Callable[..., Said]
) -> None:
    # Prefect reads PREFECT_API_URL into its settings when imported: a setting of this call's,
    # not the environment, is what the command line sees in this process.
    api = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: api}):
        said = command_line("etl.py", "--warehouse", str(tmp_path / "wh.duckdb"))

    assert said.status == 2, said.err
    assert said.err.splitlines() == [
        f"etl: the Prefect API at {api} (PREFECT_API_URL) cannot be reached "
        "(ConnectError): start that server (make server), or unset PREFECT_API_URL to run on a "
        "temporary local server"
    ]
    assert said.out == ""
    assert said.server_starts == 0  # the check failed: no flow run began
    assert not (tmp_path / "wh.duckdb").exists()


def test_a_mistake_in_a_script_is_one_line_with_no_server_and_the_file_untouched(
    offline_env: dict[str, str], not_duckdb: Path, tmp_path: Path
) -> None:
    """The one case as a user meets it: a process of its own with no Prefect server."""
    before = not_duckdb.read_bytes()
    done = run("etl.py", "--warehouse", str(not_duckdb), env=offline_env)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"etl: warehouse {not_duckdb} is a SQLite database, not a DuckDB one: give the warehouse "
        "(--warehouse) "
        "a DuckDB file, or a new path ending in .duckdb to create one"
    ]
    assert done.stdout == ""
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()
    assert not_duckdb.read_bytes() == before


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback_above_the_line(
    how: str, tmp_path: Path, command_line: Callable[..., Said], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["--source", str(tmp_path / "nope")]
    if how == "flag":
        args.append("--debug")
    else:
        monkeypatch.setenv("SPARKIFY_DEBUG", "1")
    said = command_line("etl.py", *args)
    assert said.status == 2
    assert "Traceback (most recent call last)" in said.err
    assert "tasks.common.errors.SourceNotFound" in said.err
    assert last_line(said.err) == f"etl: source {tmp_path}/nope does not exist: {SOURCE_FIX}"


def test_argparse_mistakes_stay_argparse_s(
    command_line: Callable[..., Said], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        command_line("etl.py", "--start-date", "2018-13-01")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    # argparse's own usage and error lines (its prog is the process's argv[0]).
    assert err.startswith("usage: ")
    assert ": error: argument --start-date: invalid fromisoformat value" in last_line(err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "module",
    [
        "etl",
        "analytics",
        "create_tables",
        "cluster",
        "janitor",
        "generate",
        "redshift_smoke",
        "deploy_setup",
    ],
)
def test_every_command_line_takes_debug(module: str, capsys: pytest.CaptureFixture[str]) -> None:

    main = importlib.import_module(f"flows.{module}").main
    argv = ["status", "--help"] if module == "cluster" else ["--help"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert "--debug" in capsys.readouterr().out


# --- mistakes only a flow run can find: one line in Prefect's logs and the run's state ------


def flow_run_of(flow_name: str, parameter: str, value: str):
    """The one run of the flow (on the session's server) given that parameter value."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])), limit=200
        )
    (found,) = [r for r in runs if r.parameters.get(parameter) == value]
    return found


def logs_of(flow_run_id: uuid.UUID) -> list[str]:
    """Every log message the run's flow and tasks sent to the server (a run of this process's
    sends its logs in the background: those still queued are sent first)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def block_name() -> str:
    return "cli-errors-" + uuid.uuid4().hex[:8]


@pytest.fixture
def console(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log records of an in-process run that Prefect's console handler gets (it writes to
    the stream it found at start-up, which capsys does not capture): Prefect's at INFO, as it
    logs by default, others at WARNING (the root logger's level, left as it is). `.text` has
    each message with its traceback, if any; `.messages` the messages alone."""
    caplog.set_level(logging.INFO, logger="prefect")
    return caplog


@pytest.mark.usefixtures("prefect_server")
def test_a_block_that_does_not_exist_is_one_line_in_the_logs_and_the_state(
    command_line: Callable[..., Said], console: pytest.LogCaptureFixture
) -> None:
    spec = f"sparkify-duckdb-warehouse/{block_name()}"
    said = command_line("etl.py", "--warehouse", spec)

    assert said.status == 2, said.err
    assert said.server_starts == 1  # the flow run came after the server's check
    assert len(said.err.splitlines()) == 1, said.err
    line = last_line(said.err).removeprefix("etl: ")
    assert line.startswith(f"warehouse block {spec} does not exist"), said.err
    assert "give the warehouse (--warehouse)" in line
    assert ".duckdb" in line
    assert "Traceback" not in said.out + said.err + console.text
    # No HTTP 404 of Prefect's API shows through (a port or an ID may hold the digits 404).
    assert not re.search(r"\b404\b|Not Found", said.err + console.text)
    assert console.messages.count(line) == 1  # logged once, as the line
    run_ = flow_run_of("sparkify-etl", "warehouse", spec)
    assert run_.state.is_failed()
    assert run_.state.message == line  # the UI shows the line as it is
    logs = logs_of(run_.id)
    assert any(line in message for message in logs), logs
    assert not any("Traceback" in message for message in logs), logs


@pytest.mark.usefixtures("prefect_server")
def test_an_aws_credentials_block_that_does_not_exist_is_one_line(
    command_line: Callable[..., Said], console: pytest.LogCaptureFixture
) -> None:
    name = block_name()
    said = command_line("cluster.py", "status", "--aws-credentials", name)

    assert said.status == 2, said.err
    assert len(said.err.splitlines()) == 1, said.err
    line = last_line(said.err).removeprefix("cluster: ")
    assert line.startswith(f"no AwsCredentials block is named '{name}'"), said.err
    assert "Traceback" not in said.out + said.err + console.text


@pytest.mark.usefixtures("prefect_server")
def test_a_saved_block_naming_a_file_that_is_not_duckdb_fails_at_once(
    not_duckdb: Path, command_line: Callable[..., Said], console: pytest.LogCaptureFixture
) -> None:
    from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse

    name = block_name()
    DuckDBWarehouse(path=str(not_duckdb)).save(name)
    before = not_duckdb.read_bytes()
    said = command_line("etl.py", "--warehouse", f"sparkify-duckdb-warehouse/{name}")

    assert said.status == 2, said.err
    assert said.err.splitlines() == [
        f"etl: warehouse block sparkify-duckdb-warehouse/{name}'s path {not_duckdb} is a SQLite "
        f"database, not a DuckDB one: point block sparkify-duckdb-warehouse/{name} at a DuckDB "
        "file, or a new path ending in .duckdb to create one"
    ]
    # One attempt: no retry was scheduled (the retries alone would wait about 40 s).
    logged = "\n".join(console.messages)
    assert "Retry" not in logged
    assert "retrying" not in logged
    assert logged.count("Finished in state Failed(") == 1  # the flow run, once
    assert "Traceback" not in said.out + said.err + console.text
    assert not_duckdb.read_bytes() == before


USER_ERROR_IN_A_TASK = """
import sys

sys.path.insert(0, {root!r})

from prefect import flow, task

from tasks.common.errors import BadArgument
from tasks.common.retry import RETRY_TRANSIENT


@task(**RETRY_TRANSIENT)
def check_it(marker: str) -> None:
    raise BadArgument("the thing is wrong: give the right thing")


@flow(name="sparkify-cli-errors-demo")
def demo(marker: str) -> None:
    check_it(marker)


try:
    demo(sys.argv[1])
except BadArgument as error:
    print("caught:", error, file=sys.stderr)
"""


@pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])
def test_a_user_error_in_a_task_is_one_line_and_never_retried(
    debug: bool, cli_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "demo.py"
    script.write_text(USER_ERROR_IN_A_TASK.format(root=str(PROJECT_ROOT)))
    marker = uuid.uuid4().hex
    env = {**cli_env, "SPARKIFY_DEBUG": "1" if debug else "0"}
    done = subprocess.run(
        [sys.executable, str(script), marker], env=env, capture_output=True, text=True, timeout=120
    )
    line = "the thing is wrong: give the right thing"

    assert last_line(done.stderr) == f"caught: {line}", done.stderr
    assert "not retried: a user's mistake (BadArgument)" in done.stderr
    assert "Retry 1/3" not in done.stderr
    run_ = flow_run_of("sparkify-cli-errors-demo", "marker", marker)
    assert run_.state.message == f"Flow run encountered an exception: BadArgument: {line}"
    logs = logs_of(run_.id)
    if debug:
        assert "Traceback" in done.stderr
        assert any("Traceback" in message for message in logs), logs
    else:
        assert "Traceback" not in done.stderr
        assert f"Encountered exception during execution: {line}" in done.stderr
        assert not any("Traceback" in message for message in logs), logs


def test_without_a_server_the_line_still_comes_last(
    offline_env: dict[str, str], tmp_path: Path
) -> None:
    """A flow run's mistake with Prefect's temporary server (on a database migrated already):
    the server's "Stopping temporary server" line comes before the user's line, not after it."""
    env = {**offline_env, "PREFECT_HOME": str(migrated_home(tmp_path / "migrated-home"))}
    done = run("etl.py", "--warehouse", "sparkify-duckdb-warehouse/nope", env=env)
    assert done.returncode == 2, done.stderr
    assert "Starting temporary server" in done.stderr
    assert "Stopping temporary server" in done.stderr
    assert last_line(done.stderr).startswith(
        "etl: warehouse block sparkify-duckdb-warehouse/nope does not exist"
    ), done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# --- the errors themselves -----------------------------------------------------------------


def test_every_user_error_is_one_line_never_retried_and_survives_pickling() -> None:
    """Prefect pickles a failed run's exception into its result: each comes back whole."""
    errors = [
        BadArgument("a\nb: c"),
        DatesReversed(date(2018, 11, 7), date(2018, 11, 1)),
        SourceNotFound("/nope"),
        UnknownWarehouse("x"),
        NotADuckDBFile("y"),
        SourceLayoutError("z"),
        WarehouseBusy("duckdb:/x.duckdb", "/usr/bin/python3 (PID 123)", 30.4),
    ]
    for error in errors:
        assert "\n" not in str(error)
        assert not is_transient(error)
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert str(back) == str(error)
        assert back.__dict__ == error.__dict__
    assert str(errors[0]) == "a b: c"
    assert isinstance(errors[2], FileNotFoundError)
    assert isinstance(errors[1], ValueError)
    assert str(errors[-1]) == (
        "warehouse duckdb:/x.duckdb is held by another process (/usr/bin/python3 PID 123) after "
        "waiting 30s: close that connection or wait for its run to end, then rerun"
    )


def test_the_log_filter_drops_a_user_error_s_traceback_unless_debugging() -> None:
    def record() -> logging.LogRecord:
        try:
            raise UnknownWarehouse("warehouse w: give another")
        except UserError as error:
            return logging.LogRecord(
                "prefect.flow_runs", logging.ERROR, __file__, 1, "failed: %r", (error,),
                sys.exc_info(),
            )  # fmt: skip

    quiet = record()
    assert UserErrorLogFilter().filter(quiet)
    assert quiet.getMessage() == "failed: warehouse w: give another"
    assert quiet.exc_info is None
    set_debug(True)
    try:
        loud = record()
        assert UserErrorLogFilter().filter(loud)
        assert loud.exc_info is not None
    finally:
        set_debug(False)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        assert any(isinstance(f, UserErrorLogFilter) for f in logging.getLogger(name).filters)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("wh.duckdb", "duckdb"),
        ("wh.DB", "duckdb"),
        ("sub/dir/wh", "duckdb"),
        ("sparkify-duckdb-warehouse/laptop", "block"),
        ("sparkify-redshift-warehouse/prod", "block"),
    ],
)
def test_a_warehouse_spec_is_a_duckdb_path_or_a_block(spec: str, kind: str) -> None:
    assert warehouse_kind(spec) == kind


def test_a_relative_path_into_an_existing_folder_is_a_duckdb_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    assert warehouse_kind("out/wh") == "duckdb"


def test_a_real_duckdb_file_passes_and_anything_else_does_not(tmp_path: Path) -> None:
    good = tmp_path / "good.duckdb"
    duckdb.connect(str(good)).close()
    assert check_warehouse(str(good), must_exist=True) == "duckdb"
    for name, content in [("empty.duckdb", b""), ("text.duckdb", b"hello, world, not duck")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(NotADuckDBFile, match=r"is (an empty file|not a DuckDB database)"):
            check_warehouse(str(tmp_path / name))
    with pytest.raises(BadArgument, match="in-memory DuckDB cannot outlive the run"):
        check_warehouse(":memory:")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only file system (a tmpfs mounted for the test, which needs root),
    holding a loaded DuckDB warehouse, wh.duckdb."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("needs root, to mount a read-only file system")
    try:
        with duckdb.connect(str(folder / "wh.duckdb")) as con:
            con.execute("create table users (user_id integer)")
        remount = ["mount", "-o", "remount,ro", str(folder)]
        subprocess.run(remount, check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True, capture_output=True)


@pytest.mark.parametrize("name", ["wh.duckdb", "new.duckdb"], ids=["existing", "new"])
def test_a_warehouse_on_a_read_only_file_system_is_one_line_for_a_load(
    name: str, read_only_dir: Path, command_line: Callable[..., Said]
) -> None:
    warehouse = read_only_dir / name
    said = command_line("etl.py", "--warehouse", str(warehouse))

    assert said.status == 2, said
    assert said.err.splitlines() == [
        f"etl: warehouse {warehouse} cannot be written ({read_only_dir} is on a read-only file "
        "system): give the run write access there, or give the warehouse (--warehouse) a path it "
        "can write"
    ]
    assert said.server_starts == 0
    assert not (read_only_dir / "new.duckdb").exists()


def test_ctrl_c_where_python_handles_it_still_ends_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command that keeps Python's KeyboardInterrupt (a cluster command, whose teardown must
    run) ends in the same one line and status 130, once its cleanup ran."""
    cleaned = []

    def main(argv: list[str] | None) -> int:
        try:
            raise KeyboardInterrupt
        finally:
            cleaned.append(True)

    assert run_cli(main, [], "cluster") == INTERRUPTED_STATUS == 130
    assert cleaned == [True]
    assert capsys.readouterr().err == f"cluster: {INTERRUPTED_LINE}\n"
