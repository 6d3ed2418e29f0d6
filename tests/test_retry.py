"""Which failures are retried."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from prefect.states import Failed
from sqlalchemy.exc import OperationalError, ProgrammingError

from tasks.run.retry import is_transient, retry_if_transient


def aws_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "CreateCluster")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (aws_error("Throttling"), True),
        (aws_error("InvalidClusterStateFault"), True),
        (aws_error("SlowDown"), True),
        (aws_error("AccessDenied"), False),
        (aws_error("InvalidParameterValue"), False),
        (OperationalError("connect", {}, Exception("server closed the connection")), True),
        (ProgrammingError("select", {}, Exception("syntax error at or near $1")), False),
        (ConnectionResetError("reset by peer"), True),
        (ValueError("bad argument"), False),
        (FileNotFoundError("no such source"), False),
    ],
)
def test_only_transient_failures_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    assert retry_if_transient(None, None, Failed(data=error)) is transient
