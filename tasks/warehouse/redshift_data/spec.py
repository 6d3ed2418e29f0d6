"""A Data API warehouse named on a command line, without a saved block:

    redshift-data://CLUSTER/DATABASE?user=USER            a cluster, as a database user
    redshift-data://CLUSTER/DATABASE                      a cluster, as the caller's IAM identity
    redshift-data://workgroup:NAME/DATABASE               a Serverless workgroup
    ...?secret_arn=ARN                                    signed in by a Secrets Manager secret

and, for any of them, `iam_role=ARN` (COPY's role; the cluster's default role without it),
`region=REGION` and `aws_credentials=BLOCK` (a saved AwsCredentials block).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from prefect.blocks.core import Block
from pydantic import ValidationError

from tasks.common.aws import load_credentials
from tasks.common.errors import BadArgument
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tasks.warehouse.redshift_data.warehouse import RedshiftDataWarehouse

SCHEME = "redshift-data"
WORKGROUP_PREFIX = "workgroup:"
OPTIONS = ("user", "iam_role", "region", "secret_arn", "aws_credentials")
SPEC_FORMS = (
    "redshift-data://CLUSTER/DATABASE[?user=USER] or redshift-data://workgroup:NAME/DATABASE "
    "(options: " + ", ".join(OPTIONS) + ")"
)


def is_data_api_spec(spec: str) -> bool:
    """True for a spec naming a Data API warehouse (`redshift-data://…`)."""
    return spec.strip().lower().startswith(f"{SCHEME}://")


def spec_fields(spec: str) -> dict[str, Any]:
    """The block's fields a spec gives (aws_credentials as the block's name); BadArgument, in
    one line, for a spec that cannot be right."""
    parts = urlsplit(spec.strip())
    where, database = unquote(parts.netloc), unquote(parts.path.strip("/"))
    if not where or not database or "/" in database:
        raise BadArgument(f"warehouse {spec}: name the cluster and the database as {SPEC_FORMS}")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in OPTIONS:
            raise BadArgument(f"warehouse {spec}: unknown option {key!r}; use {SPEC_FORMS}")
        if not value:
            raise BadArgument(f"warehouse {spec}: option {key} has no value")
        options[key] = value
    fields: dict[str, Any] = {
        "database": database,
        "iam_role_arn": options.get("iam_role", "default"),
    }
    if where.lower().startswith(WORKGROUP_PREFIX):
        fields["workgroup"] = where[len(WORKGROUP_PREFIX) :]
    else:
        fields["cluster_identifier"] = where
    if "secret_arn" in options:
        fields.update(sign_in="secret", secret_arn=options["secret_arn"])
    fields.update({k: options[k] for k in ("user", "region", "aws_credentials") if k in options})
    check_fields(spec, {k: v for k, v in fields.items() if k != "aws_credentials"})
    return fields


def check_fields(spec: str, fields: dict[str, Any]) -> RedshiftDataWarehouse:
    """The block the fields make; BadArgument with the block's own one-line reason if none."""
    try:
        return RedshiftDataWarehouse(**fields)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise BadArgument(f"warehouse {spec}: {reason}") from None


def warehouse_from_spec(spec: str) -> RedshiftDataWarehouse:
    """The Data API warehouse a spec names, its AwsCredentials block loaded where named."""
    fields = spec_fields(spec)
    if "aws_credentials" in fields:
        fields["aws_credentials"] = load_credentials(fields["aws_credentials"])
    return check_fields(spec, fields)


def spec_of_cluster_block(saved: str, cluster_identifier: str, aws_credentials: str | None) -> str:
    """The spec reaching a saved Redshift warehouse block's cluster through the Data API: its
    database, user (signed in by GetClusterCredentials), COPY role and region."""
    block = Block.load(saved)
    if not isinstance(block, RedshiftWarehouse):
        raise BadArgument(f"{saved} is no Redshift warehouse block: no cluster to reach")
    options = {
        "user": block.user,
        "iam_role": block.iam_role_arn,
        "region": block.region,
        "aws_credentials": aws_credentials,
    }
    query = urlencode({k: v for k, v in options.items() if v})
    return f"{SCHEME}://{cluster_identifier}/{quote(block.database)}?{query}"
