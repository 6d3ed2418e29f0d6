"""The warehouse to one run at a time.

Two ETL runs never interleave on a warehouse. Among one Prefect server's runs, each holds the
slot of a global concurrency limit of that warehouse's own (one slot, named from the warehouse,
created on first use) while it creates tables, stages, transforms, checks and commits; a
second run into the same warehouse waits for the slot, saying so in its logs, while runs into
other warehouses go on. Runs of other Prefect servers (a laptop's `python flows/etl.py` beside a
deployment) meet in the warehouse itself: each run holds it for its whole transaction
(`Warehouse.hold`: the DuckDB file open, a table lock on Redshift). A run on a temporary server
(a plain `python flows/etl.py`, no PREFECT_API_URL) takes no limit: that server's leases die
with it, so a killed run's slot would stay taken in the shared local database for good.
"""

from __future__ import annotations

import hashlib
import re
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import get_current_settings

LIMIT_PREFIX = "sparkify-warehouse-"
# A lease the server lets lapse if the run dies without releasing it; renewed while it runs.
LEASE_SECONDS = 300.0
_NOT_NAME = re.compile(r"[^a-z0-9]+")


def limit_name(warehouse: str) -> str:
    """The concurrency limit of a warehouse (its describe() text): readable, and unique by a
    digest of the whole text (a shortened path alone could name two warehouses)."""
    digest = hashlib.sha256(warehouse.encode()).hexdigest()[:10]
    readable = _NOT_NAME.sub("-", warehouse.lower()).strip("-")[-40:].strip("-")
    return f"{LIMIT_PREFIX}{readable}-{digest}"


def ensure_limit(name: str) -> None:
    """Create the one-slot global concurrency limit if this Prefect server lacks it (read first:
    creating one that exists makes the server log an error)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with suppress(ObjectAlreadyExists):  # another run created it meanwhile
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextmanager
def warehouse_lock(warehouse: str) -> Iterator[None]:
    """Hold the warehouse's one-slot concurrency limit for the block, waiting as long as
    another run of this Prefect server holds it."""
    logger = get_run_logger()
    if get_current_settings().api.url is None:
        # A temporary server lives and dies with this process: a slot it leased would outlive a
        # killed run in the shared database with nothing left to expire it. Runs of temporary
        # servers meet in the warehouse itself (Warehouse.hold).
        logger.info("temporary Prefect server: no concurrency limit; the warehouse hold guards")
        yield
        return
    name = limit_name(warehouse)
    ensure_limit(name)
    logger.info("waiting for the warehouse lock %r (%s)", name, warehouse)
    asked = clock.monotonic()
    with concurrency(name, occupy=1, lease_duration=LEASE_SECONDS, strict=True):
        logger.info("acquired the warehouse lock %r after %.1fs", name, clock.monotonic() - asked)
        try:
            yield
        finally:
            logger.info("released the warehouse lock %r", name)
