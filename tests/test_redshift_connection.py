"""The Redshift engine's connections, made through redshift_connector's own connect path to a local
server that speaks the start of the wire protocol (tests/redshift_wire.py): what the driver sets
on its socket is read from the socket itself."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from tasks.warehouse.redshift.warehouse import (
    KEEPALIVE_IDLE_SECONDS,
    KEEPALIVE_INTERVAL_SECONDS,
    KEEPALIVE_PROBES,
    RedshiftWarehouse,
)
from tests.redshift_wire import error_response, serve_startup

ROLE = "arn:aws:iam::123456789012:role/sparkify-redshift-s3-read"
# AWS NAT gateways drop a flow idle for this many seconds (documented); firewalls often sooner.
NAT_IDLE_TIMEOUT_SECONDS = 350
KEEPALIVE_OPTIONS = {
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", -1)),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", -1)),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", -1)),
}


def client_keepalive(accepted: socket.socket) -> dict[str, int]:
    """The keepalive options of the socket in this process at the other end of `accepted`:
    the driver's own socket, found among the process's open files."""
    client_address = accepted.getpeername()
    for fd in os.listdir("/proc/self/fd"):
        try:
            candidate = socket.fromfd(int(fd), socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        with candidate:
            try:
                if candidate.getsockname() != client_address:
                    continue
                return {
                    name: candidate.getsockopt(level, option)
                    for name, (level, option) in KEEPALIVE_OPTIONS.items()
                }
            except OSError:
                continue
    raise AssertionError(f"no socket of this process is bound to {client_address}")


def without_tls(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """The test's server speaks no TLS: everything else is as the engine passes it."""
    cparams["ssl"] = False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads the socket via /proc")
def test_a_dead_peer_is_found_well_before_a_nat_drops_a_quiet_connection() -> None:
    port, seen = serve_startup(
        error_response(S="FATAL", C="57P03", M="the test's server takes no session"),
        inspect=client_keepalive,
    )
    block = RedshiftWarehouse(
        host="127.0.0.1", port=port, user="sparkify", password="Not-a-real-0ne", iam_role_arn=ROLE
    )
    engine = block.get_engine()
    event.listen(engine, "do_connect", without_tls)
    with pytest.raises(DBAPIError, match="the test's server takes no session"):
        engine.connect()

    options = seen.result(timeout=30)
    assert options == {
        "SO_KEEPALIVE": 1,
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_SECONDS,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_SECONDS,
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
    }
    # Probes start while a quiet connection (a long COPY) still passes the NAT, and a dead
    # peer is given up on within a few minutes, not the operating system's two hours.
    assert KEEPALIVE_IDLE_SECONDS < NAT_IDLE_TIMEOUT_SECONDS / 2
    assert KEEPALIVE_IDLE_SECONDS + KEEPALIVE_INTERVAL_SECONDS * KEEPALIVE_PROBES <= 180
