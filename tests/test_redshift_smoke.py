"""The Redshift smoke test (flows/redshift_smoke.py) without a real cluster: its comparison, its
bill and its command line's refusals as plain functions; and, against the session's moto server,
that a run whose Redshift load fails (moto's cluster endpoint cannot be reached) fails saying so
and leaves no cluster, no block and no uploaded object behind."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled
from sqlalchemy.exc import InterfaceError

import flows.redshift_smoke as smoke
from flows.cluster import cluster_create
from flows.redshift_smoke import (
    SMOKE_ROLE_NAME,
    main,
    redshift_smoke,
    smoke_cost,
    smoke_plan,
    tear_down,
)
from tasks.cluster.settings import ClusterSettings
from tasks.common.aws import aws_client
from tasks.run.digest import TableComparison, TableDigest, compare_digests, format_comparison
from tasks.source.s3 import upload_tree
from tests.helpers import run
from tests.test_cluster_teardown import (
    aws_cli_env,  # noqa: F401 - fixture
    block_exists,
    cluster_exists,
    cluster_names,  # noqa: F401 - fixture
    cluster_of,
    credentials_block,  # noqa: F401 - fixture
    task_run_states,
)


def file_count(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def digests(**tables: tuple[int, str]) -> dict[str, TableDigest]:
    """Digests by table name from (rows, sha256) pairs."""
    return {name: TableDigest(name, rows, sha) for name, (rows, sha) in tables.items()}


# --- pure helpers ---------------------------------------------------------------------------


def test_equal_digests_compare_equal_table_by_table() -> None:
    same = digests(songplays=(3, "a1"), users=(2, "b2"))
    comparisons = compare_digests(same, dict(same))
    assert comparisons == [
        TableComparison("songplays", 3, 3, True),
        TableComparison("users", 2, 2, True),
    ]
    assert format_comparison(comparisons).splitlines() == [
        "table      duckdb rows  redshift rows  digests equal",
        "---------  -----------  -------------  -------------",
        "songplays            3              3  yes",
        "users                2              2  yes",
    ]


def test_a_different_digest_or_a_missing_table_compares_unequal() -> None:
    duckdb = digests(songplays=(3, "a1"), users=(2, "b2"), time=(3, "c3"))
    redshift = digests(songplays=(3, "a1"), users=(2, "XX"), artists=(1, "d4"))
    comparisons = compare_digests(duckdb, redshift)
    assert comparisons == [
        TableComparison("songplays", 3, 3, True),
        TableComparison("users", 2, 2, False),  # same count, other content
        TableComparison("time", 3, None, False),
        TableComparison("artists", None, 1, False),
    ]
    lines = format_comparison(comparisons).splitlines()
    assert lines[3].split() == ["users", "2", "2", "NO"]
    assert lines[4].split() == ["time", "3", "NO"]  # the missing side is left blank
    assert str(smoke.StarTablesDiffer(comparisons)) == (
        "star tables differ between DuckDB and Redshift: users, time, artists"
    )


def test_the_cost_is_the_hourly_rate_times_the_cluster_time_and_says_it_is_an_estimate() -> None:
    cluster = ClusterSettings(node_type="dc2.large", number_of_nodes=2)
    assert smoke_cost(cluster, "us-east-1", 1800) == (
        "cost: about $0.25 (2 x dc2.large in us-east-1 at $0.50/hour for 30.0 minutes; an "
        "estimate from the on-demand price table of 2026-11 in tasks/cluster/cost.py, not "
        "AWS's bill)"
    )
    assert smoke_cost(cluster, "eu-west-1", 600).startswith(
        "cost: unknown (2 x dc2.large in eu-west-1 is not in the price table"
    )
    assert smoke_cost(cluster, "us-east-1", None) == "cost: no cluster was created"


def test_a_run_names_its_cluster_block_and_prefix_after_itself() -> None:
    run_id = uuid.uuid4()
    plan = smoke_plan("s3://bucket/some/prefix/", None, run_id)
    identifier = f"sparkify-smoke-{run_id.hex[:12]}"
    assert (plan.cluster.identifier, plan.cluster.warehouse_block) == (identifier, identifier)
    assert plan.run_source == f"s3://bucket/some/prefix/smoke-{run_id.hex[:12]}"
    assert plan.cluster.role_name == SMOKE_ROLE_NAME  # never the production COPY role
    assert plan.cluster.ttl_hours == 2
    assert smoke_plan("s3://bucket", None, run_id).run_source.endswith(
        "bucket/smoke-" + run_id.hex[:12]
    )
    given = smoke_plan("s3://b/p", ClusterSettings(node_type="ra3.large"), run_id).cluster
    assert (given.identifier, given.node_type) == (identifier, "ra3.large")
    assert (given.role_name, given.ttl_hours) == (SMOKE_ROLE_NAME, 2)
    given = smoke_plan("s3://b/p", ClusterSettings(role_name="mine", ttl_hours=1), run_id).cluster
    assert (given.role_name, given.ttl_hours) == ("mine", 1)
    with pytest.raises(ValueError, match="not an s3:// URI"):
        smoke_plan("/data/sample", None, run_id)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "redshift-smoke: no source: name the S3 prefix"),
        (["--source", "data/sample"], "redshift-smoke: source 'data/sample' is not s3://bucket/"),
        (["--source", "s3:/bucket/p"], "is not s3://bucket/prefix: Redshift loads by COPY"),
        (["--source", "s3://b/p", "--sample", "no/such/dir"], "sample 'no/such/dir' is not a"),
    ],
)
def test_a_wrong_command_line_ends_in_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert message in err, err


# --- against moto: the Redshift load fails, nothing is left --------------------------------


def run_objects(aws_credentials, source: str) -> list[str]:
    """Every key under a source's prefix."""
    bucket, prefix = source.removeprefix("s3://").split("/", 1)
    listed = aws_client(aws_credentials, "s3").list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return [item["Key"] for item in listed.get("Contents", [])]


