"""AWS access shared by every concern: one client factory, the region, the error code.

With no AwsCredentials block named, access follows boto3's standard chain (environment
variables including AWS_ENDPOINT_URL, profiles, instance roles).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from botocore.exceptions import ClientError
from prefect_aws import AwsCredentials
from pydantic import BaseModel, SecretStr

from tasks.common.errors import BadArgument

# Where the project's resources live when nothing says otherwise.
DEFAULT_REGION = "us-west-2"


def load_credentials(name: str | None) -> AwsCredentials:
    """The named AwsCredentials block, or boto3's standard chain when no name is given; a name
    no block has is a user's mistake (BadArgument), said in one line."""
    if not name:
        return AwsCredentials()
    try:
        return AwsCredentials.load(name)
    except ValueError as error:
        if "Unable to find block document" not in str(error):
            raise
        raise BadArgument(
            f"no AwsCredentials block is named {name!r}: give the aws credentials "
            "(--aws-credentials) the name of a "
            "saved block (prefect block ls), or leave it out to use boto3's standard chain"
        ) from None


def aws_client(credentials: AwsCredentials, service: str) -> Any:
    """A boto3 client of the service, made once for the same credentials and boto3 environment
    and then shared: a client is thread-safe and renews the credentials of boto3's chain
    itself, and making one (its session, its service model) costs a good part of a second.
    (prefect-aws caches its clients per block alone, whatever the environment says.)"""
    key = (service, _fingerprint(credentials), _boto3_environment())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            overrides = credentials.aws_client_parameters.get_params_override()
            client = credentials.get_boto3_session().client(service, **overrides)
            _CLIENTS[key] = client
        return client


_CLIENTS: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _fingerprint(credentials: AwsCredentials) -> str:
    """A digest of every setting of the credentials, secrets included (never kept in clear);
    not of the block's saved name, so every block holding the same settings shares clients.
    (Read field by field: a Block's own dump with its secrets builds its JSON schema once per
    field.)"""
    settings = {name: _plain(getattr(credentials, name)) for name in type(credentials).model_fields}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _plain(value: Any) -> Any:
    """A setting as JSON can hold it, a secret revealed."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _boto3_environment() -> tuple[tuple[str, str], ...]:
    """The environment variables boto3's chain reads (endpoints, region, keys, profiles)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def require_aws(credentials: AwsCredentials, otherwise: str) -> None:
    """A user's mistake, in one line, when the credentials find no region or no keys (boto3
    would fail later with NoRegionError or NoCredentialsError); `otherwise` says what is
    not done then."""
    session = credentials.get_boto3_session()
    if (credentials.region_name or session.region_name) and session.get_credentials():
        return
    raise BadArgument(
        f"no AWS region/credentials configured: {otherwise}; set AWS_DEFAULT_REGION and "
        "credentials (environment, profile or instance role), or give the aws credentials "
        "(--aws-credentials) a "
        "saved AwsCredentials block"
    )


def aws_region(credentials: AwsCredentials) -> str | None:
    """The region the credentials' clients talk to."""
    return credentials.region_name or credentials.get_boto3_session().region_name


def error_code(error: BaseException) -> str:
    """The AWS error code of a failed call ('' for anything that is not an AWS error)."""
    response: Any = getattr(error, "response", None)
    if isinstance(error, ClientError) or isinstance(response, dict):
        return (response or {}).get("Error", {}).get("Code", "")
    return ""
