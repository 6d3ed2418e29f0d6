"""How a run holds its warehouse: the run's one transaction, and how long it waits for another
holder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from tasks.common.errors import UserError

# Seconds a run waits for a warehouse another process holds (overrides the block's setting).
WAIT_VARIABLE = "SPARKIFY_WAREHOUSE_WAIT"


DEFAULT_LOCK_WAIT_SECONDS = 30.0


class WarehouseWaitInvalid(UserError):
    """SPARKIFY_WAREHOUSE_WAIT is no number of seconds."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"{WAIT_VARIABLE}={value!r} is not a number of seconds: set it to e.g. 30, "
            "or unset it to use the warehouse block's lock_wait_seconds"
        )


def lock_wait_seconds(configured: float) -> float:
    """How long a run waits for a warehouse another process holds: SPARKIFY_WAREHOUSE_WAIT
    (seconds) when set, else the block's setting."""
    value = os.environ.get(WAIT_VARIABLE, "").strip()
    if not value:
        return configured
    try:
        seconds = float(value)
    except ValueError:
        raise WarehouseWaitInvalid(value) from None
    if seconds < 0:
        raise WarehouseWaitInvalid(value)
    return seconds


@contextmanager
def held_transaction(conn: Connection) -> Iterator[Connection]:
    """The connection's transaction for the block: committed when it ends normally, rolled
    back on any exception; the connection is closed either way."""
    with conn, conn.begin():
        yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed when the block ends normally, rolled back on any exception."""
    with engine.begin() as conn:
        yield conn
