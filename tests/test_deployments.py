"""Deployments end to end: a real Prefect server, `make deploy`, a process worker and
`prefect deployment run`; plus the scheduled-day arithmetic and the warehouse lock on their own."""

from __future__ import annotations

import contextvars
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect import tags

from flows.etl import etl
from tasks.run.lock import limit_name
from tasks.run.schedule import run_dates
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tests.conftest import PROJECT_ROOT
from tests.helpers import expected_from_json, query, table_counts
from tests.shared_servers import session_deployment, session_server

SAMPLE = PROJECT_ROOT / "data" / "sample"
PREFECT = str(Path(sys.executable).parent / "prefect")
RUN_TIMEOUT = 180.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Statuses the Prefect server answers with for a request to be made again.
RETRY_STATUSES = {429, 502, 503}


# The scheduled day, without Prefect.


def test_a_run_scheduled_at_two_on_the_twelfth_loads_the_eleventh() -> None:
    at = datetime(2018, 11, 12, 2, 0, tzinfo=UTC)
    assert run_dates(None, None, 1, at) == (date(2018, 11, 11), date(2018, 11, 11))
    assert run_dates(None, None, 0, at) == (date(2018, 11, 12), date(2018, 11, 12))


def test_the_day_is_the_utc_day_of_the_scheduled_time() -> None:
    # 23:30 on the 11th in New York is 04:30 on the 12th in UTC.
    new_york = timezone(timedelta(hours=-5))
    at = datetime(2018, 11, 11, 23, 30, tzinfo=new_york)
    assert run_dates(None, None, 1, at) == (date(2018, 11, 11), date(2018, 11, 11))
    naive = datetime(2018, 11, 12, 0, 5)  # taken as UTC
    assert run_dates(None, None, 1, naive) == (date(2018, 11, 11), date(2018, 11, 11))


def test_without_days_back_the_given_dates_stand() -> None:
    at = datetime(2018, 11, 12, 2, 0, tzinfo=UTC)
    assert run_dates(None, None, None, at) == (None, None)  # a plain run loads every file
    span = (date(2018, 11, 1), date(2018, 11, 3))
    assert run_dates(*span, None, at) == span


