"""Dates and times a person may give: with a zone, and within the years recordings have.

Outside those years Python's datetime cannot even shift a value to another zone
(`year 0 is out of range`), so an unbounded day once stored broke every later scan.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator

# No camera recorded before the Unix epoch; 2199 leaves room for any real "until".
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2199, 12, 31)


def _in_range(day: date) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must be between {EARLIEST_DAY} and {LATEST_DAY}")


def _day(value: date) -> date:
    _in_range(value)
    return value


def _moment(value: datetime) -> datetime:
    # A time without a zone is read as UTC, as the API's own answers write times.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    _in_range(aware.date())
    return aware.astimezone(UTC)


Day = Annotated[date, AfterValidator(_day)]
"""A calendar day between EARLIEST_DAY and LATEST_DAY."""

Moment = Annotated[datetime, AfterValidator(_moment)]
"""An instant in those years, in UTC (one given without a zone is taken as UTC)."""
