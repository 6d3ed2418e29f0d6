"""Shared fixtures: one Prefect test server per session, generated data sets."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from tasks.generate import generate_dataset  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MONTH_START = date(2018, 11, 1)


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server and database for the whole session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def month_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated month of events (3,000) and 120 song files."""
    out = tmp_path_factory.mktemp("month")
    generate_dataset(out, events=3000, songs=120, seed=7, start_date=MONTH_START, days=30)
    return out


@pytest.fixture(scope="session")
def week_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated six days of events, small enough to load day by day many times."""
    out = tmp_path_factory.mktemp("week")
    generate_dataset(out, events=1500, songs=60, seed=11, start_date=MONTH_START, days=6)
    return out


@pytest.fixture(scope="session")
def cli_env(prefect_server) -> dict[str, str]:
    """Environment for running the project's scripts against the session's Prefect server."""
    from prefect.settings import get_current_settings

    return {
        **os.environ,
        "PREFECT_API_URL": str(get_current_settings().api.url),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
