"""Which failures a retry can cure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

# Error codes AWS uses for throttling and for resources that are still changing state.
TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
        "InvalidClusterState",
        "InvalidClusterStateFault",
    }
)


def is_transient(error: BaseException) -> bool:
    """True for failures that may pass on a retry: throttling, dropped connections, a cluster
    that is still starting. Bad SQL, bad credentials and bad arguments are never retried."""
    response: Any = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        return code in TRANSIENT_AWS_CODES
    if isinstance(error, sa_exc.DBAPIError):
        return bool(error.connection_invalidated) or isinstance(error, sa_exc.OperationalError)
    return isinstance(error, ConnectionError | TimeoutError)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry only when the failure is transient."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state's own exception, re-raised by result()
        return is_transient(error)
    return False


# Task options for work that may meet a transient failure: three tries more, with backoff and
# jitter, only when a retry can succeed.
RETRY_TRANSIENT: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}
