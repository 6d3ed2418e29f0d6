"""What `make deploy` sets up on the Prefect server named by PREFECT_API_URL before
`prefect deploy --all`, in one process (each `prefect` command is seconds of imports):

1. the process work pool, created when missing (Prefect's default job template for its type);
2. the project's block types (tasks/warehouse/block_types.py, as `make blocks` registers them);
3. the Prefect variable `sparkify_project_dir`: the repository's path, which each deployment's
   pull step changes into (prefect.yaml).

Safe to rerun. `python flows/deploy_setup.py PROJECT_DIR [--work-pool NAME]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tasks.common.cli import add_debug_argument, command
from tasks.common.errors import UserError

PROJECT_DIR_VARIABLE = "sparkify_project_dir"
DEFAULT_WORK_POOL = "sparkify-process"


class NoApiUrl(UserError):
    """PREFECT_API_URL is not set: deployments need a server that outlives the command."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deploy-setup", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("project_dir", type=Path, help="the repository's path")
    parser.add_argument("--work-pool", default=DEFAULT_WORK_POOL, help="the process work pool")
    add_debug_argument(parser)
    return parser.parse_args(argv)


def ensure_work_pool(client, name: str) -> bool:
    """Create the process work pool unless it exists; True when it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        client.read_work_pool(name)
        return False
    except ObjectNotFound:
        pass
    pool = WorkPoolCreate(
        name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
    )
    try:
        client.create_work_pool(work_pool=pool)
    except ObjectAlreadyExists:  # another setup created it meanwhile
        return False
    return True


@command("deploy-setup")
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings
    from prefect.variables import Variable

    from tasks.common.local_server import check_api_reachable
    from tasks.warehouse import block_types

    if not get_current_settings().api.url:
        raise NoApiUrl(
            "PREFECT_API_URL is not set: set it first, e.g. "
            "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    check_api_reachable()
    with get_client(sync_client=True) as client:
        created = ensure_work_pool(client, args.work_pool)
    print(f"work pool {args.work_pool!r} {'created' if created else 'exists'}")
    for name in block_types.__all__:
        getattr(block_types, name).register_type_and_schema()
    print(f"block types registered: {', '.join(block_types.__all__)}")
    project_dir = str(args.project_dir.resolve())
    Variable.set(PROJECT_DIR_VARIABLE, project_dir, overwrite=True)
    print(f"variable {PROJECT_DIR_VARIABLE} = {project_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
