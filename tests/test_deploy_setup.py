"""flows/deploy_setup.py, what `make deploy` sets up before `prefect deploy --all`, on the
session's Prefect server (the deployments' tests run the whole `make deploy`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.variables import Variable
from prefect.workers.process import ProcessWorker

from flows.deploy_setup import PROJECT_DIR_VARIABLE
from tasks.warehouse import block_types
from tests.conftest import PROJECT_ROOT, Said


def test_without_prefect_api_url_it_is_one_line_and_sets_up_nothing(
    command_line: Callable[..., Said], tmp_path: Path
) -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        said = command_line("deploy_setup.py", str(tmp_path))
    assert said.status == 2
    assert said.out == ""
    assert said.err.strip().splitlines() == [
        "deploy-setup: PREFECT_API_URL is not set: set it first, e.g. "
        "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api"
    ]


@pytest.mark.usefixtures("prefect_server")
def test_it_creates_the_pool_once_registers_the_blocks_and_stores_the_resolved_path(
    command_line: Callable[..., Said],
) -> None:
    """On a work pool of the test's own. The variable is the session's deployments' own, read
    by their runs meanwhile: it is given the repository's path, as `make deploy` gives it,
    spelled another way."""
    pool = f"sparkify-test-{uuid.uuid4().hex[:8]}"
    spelled = str(PROJECT_ROOT / "flows" / "..")
    said = command_line("deploy_setup.py", spelled, "--work-pool", pool)
    assert said.status == 0
    assert f"work pool {pool!r} created" in said.out
    with get_client(sync_client=True) as client:
        created = client.read_work_pool(pool)
        slugs = {block_type.slug for block_type in client.read_block_types()}
    assert created.type == "process"
    assert created.base_job_template == ProcessWorker.get_default_base_job_template()
    ours = {getattr(block_types, name).get_block_type_slug() for name in block_types.__all__}
    assert ours <= slugs
    assert Variable.get(PROJECT_DIR_VARIABLE) == str(PROJECT_ROOT)

    # Again: the pool is kept as it is.
    said = command_line("deploy_setup.py", spelled, "--work-pool", pool)
    assert said.status == 0
    assert f"work pool {pool!r} exists" in said.out
    with get_client(sync_client=True) as client:
        assert client.read_work_pool(pool).id == created.id
        client.delete_work_pool(pool)
