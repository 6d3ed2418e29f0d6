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
