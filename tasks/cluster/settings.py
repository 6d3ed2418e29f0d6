"""What a cluster is asked to be: the project's tags and defaults, the expiry helpers, and
ClusterSettings, the one model that the flows take as a parameter (the Prefect UI renders it as a
form) and that the command lines build their options from.

Safe by default: no ingress is opened unless a CIDR is named, and every cluster carries project,
owner and expiry tags, so the janitor can find it.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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

PositiveFloat = Annotated[float, Field(gt=0)]


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


def tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    """AWS's list of Key/Value tags as a dict."""
    return {t["Key"]: t["Value"] for t in tags}


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


def default_owner() -> str:
    """Who the cluster belongs to when no owner is named: the local user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class ClusterSettings(BaseModel):
    """How the cluster is made, tagged, named in Prefect and waited for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identifier: str = Field(DEFAULT_IDENTIFIER, description="Redshift cluster identifier")
    node_type: str = Field(DEFAULT_NODE_TYPE, description="node type, e.g. dc2.large, ra3.large")
    number_of_nodes: int = Field(
        1, ge=1, description="number of compute nodes; 1 makes a single-node cluster"
    )
    database: str = Field(DEFAULT_DATABASE, description="database the cluster is created with")
    master_user: str = Field(DEFAULT_MASTER_USER, description="master user name")
    role_name: str = Field(
        DEFAULT_ROLE_NAME, description="IAM role Redshift assumes to COPY from the source"
    )
    password_secret: str = Field(
        DEFAULT_PASSWORD_SECRET,
        description="Prefect Secret block holding the master password, generated if absent",
    )
    owner: str | None = Field(None, description="owner tag (default: your user name)")
    ttl_hours: PositiveFloat | None = Field(
        None,
        description="hours from now to the expires-at tag, after which the janitor deletes the "
        f"cluster (default: {DEFAULT_TTL_HOURS:g}; an ephemeral run's: {EPHEMERAL_TTL_HOURS:g})",
    )
    ingress_cidr: str | None = Field(
        None, description="the only IPv4 network admitted on port 5439 (default: none)"
    )
    block_name: str | None = Field(
        None, description="name of the cluster's Redshift warehouse block (default: identifier)"
    )
    timeout_minutes: PositiveFloat = Field(
        TIMEOUT_MINUTES, description="minutes to wait for the cluster to change state"
    )
    poll_seconds: PositiveFloat = Field(
        POLL_SECONDS, description="seconds between two looks at the cluster's state"
    )

    @field_validator("ingress_cidr")
    @classmethod
    def _canonical_cidr(cls, cidr: str | None) -> str | None:
        return None if cidr is None else validate_cidr(cidr)

    @property
    def owner_tag(self) -> str:
        """The owner tag's value: the named owner, or the local user."""
        return self.owner or default_owner()

    @property
    def warehouse_block(self) -> str:
        """The name of the cluster's warehouse block."""
        return self.block_name or self.identifier

    @property
    def time_to_live(self) -> timedelta:
        """How long after its creation the cluster counts as expired."""
        return timedelta(hours=self.ttl_hours or DEFAULT_TTL_HOURS)

    @property
    def timeout_seconds(self) -> float:
        """The wait for a state change, in seconds."""
        return self.timeout_minutes * 60


# --- the command line's side of the model --------------------------------------------------


class ArgumentContainer(Protocol):
    """An argparse parser or argument group."""

    def add_argument(self, *names: str, **options: Any) -> Any: ...


def _field_parser(name: str) -> Callable[[str], Any]:
    """Parse one option's text as the model parses that field, so argparse reports a bad value
    in one line (exit status 2)."""

    def parse(text: str) -> Any:
        try:
            return getattr(ClusterSettings.model_validate({name: text}), name)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(error.errors()[0]["msg"]) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def add_cluster_arguments(parser: ArgumentContainer, fields: Iterable[str] | None = None) -> None:
    """Add --identifier, --node-type, ... for ClusterSettings' fields (all of them by default),
    typed, validated and explained by the model; an option not given stays off the namespace, so
    the model's default applies."""
    for name in ClusterSettings.model_fields if fields is None else fields:
        info = ClusterSettings.model_fields[name]
        help_text = info.description or ""
        if info.default is not None:
            help_text += f" (default: {info.default})"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=_field_parser(name),
            default=argparse.SUPPRESS,
            help=help_text,
        )


def cluster_settings_from_args(args: argparse.Namespace, **overrides: Any) -> ClusterSettings:
    """The settings named on a command line built with add_cluster_arguments (overrides win)."""
    given = {name: getattr(args, name) for name in ClusterSettings.model_fields if name in args}
    return ClusterSettings(**{**given, **overrides})
