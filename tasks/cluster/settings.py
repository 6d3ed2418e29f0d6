"""What a cluster is asked to be: the project's tags and defaults, the expiry helpers, and
ClusterSettings, the one model that the flows take as a parameter (the Prefect UI renders it as a
form) and that the command lines build their options from; ServerlessSettings is the same for a
Redshift Serverless namespace and workgroup. Both extend RedshiftSettings, what they share.

Safe by default: no ingress is opened unless a CIDR is named, and every cluster carries project,
owner and expiry tags, so the janitor can find it.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
from abc import abstractmethod
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

PROJECT = "sparkify-etl"
PROJECT_TAG = "project"
OWNER_TAG = "owner"
EXPIRES_TAG = "expires-at"
REDSHIFT_PORT = 5439
DEFAULT_IDENTIFIER = "sparkify"
DEFAULT_NODE_TYPE = "dc2.large"
DEFAULT_DATABASE = "dev"
DEFAULT_MASTER_USER = "sparkify"
DEFAULT_ROLE_NAME = "sparkify-redshift-s3-read"
DEFAULT_PASSWORD_SECRET = "sparkify-redshift-master-password"
DEFAULT_TTL_HOURS = 8.0
EPHEMERAL_TTL_HOURS = 3.0
POLL_SECONDS = 30.0
TIMEOUT_MINUTES = 30.0
DEFAULT_WORKGROUP = "sparkify-serverless"
DEFAULT_SERVERLESS_PASSWORD_SECRET = "sparkify-redshift-serverless-admin-password"
# Redshift Serverless base capacity, in RPUs (documentation of 2026): the default is 128; the
# smallest is 4; then multiples of 8 up to 512, and multiples of 32 up to 1024 (in the regions
# that allow more than 512).
DEFAULT_BASE_CAPACITY = 4

PositiveFloat = Annotated[float, Field(gt=0)]
# Workgroup and namespace names, as the Redshift Serverless API reference constrains them.
ServerlessName = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[a-z0-9-]+$")]
Settings = TypeVar("Settings", bound="RedshiftSettings")


def format_expiry(moment: datetime) -> str:
    """An ISO-8601 UTC timestamp to the second, as written in the expires-at tag."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expiry(value: str) -> datetime | None:
    """The moment an expires-at tag names (naive values are UTC); None if unreadable."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cluster_tags(owner: str, expires_at: datetime) -> list[dict[str, str]]:
    """The tags that mark a cluster as this project's, with its owner and expiry."""
    return [
        {"Key": PROJECT_TAG, "Value": PROJECT},
        {"Key": OWNER_TAG, "Value": owner},
        {"Key": EXPIRES_TAG, "Value": format_expiry(expires_at)},
    ]


def serverless_tags(owner: str, expires_at: datetime) -> list[dict[str, str]]:
    """cluster_tags in Redshift Serverless's spelling (lower-case key and value)."""
    return [{"key": t["Key"], "value": t["Value"]} for t in cluster_tags(owner, expires_at)]


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """AWS's list of Key/Value tags (key/value for Redshift Serverless) as a dict."""
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in tags}


def is_expired(tags: dict[str, str], now: datetime) -> bool:
    """True for a cluster tagged by this project whose expiry has passed; an unreadable or
    missing expiry never counts as expired."""
    if tags.get(PROJECT_TAG) != PROJECT:
        return False
    expires = parse_expiry(tags.get(EXPIRES_TAG, ""))
    return expires is not None and expires <= now


