"""The analysts' standing questions: the SQL files in sql/analytics, run read-only."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.warehouse.protocol import Warehouse

# Package data, found wherever the project is installed.
ANALYTICS_DIR: Traversable = resources.files("sql") / "analytics"
QUERIES = (
    "headline",
    "most_played_songs",
    "top_artists",
    "plays_by_hour",
    "daily_plays",
    "plays_by_level",
)


@task(name="analytics-query", cache_policy=NO_CACHE)
def run_query(warehouse: Warehouse, name: str) -> dict[str, Any]:
    """Run one analytics query file and return its columns and rows."""
    text = (ANALYTICS_DIR / f"{name}.sql").read_text()
    with warehouse.get_engine().connect() as conn:
        result = conn.exec_driver_sql(text)
        return {"columns": list(result.keys()), "rows": [list(r) for r in result]}
