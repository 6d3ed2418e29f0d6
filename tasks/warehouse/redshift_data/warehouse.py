"""Amazon Redshift through the Data API: the Redshift warehouse (the same SQL, COPY, run lock,
rejects and checks) with its statements sent over HTTPS by boto3's `redshift-data` client, for
workers outside the cluster's VPC: no database driver, no open port.

The block names the cluster (ClusterIdentifier, signed in as a database user with temporary
credentials, or by a Secrets Manager secret) or the Serverless workgroup (WorkgroupName, as
the caller's IAM identity, or by a secret) and the database; the engine's connections are Data
API sessions (tasks/warehouse/redshift_data/dbapi.py).
"""

from __future__ import annotations

from typing import Any, Literal

from prefect_aws import AwsCredentials
from pydantic import Field, model_validator
from sqlalchemy import URL, Engine, create_engine

from tasks.common.aws import aws_client
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse
from tasks.warehouse.redshift_data.dbapi import DEFAULT_KEEP_ALIVE_SECONDS
from tasks.warehouse.redshift_data.dialect import DIALECT_NAME

# The longest a Data API session is kept alive after its last statement.
MAX_KEEP_ALIVE_SECONDS = 86_400


def target_problem(
    sign_in: str,
    user: str | None,
    has_password: bool,
    cluster_identifier: str | None,
    workgroup: str | None,
    secret_arn: str | None,
) -> str | None:
    """What is wrong with a Data API block's sign-in fields, in one sentence naming the fix;
    None if nothing is."""
    if has_password:
        return "the Data API stores no password: remove it (sign in by IAM or secret_arn)"
    if bool(cluster_identifier) == bool(workgroup):
        return (
            "the Data API needs one of cluster_identifier (a provisioned cluster) and workgroup "
            f"(Redshift Serverless), not {'both' if workgroup else 'neither'}"
        )
    if sign_in == "secret":
        if not secret_arn:
            return "sign_in='secret' needs secret_arn: the Secrets Manager secret to sign in with"
        if user:
            return "sign_in='secret' signs in as the secret's user: remove user"
        return None
    if secret_arn:
        return "secret_arn is for sign_in='secret': set it, or remove secret_arn"
    if workgroup and user:
        return (
            "IAM sign-in on a workgroup signs in as the caller's IAM identity: remove user, "
            "or use sign_in='secret'"
        )
    return None


class RedshiftDataWarehouse(RedshiftWarehouse):
    """Amazon Redshift reached through the Redshift Data API instead of a database driver."""

    _block_type_name = "Sparkify Redshift Data API Warehouse"
    _block_type_slug = "sparkify-redshift-data-warehouse"
    _description = (
        "Sparkify's warehouse on Amazon Redshift, reached through the Redshift Data API "
        "(HTTPS, no driver, no open port), loaded by COPY from S3."
    )

    host: str | None = Field(
        default=None,
        description="Not used: the Data API reaches the cluster or workgroup by its name.",
    )
    port: int = Field(default=5439, description="Not used: the Data API needs no port.")
    sign_in: Literal["iam", "secret"] = Field(  # type: ignore[assignment]
        default="iam",
        description="'iam': temporary credentials for `user` on the cluster (the caller's IAM "
        "identity without user; on a workgroup always), or 'secret': the Secrets Manager "
        "secret secret_arn.",
    )
    user: str | None = Field(
        default=None,
        description="Database user on a cluster with IAM sign-in (the Data API's DbUser, "
        "signed in by GetClusterCredentials); none to sign in as the caller's IAM identity.",
    )
    cluster_identifier: str | None = Field(
        default=None, description="The provisioned cluster's identifier (or give workgroup)."
    )
    workgroup: str | None = Field(
        default=None, description="The Redshift Serverless workgroup's name or ARN."
    )
    secret_arn: str | None = Field(
        default=None,
        description="ARN of the Secrets Manager secret holding the database user and password "
        "(sign_in='secret').",
    )
    session_keep_alive_seconds: int = Field(
        default=DEFAULT_KEEP_ALIVE_SECONDS,
        ge=1,
        le=MAX_KEEP_ALIVE_SECONDS,
        description="Seconds a Data API session (a connection) outlives its last statement: "
        "longer than the run's longest pause between statements (e.g. combining song files), "
        "or the session ends and its transaction rolls back.",
    )
    aws_credentials: AwsCredentials | None = Field(
        default=None,
        description="Credentials of the Data API calls and of the run's manifests and JSONPaths "
        "in S3 (default: boto3's chain); their region, else `region`, is the Data API's.",
    )

    @model_validator(mode="after")
    def _sign_in_fields(self) -> RedshiftDataWarehouse:
        fields = (self.user, self.password is not None, self.cluster_identifier, self.workgroup)
        if problem := target_problem(self.sign_in, *fields, self.secret_arn):
            raise ValueError(problem)
        return self

    def target(self) -> dict[str, str]:
        """The Data API's names of the database, for a session's first statement."""
        found: dict[str, Any] = {
            "Database": self.database,
            "ClusterIdentifier": self.cluster_identifier,
            "WorkgroupName": self.workgroup,
            "DbUser": self.user if self.sign_in == "iam" else None,
            "SecretArn": self.secret_arn if self.sign_in == "secret" else None,
        }
        return {name: value for name, value in found.items() if value}

    def client(self) -> Any:
        """The boto3 `redshift-data` client, in the credentials' region or the block's."""
        credentials = self.aws_credentials or AwsCredentials()
        if credentials.region_name is None and credentials.get_boto3_session().region_name is None:
            credentials = credentials.model_copy(update={"region_name": self.region})
        return aws_client(credentials, "redshift-data")

    def url(self) -> URL:
        """The SQLAlchemy URL naming the dialect (the target goes as connect_args)."""
        return URL.create(DIALECT_NAME.replace(".", "+"))

    def get_engine(self) -> Engine:
        """A SQLAlchemy engine whose connections are Data API sessions: no socket, so no
        keepalives and no ping (a lost session fails its next statement)."""
        connect_args = {
            "client": self.client(),
            "target": self.target(),
            "keep_alive_seconds": self.session_keep_alive_seconds,
        }
        return create_engine(self.url(), connect_args=connect_args)

    def describe(self) -> str:
        """The cluster or workgroup and database, as a spec names them."""
        where = self.cluster_identifier or f"workgroup:{self.workgroup}"
        return f"redshift-data://{where}/{self.database}"
