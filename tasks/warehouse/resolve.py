"""The warehouse a run names: a DuckDB file path or a saved warehouse block.

A spec is read without the Prefect API first (check_warehouse: a CLI checks it before any
server starts): an existing file must be a DuckDB database; a path ending in .duckdb, .db or
.ddb, or any other path with a separator, is a DuckDB file (created on first use); TYPE/NAME
with TYPE a warehouse block type is a saved block; `redshift-data://…` is a Data API warehouse
given in full (tasks/warehouse/redshift_data/spec.py); anything else is the user's mistake.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from pathlib import Path
from typing import Literal

from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound

from tasks.common.errors import (
    BadArgument,
    NotADuckDBFile,
    UnknownWarehouse,
    UnreadableFile,
    UnwritableFile,
)
from tasks.warehouse.duckdb.warehouse import DuckDBWarehouse
from tasks.warehouse.protocol import Warehouse
from tasks.warehouse.redshift_data.spec import is_data_api_spec, spec_fields, warehouse_from_spec

DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")
# A DuckDB database file says so in its header: "DUCK" at bytes 8 to 12.
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_AT = slice(8, 12)
SQLITE_MAGIC = b"SQLite format 3\x00"
# A saved block: TYPE/NAME, each as Prefect spells slugs and block names.
_BLOCK_SPEC = re.compile(r"(?P<slug>[a-z0-9-]+)/(?P<name>[a-z0-9-]+)")
WAREHOUSE_FIX = (
    "give the warehouse (--warehouse) a DuckDB file path ending in .duckdb or a "
    "saved block TYPE/NAME"
)
# Saved blocks named in the message for a block that does not exist.
BLOCKS_NAMED = 5


def register_warehouse_blocks() -> None:
    """Import every module of this package: a module defining a warehouse block registers its
    class for Block.load, so a new warehouse is one new module and nothing else changes."""
    package = __name__.rsplit(".", 1)[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")


def warehouse_block_types() -> list[str]:
    """The block type slugs of every warehouse block class (a block with what the Warehouse
    protocol asks: this package's, and any defined elsewhere, e.g. a test's), sorted."""
    register_warehouse_blocks()
    found, pending = set(), list(Block.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if getattr(cls, "_block_type_slug", None) and issubclass(cls, Warehouse):
            found.add(cls.get_block_type_slug())
    return sorted(found)


def resolve_warehouse(spec: str) -> Warehouse:
    """A warehouse from a DuckDB file path, a saved warehouse block, named
    `sparkify-duckdb-warehouse/NAME` or `sparkify-redshift-warehouse/NAME`, or a Data API spec
    `redshift-data://…`."""
    kind = check_warehouse(spec)
    if kind == "duckdb":
        return DuckDBWarehouse(path=spec)
    if kind == "data-api":
        return warehouse_from_spec(spec)
    return load_warehouse_block(spec)


Kind = Literal["duckdb", "block", "data-api"]


def check_warehouse(spec: str, must_exist: bool = False) -> Kind:
    """What the spec names, "duckdb", "block" or "data-api", read without the Prefect API; a
    UserError for a spec that cannot be right (and, with must_exist, for a DuckDB file not there
    yet)."""
    kind = warehouse_kind(spec)
    if kind == "duckdb":
        check_duckdb_path(spec)
        if must_exist and not Path(spec).expanduser().exists():
            raise UnknownWarehouse(
                f"warehouse {spec} does not exist yet: load it first with "
                f"python flows/etl.py --warehouse {spec}, or name an existing one"
            )
    return kind


def warehouse_kind(spec: str) -> Kind:
    """What the spec names: "duckdb" for a DuckDB file path, "block" for a saved warehouse
    block's TYPE/NAME, "data-api" for a Data API spec; a UserError for anything else."""
    if not spec.strip():
        raise BadArgument(f"no warehouse given: {WAREHOUSE_FIX}")
    if is_data_api_spec(spec):
        spec_fields(spec)
        return "data-api"
    if spec == ":memory:":
        raise BadArgument(
            "an in-memory DuckDB cannot outlive the run: give the warehouse (--warehouse) a file "
            "path such as "
            "sparkify.duckdb"
        )
    path = Path(spec).expanduser()
    suffix = path.suffix.lower()
    if path.exists() or suffix in DUCKDB_SUFFIXES:
        return "duckdb"
    if suffix:
        raise UnknownWarehouse(
            f"warehouse {spec} is not a DuckDB file name ({suffix}): give the warehouse "
            "(--warehouse) a path "
            "ending in .duckdb (created on first use) or a saved block TYPE/NAME"
        )
    block = _BLOCK_SPEC.fullmatch(spec)
    if block and block["slug"] in warehouse_block_types():
        return "block"
    if block and not path.parent.is_dir():
        raise UnknownWarehouse(
            f"warehouse {spec}: {block['slug']} is no warehouse block type: give the warehouse "
            "(--warehouse) "
            f"{block_forms()}, or a path ending in .duckdb"
        )
    if os.sep in spec or "/" in spec:
        return "duckdb"
    raise UnknownWarehouse(
        f"warehouse {spec!r} is neither a DuckDB file nor a saved block: give the warehouse "
        "(--warehouse) a path "
        f"ending in .duckdb, or {block_forms()}"
    )


