"""A local server that speaks the first exchange of Redshift's wire protocol (PostgreSQL's v3):
it takes one connection, reads redshift_connector's startup message and answers with what the test
gives, so the driver's own connect path runs without a cluster. It speaks no TLS: the client
connects with ssl off.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import redshift_connector
from sqlalchemy import create_engine

# Seconds the server waits for its one client before it gives up (a guard, not a measure).
ACCEPT_GUARD_SECONDS = 60.0

# Redshift's answer to a transaction that breaks serializable isolation, field for field.
SERIALIZABLE_VIOLATION = {
    "S": "ERROR",
    "C": "XX000",
    "M": "1023",
    "D": "Serializable isolation violation on table - 100167, transactions forming the cycle "
    "are: 55705701, 55705754 (pid:16606)",
    "F": "/home/ec2-user/padb/src/sys/xen_execute.cpp",
    "L": "9797",
    "R": "pg_throw",
}
# The same internal error class for what no retry cures: a COPY past its MAXERROR.
COPY_FAILED = {
    "S": "ERROR",
    "C": "XX000",
    "M": "Load into table 'staging_events' failed.  Check 'sys_load_error_detail' system "
    "table for details.",
}


def error_response(**fields: str) -> bytes:
    """An ErrorResponse message ('E') with these fields (S severity, C SQLSTATE, M message, D
    detail, ...), then ReadyForQuery ('Z'), as a server sends them after a failed statement."""
    body = b"".join(code.encode() + value.encode() + b"\0" for code, value in fields.items())
    error = b"E" + struct.pack("!i", len(body) + 5) + body + b"\0"
    return error + b"Z" + struct.pack("!i", 5) + b"I"


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection mid-message")
        data += chunk
    return data


def serve_startup(
    answer: bytes, inspect: Callable[[socket.socket], Any] | None = None
) -> tuple[int, Future[Any]]:
    """Listen on 127.0.0.1 for one client; once its startup message is in, call `inspect` with
    the accepted socket (the future gets its result), send `answer` and close. Returns the
    port and the future."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(ACCEPT_GUARD_SECONDS)
    done: Future[Any] = Future()

    def serve() -> None:
        try:
            with listener, listener.accept()[0] as conn:
                (length,) = struct.unpack("!i", _read_exactly(conn, 4))
                _read_exactly(conn, length - 4)
                seen = inspect(conn) if inspect else None
                conn.sendall(answer)
            done.set_result(seen)
        except BaseException as error:
            done.set_exception(error)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], done


def connect_error(fields: dict[str, str], *, through_sqlalchemy: bool = False) -> Exception:
    """What redshift_connector raises (or SQLAlchemy, wrapping it) when the server answers the
    startup with an error of these fields."""
    port, _ = serve_startup(error_response(**fields))
    try:
        if through_sqlalchemy:
            url = f"redshift+redshift_connector://u:p@127.0.0.1:{port}/d"
            create_engine(url, connect_args={"ssl": False}).connect()
        else:
            redshift_connector.connect(
                host="127.0.0.1", port=port, user="u", password="p", database="d", ssl=False
            )
    except Exception as error:
        return error
    raise AssertionError("the connection raised nothing")
