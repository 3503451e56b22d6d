"""Bucket boundaries in a store's timezone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from opspulse.metrics.models import Granularity


def bucket_start(at: datetime, granularity: str, timezone: str) -> datetime:
    """Return the start of the hour or local day that contains `at`, as an aware datetime.

    In the store's timezone: convert it to UTC before using it as a key, because two
    local times that differ only by `fold` are equal to Python (PEP 495).
    """
    local = at.astimezone(ZoneInfo(timezone))
    if granularity == Granularity.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def day_bounds(day_start: datetime) -> tuple[datetime, datetime]:
    """Return [start, end) of the local day beginning at `day_start` (DST-safe)."""
    tz = day_start.tzinfo
    next_day = (day_start + timedelta(days=1, hours=3)).replace(hour=0, tzinfo=tz)
    return day_start, next_day