@pytest.fixture
def smoke_source(aws_credentials, cluster_names: dict[str, str]) -> str:  # noqa: F811
    """The test's s3:// prefix, in a bucket that exists."""
    bucket = cluster_names["source"].removeprefix("s3://").split("/", 1)[0]
    aws_client(aws_credentials, "s3").create_bucket(Bucket=bucket)
    return cluster_names["source"]


def test_a_failed_redshift_load_fails_the_run_and_leaves_nothing_behind(
    aws_credentials,
    credentials_block: str,  # noqa: F811
    cluster_names: dict[str, str],  # noqa: F811
    smoke_source: str,
    small_source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    real_etl = smoke.etl

    def recording_etl(source: str, warehouse: str, **options: Any) -> dict:
        if source.startswith("s3://"):  # the Redshift load: what exists while it runs
            identifier = warehouse.split("/", 1)[1]
            seen.update(identifier=identifier, source=source, warehouse=warehouse)
            seen["exists"] = cluster_exists(aws_credentials, identifier), block_exists(identifier)
            seen["objects"] = len(run_objects(aws_credentials, source))
        return real_etl(source, warehouse, **options)

    monkeypatch.setattr(smoke, "etl", recording_etl)
    state = redshift_smoke(
        smoke_source,
        aws_credentials=credentials_block,
        cluster=cluster_of(cluster_names),
        sample=str(small_source),
        return_state=True,
    )

    assert state.is_failed()
    with pytest.raises(InterfaceError, match="communication error") as failure:
        state.result()
    run_id = state.state_details.flow_run_id
    identifier = f"sparkify-smoke-{run_id.hex[:12]}"
    # The run made the cluster and its block and uploaded the sample before the Redshift load...
    assert seen == {
        "identifier": identifier,
        "source": f"{smoke_source}/smoke-{run_id.hex[:12]}",
        "warehouse": f"sparkify-redshift-warehouse/{identifier}",
        "exists": (True, True),
        "objects": file_count(small_source),
    }
    # ...which failed, naming the step, and the cost of the cluster's life was estimated...
    notes = failure.value.__notes__
    assert notes[0] == "while loading the sample into Redshift"
    assert re.fullmatch(
        r"cost: about \$0\.\d\d \(1 x dc2\.large in us-east-1 at \$0\.25/hour .*", notes[1]
    )
    # ...and nothing is left: no cluster, no block, no object under the run's prefix.
    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)
    assert run_objects(aws_credentials, seen["source"]) == []
    steps = ["upload-tree", "ensure-cluster", "delete-cluster", "wait-until-deleted"]
    steps += ["delete-warehouse-block", "delete-prefix"]
    states = task_run_states(run_id, set(steps))
    assert {s: states.get(s) for s in steps} == dict.fromkeys(steps, "COMPLETED")


def test_the_cancellation_hook_deletes_the_cluster_block_and_objects(
    aws_credentials,
    credentials_block: str,  # noqa: F811
    cluster_names: dict[str, str],  # noqa: F811
    smoke_source: str,
    small_source: Path,
) -> None:
    assert tear_down in redshift_smoke.on_cancellation_hooks
    assert tear_down in redshift_smoke.on_crashed_hooks
    cluster = cluster_of(cluster_names)
    parameters = {"source": smoke_source, "aws_credentials": credentials_block}
    run = FlowRun(flow_id=uuid.uuid4(), parameters={**parameters, "cluster": cluster.model_dump()})
    plan = smoke_plan(smoke_source, cluster, run.id)
    cluster_create(smoke_source, plan.cluster, aws_credentials=credentials_block)
    upload_tree.fn(str(small_source), plan.run_objects(credentials_block))
    identifier = plan.cluster.identifier
    assert cluster_exists(aws_credentials, identifier)
    assert block_exists(identifier)
    assert len(run_objects(aws_credentials, plan.run_source)) == file_count(small_source)

    tear_down(redshift_smoke, run, Cancelled())

    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)
    assert run_objects(aws_credentials, plan.run_source) == []


