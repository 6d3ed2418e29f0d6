"""The logger of tasks that also run outside a run (state hooks after a crash)."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger; a plain one where there is no run (a state hook after a crash)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("sparkify")
