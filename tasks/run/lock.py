"""The warehouse to one run at a time.

Two ETL runs never interleave on the warehouse: each holds a slot of the global concurrency
limit `sparkify-warehouse` (one slot, created by `make deploy`) while it creates tables, stages,
  transforms, checks and counts. A second run waits for the slot, saying so in its logs. The
  limit is one per Prefect server, not per warehouse: runs into different warehouses take turns
  too, which costs little for a daily load and needs no limit created per warehouse.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

WAREHOUSE_LIMIT = "sparkify-warehouse"
# A lease the server lets lapse if the run dies without releasing it; renewed while it runs.
LEASE_SECONDS = 300.0


def _limit_in_use(name: str) -> tuple[int, int] | None:
    """(active slots, limit) of the named global concurrency limit; None when it does not exist."""
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return None
    return limit.active_slots, limit.limit


@contextmanager
def warehouse_lock(name: str = WAREHOUSE_LIMIT) -> Iterator[None]:
    """Hold one slot of the named global concurrency limit for the block, waiting as long as
    another run holds it. Without such a limit on the server (a plain local run on a temporary
    server) the block runs unguarded, with a warning: nothing else can be running there."""
    logger = get_run_logger()
    in_use = _limit_in_use(name)
    if in_use is None:
        logger.warning(
            "no global concurrency limit %r on this Prefect server: running without the "
            "warehouse lock (`make deploy` creates it)",
            name,
        )
        yield
        return
    active, limit = in_use
    logger.info(
        "waiting for the warehouse lock %r (%d of %d slots held by other runs)", name, active, limit
    )
    asked = clock.monotonic()
    with concurrency(name, occupy=1, lease_duration=LEASE_SECONDS, strict=True):
        logger.info("acquired the warehouse lock %r after %.1fs", name, clock.monotonic() - asked)
        try:
            yield
        finally:
            logger.info("released the warehouse lock %r", name)
