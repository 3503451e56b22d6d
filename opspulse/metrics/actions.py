"""Metric buckets: hourly and daily sums per store, changed only by deltas.

Callers pass the change their own write made (see commerce.actions), so applying the
same business change twice is impossible by construction: the second time the delta
is zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection

from opspulse.metrics.buckets import bucket_start
from opspulse.metrics.models import Granularity
from opspulse.stores.models import Store

UPSERT = """
    INSERT INTO metrics_metric (store_id, name, granularity, timestamp, value)
    VALUES {rows}
    ON CONFLICT (store_id, name, granularity, timestamp)
    DO UPDATE SET value = metrics_metric.value + EXCLUDED.value
"""


def adjust_metrics(*, store: Store, at: datetime, deltas: dict[str, Decimal]) -> None:
    """Add each non-zero delta to the hour and day buckets that contain `at`."""
    rows: list[tuple[object, ...]] = []
    for granularity in (Granularity.HOUR, Granularity.DAY):
        start = bucket_start(at, granularity, store.timezone)
        for name, delta in sorted(deltas.items()):
            if delta:
                rows.append((store.pk, str(name), str(granularity), start, delta))
    if not rows:
        return
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(UPSERT.format(rows=placeholders), [value for row in rows for value in row])