def block_forms() -> str:
    """How a saved warehouse block is named, for messages: `a block as TYPE/NAME or ...`."""
    return "a block as " + " or ".join(f"{slug}/NAME" for slug in warehouse_block_types())


def check_duckdb_path(spec: str, block: str | None = None) -> None:
    """Refuse a DuckDB path (a block's, when named) that is a directory, a new file in a
    directory that does not exist (never made silently), a file the run could not write or
    create (every command opens DuckDB read-write), or an existing file that cannot be read or
    is not a DuckDB database (checked by its header: never opened, never retried)."""
    path = Path(spec).expanduser()
    subject = f"warehouse block {block}'s path {spec}" if block else f"warehouse {spec}"
    fix = f"point block {block} at" if block else "give the warehouse (--warehouse)"
    if path.is_dir():
        raise BadArgument(
            f"{subject} is a directory: {fix} a file in it, such as {path / 'sparkify.duckdb'}"
        )
    if not path.parent.is_dir():
        raise BadArgument(
            f"{subject} is in a directory that does not exist ({path.parent}): create it "
            f"first (mkdir -p {path.parent}), or {fix} a path in an existing directory"
        )
    if reason := unwritable_reason(path):
        raise UnwritableFile(
            f"{subject} cannot be written ({reason}): give the run write access there, or "
            f"{fix} a path it can write"
        )
    if not path.exists():
        return
    try:
        with path.open("rb") as file:
            header = file.read(16)
    except OSError as error:
        raise UnreadableFile(
            f"{subject} cannot be read ({error.strerror}): give the run read and write access "
            f"to it, or {fix} another file"
        ) from error
    if header[DUCKDB_MAGIC_AT] == DUCKDB_MAGIC:
        return
    if header.startswith(SQLITE_MAGIC):
        what = "a SQLite database, not a DuckDB one"
    elif not header:
        what = "an empty file, not a DuckDB database"
    else:
        what = "not a DuckDB database (no DuckDB header)"
    raise NotADuckDBFile(
        f"{subject} is {what}: {fix} a DuckDB file, or a new path ending in .duckdb to create one"
    )


def unwritable_reason(path: Path) -> str | None:
    """Why a run could not write the DuckDB file at path, or create it, with its write-ahead
    log beside it; None when it can."""
    for target in (path.parent, path) if path.exists() else (path.parent,):
        if not os.access(target, os.W_OK):
            if os.statvfs(target).f_flag & os.ST_RDONLY:
                return f"{path.parent} is on a read-only file system"
            return f"no write permission on {target}"
    return None


def load_warehouse_block(spec: str) -> Warehouse:
    """The saved warehouse block TYPE/NAME; a one-line UnknownWarehouse naming the saved ones
    when there is no such block."""
    register_warehouse_blocks()
    try:
        block = Block.load(spec)
    except ValueError as error:
        if not isinstance(error.__cause__, ObjectNotFound):
            raise
        raise UnknownWarehouse(missing_block_message(spec)) from error
    if isinstance(block, DuckDBWarehouse):
        check_duckdb_path(block.path, block=spec)
    return block


def missing_block_message(spec: str) -> str:
    """The line for a warehouse block that does not exist: which ones do, or how to make one."""
    saved = saved_warehouse_blocks()
    if saved is None:
        return (
            f"warehouse block {spec} does not exist: this Prefect server has no warehouse block "
            "types yet (run `make blocks`, then save a block in the UI, or `python "
            "flows/cluster.py create` for Redshift), or give the warehouse (--warehouse) a path "
            "ending in .duckdb"
        )
    if not saved:
        return (
            f"warehouse block {spec} does not exist and no warehouse block is saved: save one "
            "(in the UI, or `python flows/cluster.py create` for Redshift), or give the warehouse "
            "(--warehouse) "
            "a path ending in .duckdb"
        )
    shown = ", ".join(saved[:BLOCKS_NAMED])
    if len(saved) > BLOCKS_NAMED:
        shown += f" and {len(saved) - BLOCKS_NAMED} more"
    return (
        f"warehouse block {spec} does not exist (saved: {shown}): give the warehouse "
        "(--warehouse) one of "
        "those, or a path ending in .duckdb"
    )


def saved_warehouse_blocks() -> list[str] | None:
    """TYPE/NAME of every saved warehouse block, sorted; None when the server knows none of the
    warehouse block types (`make blocks` registers them). Secrets are never read."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    saved, known = [], False
    with get_client(sync_client=True) as client:
        for slug in warehouse_block_types():
            try:
                documents = client.read_block_documents_by_type(slug, include_secrets=False)
            except PrefectHTTPStatusError as error:
                if error.response.status_code != 404:  # 404: the type is not registered
                    raise
                continue
            known = True
            saved += [f"{slug}/{d.name}" for d in documents if not d.is_anonymous]
    return sorted(saved) if known else None
