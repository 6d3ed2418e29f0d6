"""A user's mistake: one line naming the problem and the fix, exit status 2, no traceback.

A UserError is never retried (tasks/common/retry.py) and never logged with a traceback: importing
this module installs a filter on Prefect's run loggers that logs a UserError as its one line,
unless debugging is on (`--debug` on a command line, or SPARKIFY_DEBUG=1), when the traceback
is shown as for any other error.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import typing
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar, cast

from prefect.logging import get_run_logger
from prefect.states import Failed

Body = TypeVar("Body", bound=Callable[..., Any])
DEBUG_VARIABLE = "SPARKIFY_DEBUG"
# Prefect's loggers that log a failed run's exception with its traceback: the flow and task
# engines (exc_info=True) and the engine a worker's subprocess runs.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")
SOURCE_FIX = (
    "give the source (--source) a directory holding log_data/ and song_data/, or s3://bucket/prefix"
)

_HOLDER_PID = re.compile(r"\(PID (?P<pid>[0-9]+)\)")
_PID_ONLY = r"PID \g<pid>"
_debug = False


class UserError(Exception):
    """A mistake the user can fix: str() is one line naming the problem and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its line and attributes, whatever the subclass's constructor takes:
        # Prefect pickles a failed run's exception into the run's result.
        return _rebuild, (type(self), str(self), dict(self.__dict__))


class OneLineFailure(Exception):
    """A run's failure that its one line says all of (a failed data test): logged and shown
    without traceback, like a UserError, but no mistake of the user's (exit status 1)."""


class BadArgument(UserError, ValueError):
    """An argument that cannot be right (given on a command line or as a flow parameter)."""


class DatesReversed(BadArgument):
    """The run's first day is after its last day."""

    def __init__(self, start: date, end: date) -> None:
        self.start, self.end = start, end
        super().__init__(
            f"start date {start} is after end date {end}: give the start date (--start-date) on "
            "or before the end date (--end-date)"
        )


class BadSource(BadArgument):
    """A source that is neither a directory nor a well-formed s3:// URI or S3Bucket block."""


class SourceNotFound(UserError, FileNotFoundError):
    """A local source directory that does not exist."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"source {source} does not exist: {SOURCE_FIX}")


class UnknownWarehouse(UserError, ValueError):
    """A warehouse that is neither a DuckDB file path nor a saved warehouse block."""


class NotADuckDBFile(UserError, ValueError):
    """A warehouse file that exists but is not a DuckDB database (never retried)."""


class UnreadableFile(UserError, OSError):
    """A file the run was given but cannot read."""


class UnwritableFile(UserError, OSError):
    """A file the run must write (or create) where it cannot."""


class WarehouseBusy(UserError):
    """Another process holds the warehouse, still after a bounded wait."""

    def __init__(self, warehouse: str, holder: str | None, waited_seconds: float) -> None:
        self.warehouse, self.holder, self.waited_seconds = warehouse, holder, waited_seconds
        # DuckDB names the holder "/usr/bin/python3 (PID 123)": one pair of brackets is enough.
        by = f" ({_HOLDER_PID.sub(_PID_ONLY, holder)})" if holder else ""
        super().__init__(
            f"warehouse {warehouse} is held by another process{by} after waiting "
            f"{waited_seconds:.0f}s: close that connection or wait for its run to end, then rerun"
        )


def _rebuild(cls: type[UserError], message: str, attributes: dict[str, Any]) -> UserError:
    error = cls.__new__(cls)
    BaseException.__init__(error, message)
    error.__dict__.update(attributes)
    return error


def set_debug(on: bool) -> None:
    """Show tracebacks of user errors (the command line's --debug)."""
    global _debug
    _debug = on


def debug_enabled() -> bool:
    """True when tracebacks of user errors are shown: --debug, or SPARKIFY_DEBUG=1."""
    flag = os.environ.get(DEBUG_VARIABLE, "").strip().lower()
    return _debug or flag not in ("", "0", "false", "no", "off")


def user_error_of(record: logging.LogRecord) -> UserError | OneLineFailure | None:
    """The UserError (or OneLineFailure) a log record carries as its exception, if any."""
    error = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
    return error if isinstance(error, UserError | OneLineFailure) else None


class UserErrorLogFilter(logging.Filter):
    """A record carrying a UserError is logged as the error's one line, without traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record (never drop it) unless debugging is on."""
        error = user_error_of(record)
        if error is None or debug_enabled():
            return True
        record.msg = record.getMessage().replace(repr(error), str(error))
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True


class CompletedTaskFilter(logging.Filter):
    """Drops a task run's "Finished in state Completed()": one line per task, that says what
    the task's state says already (a failed or other task still logs its end)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a completed task run's end."""
        return not record.getMessage().startswith("Finished in state Completed(")


def install_log_filter() -> None:
    """Put the UserError filter on Prefect's run loggers, and the CompletedTaskFilter on its
    task runs' (once; filters survive Prefect's logging setup, which replaces handlers but
    keeps loggers' filters)."""
    wanted = {name: [UserErrorLogFilter] for name in RUN_LOGGERS}
    wanted["prefect.task_runs"].append(CompletedTaskFilter)
    for name, kinds in wanted.items():
        logger = logging.getLogger(name)
        for kind in kinds:
            if not any(isinstance(f, kind) for f in logger.filters):
                logger.addFilter(kind())


def fails_in_one_line(body: Body) -> Body:
    """A flow body whose UserError (or OneLineFailure) ends its run Failed with the error's one
    line as the state's message, as the UI shows it, rather than Prefect's "Flow run
    encountered an exception: ..." and a logged traceback, the line logged once at ERROR; a
    caller of the flow still gets the error raised. Put it under @flow: the flow keeps the
    body's name, signature and docstring."""

    @functools.wraps(body)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except (UserError, OneLineFailure) as error:
            if debug_enabled():
                raise
            get_run_logger().error("%s", error)
            return Failed(message=str(error), data=error)

    # Annotations resolved where the body was written: Prefect reads the flow's parameter types
    # from this function, whose module knows none of the body's names.
    run.__annotations__ = typing.get_type_hints(body, include_extras=True)
    run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    return cast(Body, run)


install_log_filter()
