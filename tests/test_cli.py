"""The scripts a data engineer runs: python flows/etl.py, create_tables.py, analytics.py, each
called as its command line (main(argv)) in the test's process, on the session's Prefect server
(tests/test_cli_errors.py runs them as processes of their own too)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import tasks.run.transform as transform
from flows.etl import etl
from tests.conftest import Said
from tests.helpers import query

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def loaded_week(
    prefect_server, week_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The generated week loaded once into a DuckDB file of the module."""
    db = tmp_path_factory.mktemp("week-loaded") / "wh.duckdb"
    etl(str(week_source), str(db))
    return db


@pytest.fixture
def week_db(loaded_week: Path, tmp_path: Path) -> Path:
    """A copy of the loaded week, the test's own."""
    return Path(shutil.copy(loaded_week, tmp_path / "wh.duckdb"))


def test_etl_cli_prints_row_counts_after_a_log_at_a_human_pace(
    week_source: Path,
    tmp_path: Path,
    command_line: Callable[..., Said],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "wh.duckdb"
    said = command_line("etl.py", "--source", str(week_source), "--warehouse", str(db))
    assert said.status == 0, said.err
    assert said.server_starts == 1  # PREFECT_API_URL is set: checked, nothing started
    songplays = query(db, "select count(*) from songplays")[0][0]
    assert f"songplays     {songplays:,}" in said.out
    assert "table" in said.out
    assert "users" in said.out
    # The run's log: a line per stage of seconds, numbers as people write them, no Python
    # reprs, no task saying it completed; the flow's end with its one-line summary.
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("prefect")]
    assert not [line for line in logged if line.startswith("Finished in state Completed()")]
    assert not [line for line in logged if "{'" in line or "': " in line]
    for stage in ("staging events", "staging songs", "transform"):
        assert len([line for line in logged if line.startswith(f"{stage}: ")]) == 1, logged
    assert f"songplays {songplays:,}" in next(m for m in logged if m.startswith("published to"))
    (end,) = [line for line in logged if line.startswith("Finished in state")]
    assert end == f"Finished in state Completed('{songplays:,} plays loaded; 0 rejected')"


def test_etl_cli_fails_and_publishes_nothing_when_a_check_fails(
    week_source: Path,
    tmp_path: Path,
    command_line: Callable[..., Said],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line with one more transform, run after the others, that breaks a user's
    level: staging rejects such a value in the data, so only a faulty transform makes the
    check fail."""
    db = tmp_path / "wh.duckdb"
    etl(str(week_source), str(db), start_date="2018-11-01", end_date="2018-11-01")
    before = query(db, "select count(*) from songplays")[0][0]
    broken = tmp_path / "transform"
    shutil.copytree(transform.TRANSFORM_DIR, broken)
    (broken / "99_zz_break_a_level.sql").write_text(
        "update users set level = 'premium' where user_id = (select min(user_id) from users);"
    )
    monkeypatch.setattr(transform, "TRANSFORM_DIR", broken)

    said = command_line("etl.py", "--source", str(week_source), "--warehouse", str(db))

    assert said.status == 1, said.err
    assert "accepted_values_users_level" in said.err
    assert query(db, "select count(*) from songplays")[0][0] == before
    assert query(db, "select count(*) from users where level = 'premium'")[0][0] == 0


def test_create_tables_refuses_to_drop_without_yes(
    week_db: Path, command_line: Callable[..., Said]
) -> None:
    refused = command_line("create_tables.py", "--warehouse", str(week_db))
    assert refused.status == 2
    [line] = refused.err.splitlines()
    assert line.startswith("create_tables: 12 tables exist (artists, load_rejects, "), line
    assert line.endswith("dropping them deletes their data: run again with --yes to confirm")
    assert query(week_db, "select count(*) from songplays")[0][0] > 0
    done = command_line("create_tables.py", "--warehouse", str(week_db), "--yes")
    assert done.status == 0, done.err
    assert query(week_db, "select count(*) from songplays")[0][0] == 0


def test_analytics_cli_prints_its_tables(week_db: Path, command_line: Callable[..., Said]) -> None:
    done = command_line("analytics.py", "--warehouse", str(week_db))
    assert done.status == 0, done.err
    for heading in ("row counts", "most played songs", "plays by hour", "plays by level"):
        assert heading in done.out
    top = query(
        week_db,
        "select count(*) from songplays where song_id is not null "
        "group by song_id order by 1 desc limit 1",
    )[0][0]
    assert f"  {top}" in done.out.split("most played songs")[1].split("plays by hour")[0]


def test_a_source_without_log_data_ends_with_one_line_and_status_2(
    tmp_path: Path, command_line: Callable[..., Said]
) -> None:
    (tmp_path / "src" / "song_data").mkdir(parents=True)
    db = tmp_path / "wh.duckdb"
    said = command_line("etl.py", "--source", str(tmp_path / "src"), "--warehouse", str(db))
    assert said.status == 2
    [line] = said.err.splitlines()
    assert line.startswith("etl: ")
    assert "has no log_data/ folder" in line
    assert "--source" in line
    assert said.server_starts == 0


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
