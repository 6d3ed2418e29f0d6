"""The days a run loads: the dates it was given, or the day its schedule names.

A scheduled run loads the day `days_back` days before the run's scheduled start time, in UTC, so
a late or retried run still loads the day it was scheduled for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tasks.common.errors import BadArgument, DatesReversed


def run_dates(
    start_date: date | None,
    end_date: date | None,
    days_back: int | None,
    scheduled_start: datetime,
) -> tuple[date | None, date | None]:
    """The days a run loads: the given dates, or with days_back the single day that many days
    before the scheduled start's UTC date (a naive time is taken as UTC)."""
    if days_back is None:
        return start_date, end_date
    if start_date is not None or end_date is not None:
        raise BadArgument(
            "days_back and start/end dates were both given: give either days_back or "
            "start/end dates, not both"
        )
    if days_back < 0:
        raise BadArgument(
            f"days_back must not be negative, got {days_back}: give 0 for the scheduled day, "
            "1 for the day before"
        )
    if scheduled_start.tzinfo is None:
        scheduled_start = scheduled_start.replace(tzinfo=UTC)
    day = scheduled_start.astimezone(UTC).date() - timedelta(days=days_back)
    return day, day


def check_date_order(start_date: date | None, end_date: date | None) -> None:
    """Refuse a first day after the last day (either may be open)."""
    if start_date and end_date and start_date > end_date:
        raise DatesReversed(start_date, end_date)


def days_of_the_run(
    start_date: date | None, end_date: date | None, days_back: int | None, scheduled_start: datetime
) -> tuple[date | None, date | None]:
    """run_dates, with a first day after the last refused."""
    start_date, end_date = run_dates(start_date, end_date, days_back, scheduled_start)
    check_date_order(start_date, end_date)
    return start_date, end_date
