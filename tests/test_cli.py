"""The scripts a data engineer runs: python flows/etl.py, create_tables.py, analytics.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT
from tests.helpers import query, run


def test_etl_cli_prints_row_counts(week_source: Path, tmp_path: Path, cli_env) -> None:
    db = tmp_path / "wh.duckdb"
    done = run("etl.py", "--source", str(week_source), "--warehouse", str(db), env=cli_env)
    assert done.returncode == 0, done.stderr
    songplays = query(db, "select count(*) from songplays")[0][0]
    assert f"songplays     {songplays:,}" in done.stdout
    assert "table" in done.stdout
    assert "users" in done.stdout


# The command line with one more transform, run after the others, that breaks a user's level:
# staging rejects such a value in the data, so only a faulty transform makes the check fail.
BROKEN_TRANSFORM = """
import shutil, sys
from pathlib import Path

import tasks.run.transform as transform

broken = Path(sys.argv[1])
shutil.copytree(transform.TRANSFORM_DIR, broken)
(broken / "99_zz_break_a_level.sql").write_text(
    "update users set level = 'premium' where user_id = (select min(user_id) from users);"
)
transform.TRANSFORM_DIR = broken
from flows.etl import main

sys.exit(main(sys.argv[2:]))
"""


def test_etl_cli_fails_and_publishes_nothing_when_a_check_fails(
    week_source: Path, tmp_path: Path, cli_env
) -> None:
    db = tmp_path / "wh.duckdb"
    first_day = ["--start-date", "2018-11-01", "--end-date", "2018-11-01"]
    loaded = run(
        "etl.py", "--source", str(week_source), "--warehouse", str(db), *first_day, env=cli_env
    )
    assert loaded.returncode == 0, loaded.stderr
    before = query(db, "select count(*) from songplays")[0][0]

    source_and_db = ["--source", str(week_source), "--warehouse", str(db)]
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_TRANSFORM, str(tmp_path / "transform"), *source_and_db],
        cwd=PROJECT_ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "accepted_values_users_level" in done.stderr
    assert query(db, "select count(*) from songplays")[0][0] == before
    assert query(db, "select count(*) from users where level = 'premium'")[0][0] == 0


def test_create_tables_refuses_to_drop_without_yes(week_source: Path, tmp_path: Path, cli_env):
    db = tmp_path / "wh.duckdb"
    run("etl.py", "--source", str(week_source), "--warehouse", str(db), env=cli_env)
    refused = run("create_tables.py", "--warehouse", str(db), env=cli_env)
    assert refused.returncode == 2
    last = [line for line in refused.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("create_tables: ")
    assert last.endswith("dropping them deletes their data: run again with --yes to confirm")
    assert "Traceback" not in refused.stderr
    assert query(db, "select count(*) from songplays")[0][0] > 0
    done = run("create_tables.py", "--warehouse", str(db), "--yes", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert query(db, "select count(*) from songplays")[0][0] == 0


def test_analytics_cli_prints_its_tables(week_source: Path, tmp_path: Path, cli_env) -> None:
    db = tmp_path / "wh.duckdb"
    run("etl.py", "--source", str(week_source), "--warehouse", str(db), env=cli_env)
    done = run("analytics.py", "--warehouse", str(db), env=cli_env)
    assert done.returncode == 0, done.stderr
    for heading in ("row counts", "most played songs", "plays by hour", "plays by level"):
        assert heading in done.stdout
    top = query(
        db,
        "select count(*) from songplays where song_id is not null "
        "group by song_id order by 1 desc limit 1",
    )[0][0]
    assert f"  {top}" in done.stdout.split("most played songs")[1].split("plays by hour")[0]


def test_a_source_without_log_data_ends_with_one_line_and_status_2(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "src" / "song_data").mkdir(parents=True)
    db = tmp_path / "wh.duckdb"
    result = run("etl.py", "--source", str(tmp_path / "src"), "--warehouse", str(db), env=cli_env)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("etl: ")
    assert "has no log_data/ folder" in last
    assert "--source" in last


def test_the_etl_parameters_are_declared_once_on_the_flow() -> None:
    """Every parameter of the flow is described in its form (its docstring), and the command
    line offers each one (but days_back, a schedule's) with the flow's default and that
    description."""
    import inspect

    from flows.etl import etl, parse_args

    form = etl.parameters.properties
    signature = inspect.signature(inspect.unwrap(etl.fn)).parameters
    assert set(form) == set(signature)
    assert all(form[name].get("description") for name in form), form
    defaults = vars(parse_args([]))
    for name, parameter in signature.items():
        if name != "days_back":
            assert defaults[name] == parameter.default, name
    assert "days_back" not in defaults
    given = parse_args(["--start-date", "2018-11-03", "--reload", "--warehouse", "x.duckdb"])
    assert (str(given.start_date), given.reload, given.warehouse) == (
        "2018-11-03",
        True,
        "x.duckdb",
    )
