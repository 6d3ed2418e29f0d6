"""Progress: throttled log lines everywhere, a progress artifact inside a run (read back from the
session's Prefect server), the transform's tables and a cluster wait against moto."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import create_engine

import tasks.common.progress as progress_module
from tasks.cluster.lifecycle import ClusterWaitTimeout, wait_until_available
from tasks.common.aws import aws_client
from tasks.common.progress import Progress, in_prefect_run, progress_key
from tasks.run.transform import transform, transform_files
from tasks.warehouse.tables import create_tables


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture, title: str) -> list[str]:
    """The progress lines of one title, in order."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{title}:")]


def artifacts(flow_run_id: UUID) -> dict[str, Any]:
    """The artifacts of a flow run (its tasks' included), by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


@pytest.fixture
def artifact_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Every artifact call Progress makes ("create" or "update", progress), passed through."""
    calls: list[tuple[str, float]] = []
    create, update = (
        progress_module.create_progress_artifact,
        progress_module.update_progress_artifact,
    )

    def counted_create(progress: float, **kwargs: Any) -> UUID:
        calls.append(("create", progress))
        return create(progress=progress, **kwargs)

    def counted_update(artifact_id: UUID, progress: float, **kwargs: Any) -> UUID:
        calls.append(("update", progress))
        return update(artifact_id, progress=progress, **kwargs)

    monkeypatch.setattr(progress_module, "create_progress_artifact", counted_create)
    monkeypatch.setattr(progress_module, "update_progress_artifact", counted_update)
    return calls


# --- outside any run ----------------------------------------------------------------------


def test_keys_are_stable_artifact_keys() -> None:
    assert progress_key("staging events") == "sparkify-progress-staging-events"
    assert progress_key("Waiting for cluster C_1") == "sparkify-progress-waiting-for-cluster-c-1"
    assert Progress("transform", 6, "tables").key == "sparkify-progress-transform"


