"""The project's blocks build their JSON schema once per class and hand out copies."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect_aws import AwsCredentials

from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tasks.warehouse.redshift_data.warehouse import RedshiftDataWarehouse

BLOCKS = [DuckDBWarehouse, RedshiftWarehouse, RedshiftDataWarehouse]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
def test_the_schema_is_block_s_own_and_a_copy_each_time(block: type[Block]) -> None:
    built = Block.model_json_schema.__func__(block)  # Block's own, built now
    first = block.model_json_schema()
    assert first == built
    first["properties"].clear()
    assert block.model_json_schema() == built
    assert block.model_json_schema(mode="serialization") == Block.model_json_schema.__func__(
        block, mode="serialization"
    )


def test_a_dump_with_secrets_reveals_them_nested_blocks_included() -> None:
    credentials = AwsCredentials(aws_access_key_id="k", aws_secret_access_key="aws-secret")
    warehouse = RedshiftWarehouse(
        host="h",
        user="u",
        password="db-secret",
        iam_role_arn="arn:aws:iam::123456789012:role/r",
        aws_credentials=credentials,
    )
    shown = warehouse.model_dump(mode="json", context={"include_secrets": True})
    assert shown["password"] == "db-secret"
    assert shown["aws_credentials"]["aws_secret_access_key"] == "aws-secret"
    hidden = warehouse.model_dump(mode="json")
    assert "db-secret" not in str(hidden)
    assert "aws-secret" not in str(hidden)
    assert "password" in RedshiftWarehouse.model_json_schema()["secret_fields"]


def test_make_blocks_registers_every_block_type_the_project_defines() -> None:
    import importlib
    import inspect
    import pkgutil

    import tasks
    from tasks.warehouse import block_types
    from tests.conftest import PROJECT_ROOT

    defined = set()
    for module in pkgutil.walk_packages(tasks.__path__, "tasks."):
        members = inspect.getmembers(importlib.import_module(module.name))
        defined |= {
            cls
            for _, cls in members
            if Block.is_block_class(cls) and cls.__module__.startswith("tasks.")
        }
    registered = {cls for _, cls in inspect.getmembers(block_types) if Block.is_block_class(cls)}
    assert registered == defined == set(BLOCKS)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "prefect block register -m tasks.warehouse.block_types\n" in makefile