def validate_cidr(cidr: str) -> str:
    """The CIDR in canonical form; refuses text that is not an IPv4 network."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"only IPv4 CIDRs are supported, not {cidr!r}")
    return str(network)


def validate_base_capacity(rpus: int) -> int:
    """The RPUs if Redshift Serverless accepts them as a base capacity; ValueError otherwise."""
    if rpus == 4 or (8 <= rpus <= 512 and rpus % 8 == 0) or (512 < rpus <= 1024 and rpus % 32 == 0):
        return rpus
    raise ValueError(
        f"{rpus} RPUs is no base capacity: give 4, a multiple of 8 up to 512, or a multiple "
        "of 32 up to 1024"
    )


def default_owner() -> str:
    """Who the cluster belongs to when no owner is named: the local user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class RedshiftSettings(BaseModel):
    """What a cluster and a Serverless workgroup share: the COPY role, the owner and the ingress,
    checked alike; the properties read the fields each model names in its own words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role_name: str = Field(
        DEFAULT_ROLE_NAME, description="IAM role Redshift assumes to COPY from the source"
    )
    owner: str | None = Field(None, description="owner tag (default: your user name)")
    ingress_cidr: str | None = Field(
        None, description="the only IPv4 network admitted on port 5439 (default: none)"
    )
    if TYPE_CHECKING:  # declared by each model, described in its own words
        password_secret: str
        password_sign_in: bool
        ttl_hours: float | None
        block_name: str | None
        timeout_minutes: float
        poll_seconds: float

    @field_validator("ingress_cidr")
    @classmethod
    def _canonical_cidr(cls, cidr: str | None) -> str | None:
        return None if cidr is None else validate_cidr(cidr)

    @property
    @abstractmethod
    def name(self) -> str:
        """The cluster's identifier, or the workgroup's name."""

    @property
    @abstractmethod
    def role_holder(self) -> tuple[str, str]:
        """What the COPY role is attached to, as kind and name: the cluster, or the namespace."""

    @property
    def owner_tag(self) -> str:
        """The owner tag's value: the named owner, or the local user."""
        return self.owner or default_owner()

    @property
    def warehouse_block(self) -> str:
        """The name of the warehouse block: block_name, or the cluster's or workgroup's name."""
        return self.block_name or self.name

    @property
    def time_to_live(self) -> timedelta:
        """How long after its creation the cluster or workgroup counts as expired."""
        return timedelta(hours=self.ttl_hours or DEFAULT_TTL_HOURS)

    @property
    def timeout_seconds(self) -> float:
        """The wait for a state change, in seconds."""
        return self.timeout_minutes * 60


class ClusterSettings(RedshiftSettings):
    """How the cluster is made, tagged, named in Prefect and waited for."""

    identifier: str = Field(DEFAULT_IDENTIFIER, description="Redshift cluster identifier")
    node_type: str = Field(DEFAULT_NODE_TYPE, description="node type, e.g. dc2.large, ra3.large")
    number_of_nodes: int = Field(
        1, ge=1, description="number of compute nodes; 1 makes a single-node cluster"
    )
    database: str = Field(DEFAULT_DATABASE, description="database the cluster is created with")
    master_user: str = Field(DEFAULT_MASTER_USER, description="master user name")
    password_secret: str = Field(
        DEFAULT_PASSWORD_SECRET,
        description="Prefect Secret block holding the master password, generated if absent",
    )
    ttl_hours: PositiveFloat | None = Field(
        None,
        description="hours from now to the expires-at tag, after which the janitor deletes the "
        f"cluster (default: {DEFAULT_TTL_HOURS:g}; an ephemeral run's: {EPHEMERAL_TTL_HOURS:g})",
    )
    block_name: str | None = Field(
        None, description="name of the cluster's Redshift warehouse block (default: identifier)"
    )
    password_sign_in: bool = Field(
        False,
        description="save the warehouse block with the master password (from password_secret) "
        "instead of IAM sign-in (temporary credentials from GetClusterCredentials)",
    )
    timeout_minutes: PositiveFloat = Field(
        TIMEOUT_MINUTES, description="minutes to wait for the cluster to change state"
    )
    poll_seconds: PositiveFloat = Field(
        POLL_SECONDS, description="seconds between two looks at the cluster's state"
    )

    @property
    def name(self) -> str:
        """The cluster's identifier."""
        return self.identifier

    @property
    def role_holder(self) -> tuple[str, str]:
        return "cluster", self.identifier