def test_days_back_with_dates_or_negative_is_refused() -> None:
    at = datetime(2018, 11, 12, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not both"):
        run_dates(date(2018, 11, 1), None, 1, at)
    with pytest.raises(ValueError, match="negative"):
        run_dates(None, None, -1, at)


# The deployment file.


def test_prefect_yaml_declares_the_deployments_on_the_process_pool() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    deployments = {(d["entrypoint"], d["name"]): d for d in config["deployments"]}
    daily = deployments[("flows/etl.py:daily_etl", "daily")]
    assert daily["parameters"]["days_back"] == 1
    assert daily["schedules"][0]["cron"] == "0 2 * * *"
    assert "days_back" not in deployments[("flows/etl.py:backfill_etl", "backfill")]["parameters"]
    assert ("flows/create_tables.py:create_all_tables", "drop-and-create") in deployments
    assert ("flows/analytics.py:analytics", "standing-queries") in deployments
    assert {d["work_pool"]["name"] for d in config["deployments"]} == {"sparkify-process"}
    step = config["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == "{{ prefect.variables.sparkify_project_dir }}"
    for entrypoint, _ in deployments:
        assert (PROJECT_ROOT / entrypoint.split(":")[0]).is_file()


# The warehouse lock where no limit exists (a plain local run on a temporary server).


# End to end on a real server.


@dataclass
class Deployed:
    """A Prefect server with the project deployed and a process worker polling its pool."""

    api: str
    env: dict[str, str]
    server_log: Path
    worker_log: Path

    def run(self, deployment: str, parameters: dict[str, Any], *options: str) -> str:
        """Trigger a deployment with `prefect deployment run`; the flow run's id."""
        done = subprocess.run(
            [
                PREFECT,
                "deployment",
                "run",
                deployment,
                "--params",
                json.dumps(parameters),
                *list(options),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)

    def trigger(
        self, deployment: str, parameters: dict[str, Any], at: datetime | None = None
    ) -> str:
        """Trigger a deployment through the API, as `run` does through the CLI (its one test
        keeps the CLI): a flow run scheduled now, or at `at`; its id."""
        found = self.get(f"/deployments/name/{deployment}")
        body: dict[str, Any] = {"parameters": parameters}
        if at is not None:
            details = {"scheduled_time": at.isoformat()}
            body["state"] = {"type": "SCHEDULED", "state_details": details}
        return self.post(f"/deployments/{found['id']}/create_flow_run", body)["id"]

    def get(self, path: str) -> Any:
        """GET one API path."""
        return self.request("GET", path).json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST a JSON body to one API path."""
        response = self.request("POST", path, json=body)
        return response.json() if response.content else None

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One API call, made again after a status that the server sends for a retry (as
        Prefect's own client does: 503 when its database was busy, the request undone)."""
        for delay in (0.5, 1.0, 2.0, 4.0, None):
            response = httpx.request(method, f"{self.api}{path}", timeout=10, **options)
            if response.status_code not in RETRY_STATUSES or delay is None:
                break
            time.sleep(delay)
        response.raise_for_status()
        return response

    def wait(self, flow_run_id: str) -> dict[str, Any]:
        """The flow run once it is in a terminal state (bounded wait)."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{flow_run_id}")
            if run["state_type"] in TERMINAL:
                return run
            time.sleep(0.5)
        raise AssertionError(f"flow run {flow_run_id} not finished:\n{self.tail()}")

    def wait_completed(self, flow_run_id: str) -> dict[str, Any]:
        """The flow run once Completed; its logs and the worker's log when it is not."""
        run = self.wait(flow_run_id)
        assert run["state_type"] == "COMPLETED", (
            f"{run['state_type']}: {run['state']['message']}\n"
            + "\n".join(self.messages(flow_run_id))
            + self.tail()
        )
        return run

    def artifacts(self, flow_run_id: str) -> dict[str, dict[str, Any]]:
        """The flow run's artifacts by key."""
        found = self.post(
            "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        )
        return {a["key"]: a for a in found}

    def log_records(self, flow_run_id: str) -> list[dict[str, Any]]:
        """The flow run's log records, oldest first."""
        body = {
            "logs": {"flow_run_id": {"any_": [flow_run_id]}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
        }
        return self.post("/logs/filter", body)

    def messages(self, flow_run_id: str) -> list[str]:
        """The flow run's log messages, oldest first."""
        return [r["message"] for r in self.log_records(flow_run_id)]

    def tail(self) -> str:
        """The end of the server's and worker's output, for failure messages."""
        parts = []
        for log in (self.server_log, self.worker_log):
            text = log.read_text(errors="replace")
            parts.append(f"\n--- {log.name}\n{text[-4000:]}")
        return "".join(parts)


@pytest.fixture(scope="module")
def deployed(prefect_server: str) -> Deployed:
    """The project deployed with `make deploy` onto the session's Prefect server (no schedules
    run, a lock's waiter asks again every second) and a process worker polling its pool from
    elsewhere than the repository: done once for the session (tests/shared_servers.py)."""
    env, worker_log = session_deployment()
    _, server_log = session_server()
    return Deployed(prefect_server, env, server_log, worker_log)


def _sample_with_a_bad_line(tmp_path: Path) -> tuple[Path, Path, int]:
    """A copy of the bundled sample with one malformed line appended to one day's file."""
    source = tmp_path / "source"
    shutil.copytree(SAMPLE, source)
    day_file = next((source / "log_data").rglob("2018-11-05-events.json"))
    with day_file.open("a") as f:
        f.write("{this is not json\n")
    return source, day_file, sum(1 for _ in day_file.open())


def _table(artifact: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(artifact["data"])


def _event_lines(source: Path, pattern: str = "*.json") -> int:
    return sum(
        1
        for path in (source / "log_data").rglob(pattern)
        for line in path.read_text().splitlines()
        if line.strip()
    )


def test_deployment_run_loads_the_warehouse_and_explains_itself(
    deployed: Deployed, tmp_path: Path
) -> None:
    source, bad_file, bad_line = _sample_with_a_bad_line(tmp_path)
    db = tmp_path / "wh.duckdb"
    run_id = deployed.run("sparkify-etl/backfill", {"source": str(source), "warehouse": str(db)})
    run = deployed.wait_completed(run_id)
    # The run list says what the run loaded and what came of it.
    assert run["name"] == "backfill all days → wh.duckdb"
    assert run["state"]["name"] == "Completed with rejects"
    assert "; 1 rejected" in run["state"]["message"]

    expected = expected_from_json(SAMPLE)
    assert table_counts(db) == expected.counts
    artifacts = deployed.artifacts(run_id)
    assert {"sparkify-etl-load", "sparkify-etl-quality", "sparkify-etl-rejects"} <= set(artifacts)

    load = {row["table"]: row for row in _table(artifacts["sparkify-etl-load"])}
    for table, rows in expected.counts.items():
        assert load[table]["rows"] == rows, table
        assert load[table]["inserted"] == rows, table
        assert load[table]["updated"] == 0, table
        assert load[table]["seconds"] >= 0
    events = load["staging_events"]
    assert (events["files"], events["staged"], events["rejected"]) == (
        30,
        _event_lines(SAMPLE),
        1,
    )
    assert load["staging_songs"]["staged"] == expected.counts["songs"]
    assert load["load_rejects"]["rows"] == 1

    quality = _table(artifacts["sparkify-etl-quality"])
    assert len(quality) > 10
    assert {row["result"] for row in quality} == {"pass"}
    assert {"unique_songplays_songplay_id", "not_null_users_user_id"} <= {
        row["check"] for row in quality
    }
    rejects = artifacts["sparkify-etl-rejects"]
    assert rejects["type"] == "markdown"
    assert f"| {bad_file} | {bad_line} |" in rejects["data"]
    assert query(db, "select source_file, line_number from load_rejects") == [
        (str(bad_file), bad_line)
    ]


def test_a_run_scheduled_at_two_on_the_twelfth_loads_the_eleventh_end_to_end(
    deployed: Deployed, tmp_path: Path
) -> None:
    db = tmp_path / "day.duckdb"
    # The daily deployment's own source (data/sample, relative to the repository) and
    # days_back: 1; the worker runs elsewhere, so the pull step must set the directory.
    at = datetime(2018, 11, 12, 2, tzinfo=UTC)
    run_id = deployed.trigger("sparkify-etl/daily", {"warehouse": str(db)}, at)
    run = deployed.wait_completed(run_id)

    assert run["name"] == "daily 2018-11-11 → day.duckdb"
    assert run["state"]["name"] == "Completed"
    assert run["expected_start_time"].startswith("2018-11-12T02:00:00")
    assert run["parameters"].get("days_back", 1) == 1
    days = query(db, "select distinct cast(start_time as date) from songplays")
    assert days == [(date(2018, 11, 11),)]
    plays = {
        (e["sessionId"], e["itemInSession"], e["userId"], e["ts"])
        for e in map(json.loads, _day_file_lines(SAMPLE, "2018-11-11"))
        if e["page"] == "NextSong"
    }
    assert table_counts(db)["songplays"] == len(plays) > 0
    load = {r["table"]: r for r in _table(deployed.artifacts(run_id)["sparkify-etl-load"])}
    assert load["staging_events"]["files"] == 1
    assert load["staging_events"]["staged"] == _event_lines(SAMPLE, "2018-11-11-events.json")


def _day_file_lines(source: Path, day: str) -> list[str]:
    path = next((source / "log_data").rglob(f"{day}-events.json"))
    return [line for line in path.read_text().splitlines() if line.strip()]


def _held_interval(deployed: Deployed, run_id: str, limit: str) -> tuple[datetime, datetime]:
    """When the run acquired and released the warehouse lock, from its logs."""
    return (
        _wait_for_message(deployed, run_id, f"acquired the warehouse lock '{limit}'"),
        _wait_for_message(deployed, run_id, f"released the warehouse lock '{limit}'"),
    )


def _wait_for_message(deployed: Deployed, run_id: str, prefix: str) -> datetime:
    """The time of the run's first log message starting with prefix (bounded wait: a run's
    last logs may reach the server shortly after its final state)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        for record in deployed.log_records(run_id):
            if record["message"].startswith(prefix):
                return datetime.fromisoformat(record["timestamp"])
        if deployed.get(f"/flow_runs/{run_id}")["state_type"] in TERMINAL - {"COMPLETED"}:
            raise AssertionError("\n".join(deployed.messages(run_id)))
        time.sleep(0.5)
    raise AssertionError(f"{run_id} never logged {prefix!r}:\n{deployed.tail()}")


def test_a_deployment_run_and_a_local_run_on_one_warehouse_take_turns(
    deployed: Deployed, small_source: Path, tmp_path: Path
) -> None:
    """A deployment's run (in the worker's process) and a local run (in this one) on the same
    server and warehouse: both wait for the warehouse's lock, then hold it one after the other."""
    db = tmp_path / "shared.duckdb"
    # The test holds the warehouse's lock first (creating it, as the first run would), so both
    # runs are certain to be waiting at the same time when it lets go: only the lock can keep
    # them apart then.
    name = limit_name(DuckDBWarehouse(path=str(db)).describe())
    deployed.post("/v2/concurrency_limits/", {"name": name, "limit": 1})
    lease = deployed.post(
        "/v2/concurrency_limits/increment-with-lease",
        {"names": [name], "slots": 1, "mode": "concurrency", "lease_duration": 300},
    )
    marker = f"take-turns-{uuid.uuid4().hex}"
    local = LocalRun(marker, str(small_source), str(db))
    try:
        runs = [deployed.trigger("sparkify-etl/backfill", local.parameters), local.start(deployed)]
        waiting = [_wait_for_message(deployed, r, "waiting for the warehouse lock") for r in runs]
    finally:
        deployed.post(
            "/v2/concurrency_limits/decrement-with-lease", {"lease_id": lease["lease_id"]}
        )
    local.finish()
    for run_id in runs:
        deployed.wait_completed(run_id)

    first, second = sorted(_held_interval(deployed, r, name) for r in runs)
    assert max(waiting) < first[0]  # both were waiting before either held the lock
    assert first[0] < first[1] <= second[0] < second[1]  # one after the other, never both
    assert table_counts(db) == expected_from_json(small_source).counts
    limit = deployed.get(f"/v2/concurrency_limits/{name}")
    assert (limit["limit"], limit["active_slots"]) == (1, 0)


class LocalRun:
    """`etl(source, warehouse)` in a thread of this process, against the session's server (the
    thread runs in a copy of this context, where its settings are), its flow run tagged."""

    def __init__(self, marker: str, source: str, warehouse: str) -> None:
        self.marker, self.parameters = marker, {"source": source, "warehouse": warehouse}
        self.outcome: list[Any] = []
        self.thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), daemon=True
        )

    def _run(self) -> None:
        try:
            with tags(self.marker):
                self.outcome.append(etl(**self.parameters))
        except BaseException as error:
            self.outcome.append(error)

    def start(self, deployed: Deployed) -> str:
        """Start the run; its flow run's id once the server has it."""
        self.thread.start()
        body = {"flow_runs": {"tags": {"all_": [self.marker]}}}
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            if found := deployed.post("/flow_runs/filter", body):
                return found[0]["id"]
            assert self.thread.is_alive(), self.outcome
            time.sleep(0.2)
        raise AssertionError("the local run never reached the server")

    def finish(self) -> None:
        """Wait for the run to end; fail with its error if it failed."""
        self.thread.join(RUN_TIMEOUT)
        assert not self.thread.is_alive(), "the local run did not finish"
        [result] = self.outcome
        assert not isinstance(result, BaseException), result


def test_deploy_all_from_the_root_creates_every_deployment_by_a_name_that_says_what(
    deployed: Deployed,
) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    found = deployed.post("/deployments/filter", {"limit": 200})
    flows = {f["id"]: f["name"] for f in deployed.post("/flows/filter", {"limit": 200})}
    names = sorted(f"{flows[d['flow_id']]}/{d['name']}" for d in found)

    assert len(names) == len(config["deployments"]) == len(set(names))
    assert not [name for name in names if name.endswith("/default")]
    schedules = {
        f"{flows[d['flow_id']]}/{d['name']}": [s["active"] for s in d["schedules"]] for d in found
    }
    # The janitor needs AWS: its schedule ships inactive; the daily load's is on.
    assert schedules["sparkify-cluster-janitor/hourly"] == [False]
    assert schedules["sparkify-etl/daily"] == [True]
    # The UI's run form describes every parameter of every deployment (from the flows'
    # docstrings, as the server keeps them).
    undescribed = {
        f"{flows[d['flow_id']]}/{d['name']}": [
            name
            for name, schema in d["parameter_openapi_schema"]["properties"].items()
            if not schema.get("description")
        ]
        for d in found
    }
    assert {name: params for name, params in undescribed.items() if params} == {}
    # A form shows only what its deployment uses: no dates for the daily load, no days_back
    # for a backfill.
    forms = {
        f"{flows[d['flow_id']]}/{d['name']}": set(d["parameter_openapi_schema"]["properties"])
        for d in found
    }
    assert forms["sparkify-etl/daily"] == {
        "source",
        "warehouse",
        "days_back",
        "aws_credentials",
        "reload",
    }
    assert forms["sparkify-etl/backfill"] == {
        "source",
        "warehouse",
        "start_date",
        "end_date",
        "aws_credentials",
        "reload",
    }


def test_make_deploy_creates_the_alert_automations(deployed: Deployed) -> None:
    """`make deploy` ran flows/alerts.py: a failed run and a daily load missing for 26 hours
    are automations on the server, paused (doing nothing) while no notification block named
    sparkify-alerts exists, as in the session."""
    from flows.alerts import FAILED, NOT_COMPLETED

    found = {a["name"]: a for a in deployed.post("/automations/filter", {})}
    assert {FAILED, NOT_COMPLETED} <= set(found)
    failed, missing = found[FAILED], found[NOT_COMPLETED]
    assert failed["trigger"]["posture"] == "Reactive"
    assert set(failed["trigger"]["expect"]) == {
        "prefect.flow-run.Failed",
        "prefect.flow-run.Crashed",
        "prefect.flow-run.TimedOut",
    }
    assert missing["trigger"]["posture"] == "Proactive"
    assert missing["trigger"]["within"] == 26 * 3600
    assert "prefect.flow-run.Completed with rejects" in missing["trigger"]["expect"]
    daily = next(
        d for d in deployed.post("/deployments/filter", {"limit": 200}) if d["name"] == "daily"
    )
    assert missing["trigger"]["match_related"] == {
        "prefect.resource.id": f"prefect.deployment.{daily['id']}"
    }
    for automation in (failed, missing):
        assert automation["enabled"] is False
        assert [a["type"] for a in automation["actions"]] == ["do-nothing"]


def test_with_a_notification_block_the_alerts_notify_through_it() -> None:
    from uuid import uuid4

    from flows.alerts import automations

    block, daily = uuid4(), uuid4()
    for automation in automations(block, daily):
        assert automation.enabled
        [action] = automation.actions
        assert (action.type, action.block_document_id) == ("send-notification", block)
        assert action.subject.startswith("Sparkify: ")


def test_the_ecs_pool_s_job_variables_fit_prefect_aws_s_ecs_job_template() -> None:
    import jsonschema
    from prefect_aws.workers.ecs_worker import ECSWorker

    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    pool = config["definitions"]["work_pools"]["ecs"]
    schema = ECSWorker.get_default_base_job_template()["variables"]
    variables = pool["job_variables"]
    assert set(variables) <= set(schema["properties"])
    # A block reference is filled in by Prefect when the flow run starts: not checked here.
    plain = {k: v for k, v in variables.items() if not str(v).startswith("{{")}
    jsonschema.validate(plain, {**schema, "required": []})
    dockerfile = (PROJECT_ROOT / "deployments" / "Dockerfile").read_text()
    assert "--constraint /tmp/requirements.lock" in dockerfile
    assert "WORKDIR /opt/sparkify" in dockerfile
