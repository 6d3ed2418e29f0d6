"""The Data API's calls, as the driver makes them: a statement sent and waited for, its result
read page by page, each call retried with backoff where the Data API says it is busy.

ExecuteStatement is answered at once with the statement's id; the statement runs on meanwhile,
and DescribeStatement says when it has ended (FINISHED, FAILED or ABORTED). It is polled often
at first and then every POLL_CAP_SECONDS at most, saying in the run's log that a long statement
still runs. ThrottlingException and ActiveStatementsExceededException mean the call was not
taken: it is sent again after a backoff. A statement that failed is never sent again here.
"""

from __future__ import annotations

import random
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tasks.common.logs import run_logger
from tasks.common.retry import scaled_delays

# Error codes that mean the Data API did not take the call now, and will later.
BUSY_CODES = frozenset({"ThrottlingException", "ActiveStatementsExceededException"})
# Backoff before each new try of a call the Data API was too busy for (then the error stands).
BUSY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Polling DescribeStatement: first after POLL_START_SECONDS, each wait longer by POLL_GROWTH
# up to POLL_CAP_SECONDS.
POLL_START_SECONDS = 0.05
POLL_GROWTH = 1.5
POLL_CAP_SECONDS = 2.0
# A statement still running this long is said in the log, and again every as long after.
PROGRESS_SECONDS = 60.0
ENDED = frozenset({"FINISHED", "FAILED", "ABORTED"})

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Polling:
    """How a statement is waited for: the first wait, the longest, and the log's interval."""

    start: float = POLL_START_SECONDS
    cap: float = POLL_CAP_SECONDS
    progress: float = PROGRESS_SECONDS


def error_code(error: ClientError) -> str:
    """The Data API's error code of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    """The Data API's message of a failed call, on one line."""
    return " ".join(str(error.response.get("Error", {}).get("Message", error)).split())


def call(method: Callable[..., dict[str, Any]], sleep: Sleep = clock.sleep, **request: Any):
    """One Data API call, tried again after a jittered backoff while the Data API says it is
    busy (BUSY_CODES); any other error, and the last busy one, is raised as botocore's."""
    delays = scaled_delays(BUSY_DELAYS)
    for attempt in range(len(delays) + 1):
        try:
            return method(**request)
        except ClientError as error:
            if error_code(error) not in BUSY_CODES or attempt == len(delays):
                raise
            sleep(delays[attempt] * (1 + random.random() / 2))
    raise AssertionError("unreachable")  # pragma: no cover


def wait_for(
    client: Any, statement_id: str, sql: str, polling: Polling, sleep: Sleep = clock.sleep
) -> dict[str, Any]:
    """DescribeStatement's answer once the statement has ended, polled with growing waits; a
    statement running long is said in the run's log (first words of its SQL, never values)."""
    started = clock.monotonic()
    said, wait = polling.progress, polling.start
    while True:
        answer = call(client.describe_statement, sleep, Id=statement_id)
        if answer["Status"] in ENDED:
            return answer
        running = clock.monotonic() - started
        if running >= said:
            run_logger().info(
                "Data API statement %s (%s…) still %s after %.0fs",
                statement_id,
                " ".join(sql.split())[:60],
                answer["Status"].lower(),
                running,
            )
            said += polling.progress
        sleep(wait)
        wait = min(wait * POLL_GROWTH, polling.cap)


def result_pages(client: Any, statement_id: str, sleep: Sleep = clock.sleep) -> Iterator[dict]:
    """GetStatementResult's pages of a finished statement, following NextToken."""
    token: str | None = None
    while True:
        request = {"Id": statement_id, **({"NextToken": token} if token else {})}
        page = call(client.get_statement_result, sleep, **request)
        yield page
        token = page.get("NextToken")
        if not token:
            return