class ServerlessSettings(RedshiftSettings):
    """How a Redshift Serverless namespace and workgroup are made, tagged, named in Prefect and
    waited for (the namespace holds the database, the workgroup the compute and endpoint)."""

    workgroup: ServerlessName = Field(
        DEFAULT_WORKGROUP, description="Redshift Serverless workgroup name"
    )
    namespace: ServerlessName | None = Field(
        None, description="namespace name (default: the workgroup's)"
    )
    base_capacity: int = Field(
        DEFAULT_BASE_CAPACITY,
        description="base capacity in RPUs: 4, a multiple of 8 up to 512, or of 32 up to 1024",
    )
    database: str = Field(DEFAULT_DATABASE, description="database the namespace is created with")
    admin_user: str = Field(DEFAULT_MASTER_USER, description="admin user name of the namespace")
    password_secret: str = Field(
        DEFAULT_SERVERLESS_PASSWORD_SECRET,
        description="Prefect Secret block holding the admin password, generated if absent",
    )
    ttl_hours: PositiveFloat | None = Field(
        None,
        description="hours from now to the expires-at tag, after which the janitor deletes the "
        f"workgroup and namespace (default: {DEFAULT_TTL_HOURS:g})",
    )
    block_name: str | None = Field(
        None, description="name of the workgroup's Redshift warehouse block (default: workgroup)"
    )
    password_sign_in: bool = Field(
        False,
        description="save the warehouse block with the admin password (from password_secret) "
        "instead of IAM sign-in (temporary credentials from redshift-serverless GetCredentials)",
    )
    timeout_minutes: PositiveFloat = Field(
        TIMEOUT_MINUTES, description="minutes to wait for the workgroup to change state"
    )
    poll_seconds: PositiveFloat = Field(
        POLL_SECONDS, description="seconds between two looks at the workgroup's state"
    )

    @field_validator("base_capacity")
    @classmethod
    def _base_capacity(cls, rpus: int) -> int:
        return validate_base_capacity(rpus)

    @property
    def name(self) -> str:
        """The workgroup's name."""
        return self.workgroup

    @property
    def namespace_name(self) -> str:
        """The namespace's name: the one given, or the workgroup's."""
        return self.namespace or self.workgroup

    @property
    def role_holder(self) -> tuple[str, str]:
        return "namespace", self.namespace_name


# --- the command line's side of the models --------------------------------------------------


class ArgumentContainer(Protocol):
    """An argparse parser or argument group."""

    def add_argument(self, *names: str, **options: Any) -> Any: ...


def _field_parser(name: str, model: type[BaseModel]) -> Callable[[str], Any]:
    """Parse one option's text as the model parses that field, so argparse reports a bad value
    in one line (exit status 2)."""

    def parse(text: str) -> Any:
        try:
            return getattr(model.model_validate({name: text}), name)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(error.errors()[0]["msg"]) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _add_field_option(
    parser: ArgumentContainer, name: str, info: FieldInfo, model: type[BaseModel]
) -> None:
    """One option for one field: a flag for a yes/no field, else a value parsed by the model."""
    option = "--" + name.replace("_", "-")
    help_text = info.description or ""
    if info.annotation is bool:
        parser.add_argument(
            option, dest=name, action="store_true", default=argparse.SUPPRESS, help=help_text
        )
        return
    if info.default is not None:
        help_text += f" (default: {info.default})"
    parser.add_argument(
        option,
        dest=name,
        type=_field_parser(name, model),
        default=argparse.SUPPRESS,
        help=help_text,
    )


def add_cluster_arguments(
    parser: ArgumentContainer,
    fields: Iterable[str] | None = None,
    model: type[BaseModel] = ClusterSettings,
) -> None:
    """Add --identifier, --node-type, ... for ClusterSettings' fields (all of them by default;
    another settings model's with `model`), typed, validated and explained by the model; an
    option not given stays off the namespace, so the model's default applies."""
    for name in model.model_fields if fields is None else fields:
        _add_field_option(parser, name, model.model_fields[name], model)


def cluster_settings_from_args(args: argparse.Namespace, **overrides: Any) -> ClusterSettings:
    """The settings named on a command line built with add_cluster_arguments (overrides win)."""
    return _settings_from_args(ClusterSettings, args, overrides)


def serverless_settings_from_args(args: argparse.Namespace, **overrides: Any) -> ServerlessSettings:
    """The Serverless settings named on a command line built with add_cluster_arguments(...,
    model=ServerlessSettings) (overrides win)."""
    return _settings_from_args(ServerlessSettings, args, overrides)


def _settings_from_args(
    model: type[Settings], args: argparse.Namespace, overrides: dict[str, Any]
) -> Settings:
    given = {name: getattr(args, name) for name in model.model_fields if name in args}
    return model(**{**given, **overrides})
