"""A run holds its warehouse from its first write to its commit: on DuckDB the file
stays open for the whole run, on Redshift (its SQL on the PostgreSQL stand-in) the run's one
transaction begins with LOCK on the run lock table; another holder is waited for a bounded time;
among one Prefect server's runs the concurrency limit is the warehouse's own."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from sqlalchemy.exc import OperationalError

import flows.etl as etl_flow
from tasks.common.errors import WarehouseBusy
from tasks.run.lock import limit_name, warehouse_lock
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse, connect_when_free
from tasks.warehouse.hold import WAIT_VARIABLE, WarehouseWaitInvalid, lock_wait_seconds
from tests.conftest import PROJECT_ROOT
from tests.helpers import expected_from_json, table_counts


def test_a_held_file_is_waited_for_then_named_in_one_line(held_file) -> None:
    db, holder = held_file
    engine = DuckDBWarehouse(path=str(db)).get_engine()
    with pytest.raises(WarehouseBusy) as busy:
        connect_when_free(engine, 1.5, "duckdb:held")
    assert busy.value.waited_seconds >= 1.5  # it gave up only once the wait was over
    message = str(busy.value)
    assert "\n" not in message
    assert f"PID {holder.pid}" in message  # the holder, as DuckDB names it
    assert message.startswith("warehouse duckdb:held is held by another process")


def test_a_file_released_during_the_wait_is_taken(held_file) -> None:
    db, holder = held_file
    threading.Timer(1.0, holder.stdin.close).start()
    with connect_when_free(DuckDBWarehouse(path=str(db)).get_engine(), 30, "duckdb:held") as conn:
        assert conn.exec_driver_sql("select 42").scalar_one() == 42


def test_a_file_that_is_no_database_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    engine = DuckDBWarehouse(path=str(junk)).get_engine()
    attempts: list[None] = []
    connect = engine.connect
    monkeypatch.setattr(engine, "connect", lambda: attempts.append(None) or connect())
    with pytest.raises(OperationalError, match="is not a valid DuckDB database file") as error:
        connect_when_free(engine, 30, "duckdb:junk")
    assert not isinstance(error.value, WarehouseBusy)
    assert len(attempts) == 1  # the first refusal was final: no second try


def test_the_wait_comes_from_the_environment_or_the_block(monkeypatch) -> None:
    monkeypatch.delenv(WAIT_VARIABLE, raising=False)
    assert lock_wait_seconds(30.0) == 30.0
    monkeypatch.setenv(WAIT_VARIABLE, "2.5")
    assert lock_wait_seconds(30.0) == 2.5
    monkeypatch.setenv(WAIT_VARIABLE, "soon")
    with pytest.raises(WarehouseWaitInvalid, match="is not a number of seconds"):
        lock_wait_seconds(30.0)


# Tries to open the run's DuckDB file and drop the fact table: were the file released between
# the run's tasks, this would break the run.
INTRUDE = (
    "import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\ncon.execute('drop table songplays')\n"
)


def test_a_process_opening_the_file_mid_run_cannot_break_it(
    prefect_server, month_source: Path, tmp_path: Path, monkeypatch
) -> None:
    db = tmp_path / "wh.duckdb"
    intruders: list[subprocess.CompletedProcess] = []
    transform = etl_flow.transform

    def intrude_then_transform(conn):
        intruders.append(
            subprocess.run([sys.executable, "-c", INTRUDE, str(db)], capture_output=True, text=True)
        )
        return transform(conn)

    monkeypatch.setattr(etl_flow, "transform", intrude_then_transform)
    etl_flow.etl(str(month_source), str(db))

    assert len(intruders) == 1
    assert intruders[0].returncode != 0
    assert "Could not set lock on file" in intruders[0].stderr
    assert table_counts(db) == expected_from_json(month_source).counts


def test_each_warehouse_has_a_limit_of_its_own_created_on_demand(prefect_server) -> None:
    a, b = "duckdb:/data/a.duckdb", "redshift://etl@cluster:5439/dev"
    assert limit_name(a) != limit_name(b)
    assert limit_name(a) == limit_name(a)
    assert limit_name(a).startswith("sparkify-warehouse-")

    @flow
    def hold_both() -> None:
        with warehouse_lock(a), warehouse_lock(b):  # different warehouses: no wait
            pass

    hold_both()
    with get_client(sync_client=True) as client:
        for name in (limit_name(a), limit_name(b)):
            limit = client.read_global_concurrency_limit_by_name(name)
            assert (limit.limit, limit.active_slots) == (1, 0)


def _etl_flow():
    """The sparkify-etl flow, loaded by path as the CLI runs it."""
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{PROJECT_ROOT}/flows/etl.py:etl")