def test_quick_work_says_its_end_only(
    caplog: pytest.LogCaptureFixture, artifact_calls: list
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    assert not in_prefect_run()
    with Progress("staging events", total=600, unit="files", clock=clock) as progress:
        for n in range(600):
            clock.now += 0.01
            progress.advance(note=f"day-{n}.json")

    assert lines(caplog, "staging events") == [
        "staging events: 600/600 files (100%), 6.0s - day-599.json"
    ]
    assert artifact_calls == []  # outside a run: the log only


def test_long_work_logs_every_ten_seconds_and_its_end(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with Progress("staging songs", total=1000, unit="files", clock=clock) as progress:
        for _ in range(21):
            clock.now += 1.0
            progress.advance()
    shown = lines(caplog, "staging songs")
    elapsed = [re.search(r", ([\d.]+)s", line).group(1) for line in shown]
    assert elapsed == ["10.0", "20.0", "21.0"]
    assert shown[0] == "staging songs: 10/1,000 files (1%), 10.0s"


def test_a_wait_logs_state_changes_and_every_ten_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    with Progress.wait("waiting for cluster c1 to be available", 60, clock=clock) as waiting:
        for state in ["creating"] * 12 + ["modifying"]:
            clock.now += 1.0
            waiting.status(state)
        assert waiting.percent(clock.now) == pytest.approx(100 * 13 / 60, abs=0.1)
    assert lines(caplog, "waiting for cluster c1 to be available") == [
        "waiting for cluster c1 to be available: creating, 1.0s (timeout 60s)",
        "waiting for cluster c1 to be available: creating, 11.0s (timeout 60s)",
        "waiting for cluster c1 to be available: modifying, 13.0s (timeout 60s)",
        "waiting for cluster c1 to be available: done, 13.0s (timeout 60s)",
    ]


def test_work_that_fails_says_where_it_stopped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()

    def stage_until_the_disk_fills() -> None:
        with Progress("staging events", total=4, unit="files", clock=clock) as progress:
            progress.advance(note="a.json")
            clock.now += 1.5
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        stage_until_the_disk_fills()
    (stopped,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert stopped.getMessage() == (
        "staging events: 1/4 files (25%), 1.5s - a.json (stopped: OSError)"
    )


def test_nothing_to_do_is_done_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with Progress("staging songs", total=0, unit="files"):
        pass
    assert [line.split(",")[0] for line in lines(caplog, "staging songs")] == [
        "staging songs: 0/0 files (100%)"
    ]


def test_progress_must_be_entered() -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        Progress("transform", 6, "tables").advance()
    with pytest.raises(ValueError, match="a progress total cannot be negative: -1"):
        Progress("transform", -1, "tables")


# --- inside a run, against the session's Prefect server -----------------------------------


def test_a_flow_run_keeps_a_throttled_artifact_ending_at_100(
    prefect_server, artifact_calls: list, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    title = f"staging events {uuid.uuid4().hex[:8]}"

    @flow
    def staging() -> None:
        with Progress(title, total=50, unit="files", clock=clock) as progress:
            for _ in range(50):
                clock.now += 0.25  # 12.5 s of work
                progress.advance()

    state = staging(return_state=True)
    assert state.is_completed()
    artifact = artifacts(state.state_details.flow_run_id)[progress_key(title)]
    assert artifact.type == "progress"
    assert artifact.data == 100.0
    assert artifact.description.startswith(f"{title}: 50/50 files (100%), 12.5s")
    assert artifact_calls[0] == ("create", 0.0)
    assert artifact_calls[-1] == ("update", 100.0)
    updates = [p for kind, p in artifact_calls if kind == "update"]
    assert 10 <= len(updates) <= 14  # about once a clock second of 12.5, plus the end
    assert updates == sorted(updates)
    assert f"{title}: 50/50 files (100%), 12.5s" in caplog.text


def test_the_work_goes_on_while_an_artifact_call_is_in_flight(
    prefect_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The artifact's creation (the real call to the server) is held back until the work has
    # advanced to its end: were the calls made by the work itself, the block could not be
    # entered before the hold timed out.
    create = progress_module.create_progress_artifact
    work_done = threading.Event()
    held: list[bool] = []

    def held_create(**kwargs: Any) -> UUID:
        held.append(work_done.wait(timeout=60))
        return create(**kwargs)

    monkeypatch.setattr(progress_module, "create_progress_artifact", held_create)
    title = f"staging held {uuid.uuid4().hex[:8]}"

    @flow
    def staging() -> None:
        with Progress(title, total=4, unit="files") as progress:
            for _ in range(4):
                progress.advance()
            work_done.set()

    state = staging(return_state=True)
    assert state.is_completed()
    assert held == [True]
    # The block's end waited for the calls: the artifact is complete when the run is.
    artifact = artifacts(state.state_details.flow_run_id)[progress_key(title)]
    assert artifact.data == 100.0
    assert artifact.description.startswith(f"{title}: 4/4 files (100%)")


def test_a_refused_artifact_never_fails_the_work(
    prefect_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the API is down")

    monkeypatch.setattr(progress_module, "update_progress_artifact", refuse)

    @flow
    def staging() -> int:
        with Progress("staging refused", total=3, unit="files") as progress:
            for _ in range(3):
                progress.advance()
        return progress.done

    assert staging() == 3
    assert "given up (RuntimeError: the API is down)" in caplog.text
    assert "staging refused: 3/3 files (100%)" in caplog.text


def test_transform_reports_each_table(
    prefect_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")

    @task(cache_policy=NO_CACHE)
    def tables() -> None:
        with engine.begin() as conn:
            create_tables(conn)

    @flow
    def run_transform() -> list[str]:
        tables()
        with engine.begin() as conn:
            return [change.table for change in transform(conn)]

    state = run_transform(return_state=True)
    engine.dispose()
    assert state.result() == ["artists", "songs", "users", "songplays", "time"]
    built = [p.stem.split("_", 1)[1] for p in transform_files()]
    shown = lines(caplog, "transform")
    total = len(built)
    # Seconds of work: one line, at its end, naming the last table built.
    assert len(shown) == 1, shown
    assert shown[0].startswith(f"transform: {total}/{total} tables (100%)")
    assert shown[0].endswith(f" - {built[-1]}")
    found = artifacts(state.state_details.flow_run_id)
    assert found["sparkify-progress-transform"].data == 100.0


def test_a_cluster_wait_reports_state_and_time_against_moto(
    prefect_server, aws_credentials, caplog: pytest.LogCaptureFixture
) -> None:
    identifier = f"sparkify-w-{uuid.uuid4().hex[:10]}"
    redshift = aws_client(aws_credentials, "redshift")
    redshift.create_cluster(
        ClusterIdentifier=identifier,
        NodeType="dc2.large",
        ClusterType="single-node",
        MasterUsername="sparkify",
        MasterUserPassword="Passw0rdLong",
    )
    redshift.pause_cluster(ClusterIdentifier=identifier)
    title = f"waiting for cluster {identifier} to be available"

    def resume_once_seen_paused() -> None:
        """Resume the cluster once the wait has reported it paused (however long that takes)."""
        deadline = time.monotonic() + 120
        while not lines(caplog, title) and time.monotonic() < deadline:
            time.sleep(0.05)
        redshift.resume_cluster(ClusterIdentifier=identifier)

    resume = threading.Thread(target=resume_once_seen_paused)
    resume.start()

    @flow
    def wait() -> str:
        return wait_until_available(aws_credentials, identifier, 30, 0.25).status

    try:
        state = wait(return_state=True)
    finally:
        resume.join()
    assert state.result() == "available"
    shown = lines(caplog, title)
    assert re.fullmatch(rf"{title}: paused, \d+\.\ds \(timeout 30s\)", shown[0])
    assert re.fullmatch(rf"{title}: done, \d+\.\ds \(timeout 30s\)", shown[-1])
    artifact = artifacts(state.state_details.flow_run_id)[progress_key(title)]
    assert artifact.data == 100.0

    # A cluster that stays paused: the wait reports it and gives up at its timeout.
    redshift.pause_cluster(ClusterIdentifier=identifier)
    caplog.clear()
    with pytest.raises(ClusterWaitTimeout, match="still paused"):
        wait_until_available.fn(aws_credentials, identifier, 1.0, 0.25)
    shown = lines(caplog, title)
    assert shown[0].startswith(f"{title}: paused, 0.")
    assert shown[-1].endswith("(timeout 1s) (stopped: ClusterWaitTimeout)")
    redshift.delete_cluster(ClusterIdentifier=identifier, SkipFinalClusterSnapshot=True)


def test_an_etl_run_reports_staging_progress_in_files(
    prefect_server, month_source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.flows import load_flow_from_entrypoint

    from tests.conftest import PROJECT_ROOT

    etl = load_flow_from_entrypoint(f"{PROJECT_ROOT}/flows/etl.py:etl")
    state = etl(str(month_source), str(tmp_path / "wh.duckdb"), return_state=True)
    assert state.is_completed()
    found = artifacts(state.state_details.flow_run_id)
    for title, files in (("staging events", 30), ("staging songs", 120)):
        shown = lines(caplog, title)
        assert len(shown) == 1, shown  # seconds of work: its end only
        assert shown[-1].startswith(f"{title}: {files}/{files} files (100%)")
        assert found[progress_key(title)].data == 100.0
