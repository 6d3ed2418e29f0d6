"""IAM sign-in to Redshift: temporary database credentials, fetched with AWS credentials for each
new connection, so that no database password is stored anywhere and a pooled engine never signs
in with an expired one.

- A provisioned cluster: redshift GetClusterCredentials (ClusterIdentifier, DbUser, DbName,
  DurationSeconds, AutoCreate false) signs in as an existing database user, named back as
  `IAM:<user>`; the caller needs redshift:GetClusterCredentials on that dbuser and dbname.
- Redshift Serverless: redshift-serverless GetCredentials (workgroupName, dbName,
  durationSeconds) signs in as the database user that Redshift maps the caller's IAM identity
  to; the caller needs redshift-serverless:GetCredentials on the workgroup.

A temporary password lasts DurationSeconds (900 to 3600 s): it is only needed to sign in, and the
session outlives it, so the shortest is asked for.
"""

from __future__ import annotations

from typing import Any, Protocol

from prefect_aws import AwsCredentials
from sqlalchemy import Engine, event

from tasks.common.aws import aws_client

SIGN_IN_MODES = ("password", "iam")
CREDENTIALS_SECONDS = 900


class SignInTarget(Protocol):
    """What IAM sign-in reads from a warehouse block."""

    host: str
    user: str | None
    database: str
    cluster_identifier: str | None
    workgroup: str | None
    aws_credentials: AwsCredentials | None


def sign_in_problem(
    sign_in: str,
    user: str | None,
    has_password: bool,
    cluster_identifier: str | None,
    workgroup: str | None,
) -> str | None:
    """What is wrong with a block's sign-in fields, in one sentence naming the fix; None if
    nothing is."""
    if sign_in == "password":
        missing = [
            name for name, given in (("user", user), ("password", has_password)) if not given
        ]
        if missing:
            return (
                f"password sign-in needs a {' and a '.join(missing)}: give "
                f"{'them' if len(missing) > 1 else 'it'}, or use "
                "sign_in='iam' with cluster_identifier or workgroup (no stored password)"
            )
        return None
    if has_password:
        return "IAM sign-in stores no password: remove it, or use sign_in='password'"
    if bool(cluster_identifier) == bool(workgroup):
        return (
            "IAM sign-in needs one of cluster_identifier (a provisioned cluster: "
            "GetClusterCredentials) and workgroup (Redshift Serverless: GetCredentials), "
            f"not {'both' if workgroup else 'neither'}"
        )
    if cluster_identifier and not user:
        return (
            "IAM sign-in on a cluster needs a user: the existing database user that "
            "GetClusterCredentials signs in as (the master user, e.g. sparkify)"
        )
    return None


def endpoint_region(host: str) -> str | None:
    """The region in a Redshift endpoint's name (`<name>.<id>.<region>.redshift.amazonaws.com`
    or `<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com`); None otherwise."""
    parts = host.split(".")
    if len(parts) >= 5 and parts[-3].startswith("redshift") and parts[-2:] == ["amazonaws", "com"]:
        return parts[-4]
    return None


def cluster_credentials(
    redshift: Any, cluster_identifier: str, user: str, database: str
) -> tuple[str, str]:
    """Database user and temporary password of an existing user of a provisioned cluster."""
    answer = redshift.get_cluster_credentials(
        ClusterIdentifier=cluster_identifier,
        DbUser=user,
        DbName=database,
        DurationSeconds=CREDENTIALS_SECONDS,
        AutoCreate=False,
    )
    return answer["DbUser"], answer["DbPassword"]


def serverless_credentials(serverless: Any, workgroup: str, database: str) -> tuple[str, str]:
    """Database user and temporary password of the caller's IAM identity on a workgroup."""
    answer = serverless.get_credentials(
        workgroupName=workgroup, dbName=database, durationSeconds=CREDENTIALS_SECONDS
    )
    return answer["dbUser"], answer["dbPassword"]


def sign_in_credentials(target: SignInTarget) -> AwsCredentials:
    """The AWS credentials that fetch the temporary ones: the block's (boto3's standard chain
    without one), in the endpoint's region when they name none."""
    credentials = target.aws_credentials or AwsCredentials()
    region = endpoint_region(target.host)
    if credentials.region_name is None and region is not None:
        return credentials.model_copy(update={"region_name": region})
    return credentials


def temporary_credentials(target: SignInTarget) -> tuple[str, str]:
    """A fresh database user and temporary password for the block's cluster or workgroup."""
    credentials = sign_in_credentials(target)
    if target.workgroup:
        serverless = aws_client(credentials, "redshift-serverless")
        return serverless_credentials(serverless, target.workgroup, target.database)
    if not target.cluster_identifier or not target.user:
        raise ValueError("IAM sign-in on a cluster needs cluster_identifier and user")
    redshift = aws_client(credentials, "redshift")
    return cluster_credentials(redshift, target.cluster_identifier, target.user, target.database)


def sign_in_per_connection(engine: Engine, target: SignInTarget) -> None:
    """Sign each new DB-API connection of the engine in with fresh temporary credentials
    (SQLAlchemy's do_connect event fills its user and password), so that a connection the pool
    opens later never uses credentials that have expired since the engine was made."""

    @event.listens_for(engine, "do_connect")
    def _sign_in(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["user"], cparams["password"] = temporary_credentials(target)
