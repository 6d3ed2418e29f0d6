"""The whole flow against a real Redshift cluster and S3 bucket.

Skipped unless these are set (README, "Running against Redshift"): REDSHIFT_HOST, REDSHIFT_USER,
REDSHIFT_PASSWORD, REDSHIFT_IAM_ROLE_ARN and SPARKIFY_S3_SOURCE (s3://bucket/prefix holding
log_data/ and song_data/); optionally REDSHIFT_PORT, REDSHIFT_DATABASE, REDSHIFT_REGION.
AWS access for writing manifests follows boto3's standard chain.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from flows.etl import etl
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse

REQUIRED = (
    "REDSHIFT_HOST",
    "REDSHIFT_USER",
    "REDSHIFT_PASSWORD",
    "REDSHIFT_IAM_ROLE_ARN",
    "SPARKIFY_S3_SOURCE",
)

pytestmark = [
    pytest.mark.redshift,
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in REQUIRED),
        reason="needs a Redshift cluster: set " + ", ".join(REQUIRED),
    ),
    pytest.mark.usefixtures("prefect_server"),
]


def test_etl_on_redshift_is_idempotent_and_passes_its_checks() -> None:
    block = RedshiftWarehouse(
        host=os.environ["REDSHIFT_HOST"],
        port=int(os.environ.get("REDSHIFT_PORT", "5439")),
        database=os.environ.get("REDSHIFT_DATABASE", "dev"),
        user=os.environ["REDSHIFT_USER"],
        password=os.environ["REDSHIFT_PASSWORD"],
        iam_role_arn=os.environ["REDSHIFT_IAM_ROLE_ARN"],
        region=os.environ.get("REDSHIFT_REGION", "us-west-2"),
        max_errors=100,
    )
    block.save("integration-test", overwrite=True)
    name = "sparkify-redshift-warehouse/integration-test"
    first = etl(os.environ["SPARKIFY_S3_SOURCE"], name)
    assert all(check["passed"] for check in first["checks"])
    assert first["counts"]["songplays"] > 0
    assert first["counts"]["users"] > 0
    second = etl(os.environ["SPARKIFY_S3_SOURCE"], name)
    assert second["counts"] == first["counts"]
    with block.get_engine().connect() as conn:
        matched = conn.execute(text("select count(*) from songplays where song_id is not null"))
        assert matched.scalar_one() > 0