def test_the_command_line_exits_1_saying_why_and_leaves_nothing_behind(
    aws_credentials,
    aws_cli_env: dict[str, str],  # noqa: F811
    smoke_source: str,
) -> None:
    """The script as `make redshift-smoke` runs it, with AWS through boto3's chain (no block)."""
    fast = ["--poll-seconds", "0.1", "--timeout-minutes", "1"]
    done = run("redshift_smoke.py", "--source", smoke_source, *fast, env=aws_cli_env)
    assert done.returncode == 1, done.stderr
    failure = done.stderr[done.stderr.find("SMOKE FAILED") :].splitlines()[:3]
    assert len(failure) == 3, done.stderr
    assert failure[0].startswith("SMOKE FAILED: InterfaceError: (redshift_connector.error"), failure
    assert "communication error" in failure[0], failure
    assert failure[1] == "while loading the sample into Redshift", failure
    assert failure[2].startswith("cost: about $0."), failure
    identifier = re.search(r"removed cluster (sparkify-smoke-[0-9a-f]{12})", done.stderr)[1]
    assert not cluster_exists(aws_credentials, identifier)
    assert not block_exists(identifier)
    assert run_objects(aws_credentials, smoke_source) == []


@pytest.fixture
def duckdb_for_redshift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Redshift's part played by DuckDB: the load into the cluster's block loads the uploaded S3
    objects into a DuckDB file instead, and the block's digests are read from that file, so a
    whole run (cluster made and deleted on moto) can succeed. `drop_a_user` makes them differ."""
    from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse

    stand_in = str(tmp_path / "redshift-stand-in.duckdb")
    control: dict[str, Any] = {"drop_a_user": False, "loaded": []}
    import tasks.run.digest as digest

    real_etl, resolve_warehouse = smoke.etl, digest.resolve_warehouse

    def is_cluster_block(warehouse: str) -> bool:
        return warehouse.startswith("sparkify-redshift-warehouse/")

    def load(source: str, warehouse: str, **options: Any) -> dict:
        if not is_cluster_block(warehouse):
            return real_etl(source, warehouse, **options)
        control["loaded"].append(source)
        summary = real_etl(source, stand_in, **options)
        if control["drop_a_user"]:
            with duckdb.connect(stand_in) as con:
                con.execute("delete from users where user_id = (select min(user_id) from users)")
        return summary

    def resolve(warehouse: str) -> Any:
        return (
            DuckDBWarehouse(path=stand_in)
            if is_cluster_block(warehouse)
            else resolve_warehouse(warehouse)
        )

    monkeypatch.setenv("SPARKIFY_CACHE_DIR", str(tmp_path / "s3-cache"))
    monkeypatch.setattr(smoke, "etl", load)
    monkeypatch.setattr(digest, "resolve_warehouse", resolve)
    return control


def test_the_command_line_exits_0_when_the_tables_agree_and_1_when_one_differs(
    aws_credentials,
    credentials_block: str,  # noqa: F811
    smoke_source: str,
    small_source: Path,
    duckdb_for_redshift: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--source", smoke_source, "--aws-credentials", credentials_block]
    argv += ["--sample", str(small_source)]
    argv += ["--poll-seconds", "0.1", "--ingress-cidr", "203.0.113.7/32"]

    assert main(argv) == 0
    out, err = capsys.readouterr()
    table = out.strip().splitlines()
    assert table[0].split() == ["table", "duckdb", "rows", "redshift", "rows", "digests", "equal"]
    rows = {line.split()[0]: line.split()[1:] for line in table[2:7]}
    assert list(rows) == ["songplays", "users", "songs", "artists", "time"]
    assert all(r[0] == r[1] != "0" and r[2] == "yes" for r in rows.values()), out
    assert "all 5 star tables are the same on DuckDB and Redshift" in out
    # The questions for the cluster are asked (moto's cluster has no database to answer them).
    answered = out.split("what the cluster answered:\n", 1)[1].splitlines()
    assert [line.split(":")[0] for line in answered[:3]] == [
        "- copy_ids_and_json_mapping",
        "- lock_wait_bound",
        "- statupdate_needs_owner",
    ]
    assert re.search(r"^cost: about \$0\.00 \(1 x dc2\.large in us-east-1", out, re.M)
    assert "no --ingress-cidr" not in err

    duckdb_for_redshift["drop_a_user"] = True
    assert main(argv) == 1
    out, err = capsys.readouterr()
    users = next(line.split() for line in out.splitlines() if line.startswith("users"))
    assert int(users[1]) == int(users[2]) + 1
    assert users[3] == "NO"
    assert (
        "SMOKE FAILED: StarTablesDiffer: star tables differ between DuckDB and Redshift: users"
        in err
    )
    # Both runs uploaded the sample, loaded it from S3, and left nothing behind.
    assert len(duckdb_for_redshift["loaded"]) == 2
    for uploaded in duckdb_for_redshift["loaded"]:
        identifier = "sparkify-smoke-" + uploaded.rsplit("smoke-", 1)[1]
        assert not cluster_exists(aws_credentials, identifier)
        assert not block_exists(identifier)
    assert run_objects(aws_credentials, smoke_source) == []
