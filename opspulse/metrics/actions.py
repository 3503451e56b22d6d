"""Metric buckets: hourly and daily sums per store, changed only by deltas.

Callers pass the change their own write made (see commerce.actions), so applying the
same business change twice is impossible by construction: the second time the delta
is zero. A batch of writes gathers its deltas in one `MetricChanges` and applies them
with a single statement per table (the buckets, and each product's day: `ProductDay`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from opspulse.metrics.buckets import bucket_start
from opspulse.metrics.models import Granularity
from opspulse.stores.models import Store

UPSERT = """
    INSERT INTO metrics_metric (store_id, name, granularity, timestamp, value)
    VALUES {rows}
    ON CONFLICT (store_id, name, granularity, timestamp)
    DO UPDATE SET value = metrics_metric.value + EXCLUDED.value
    RETURNING store_id, name, granularity, timestamp, value
"""

# A product's title is its latest sold line's; a change that only takes sales away keeps it.
UPSERT_PRODUCT_DAYS = """
    INSERT INTO metrics_productday AS product (store_id, day, product_key, title, units, revenue)
    VALUES {rows}
    ON CONFLICT (store_id, day, product_key)
    DO UPDATE SET units = product.units + EXCLUDED.units,
                  revenue = product.revenue + EXCLUDED.revenue,
                  title = CASE WHEN EXCLUDED.units > 0 THEN EXCLUDED.title ELSE product.title END
"""


@dataclass(frozen=True)
class Sale:
    """One line item as a product's day counts it."""

    product_key: str
    title: str
    units: int
    revenue: Decimal


class MetricChanges:
    """Deltas for the buckets of any stores, summed per bucket until `apply()` writes them."""

    def __init__(self) -> None:
        self._stores: dict[int, Store] = {}
        self._totals: defaultdict[tuple[int, str, str, datetime], Decimal] = defaultdict(Decimal)
        self._sales: dict[tuple[int, date, str], list] = {}

    def add(self, store: Store, *, at: datetime, deltas: dict[str, Decimal]) -> None:
        """Add each non-zero delta to the store's hour and day buckets that contain `at`."""
        self._stores[store.pk] = store
        for granularity in (Granularity.HOUR, Granularity.DAY):
            # Keyed in UTC: local times that differ only by fold (the two 01:00 hours of a
            # fall-back night) compare and hash as equal, and would share one bucket.
            start = bucket_start(at, granularity, store.timezone).astimezone(UTC)
            for name, delta in deltas.items():
                if delta:
                    self._totals[(store.pk, str(name), str(granularity), start)] += delta

    def add_sales(self, store: Store, *, at: datetime, sales: Iterable[Sale], sign: int = 1) -> None:
        """Add (`sign` 1) or take away (-1) `sales` on the store's local day that contains `at`."""
        day = at.astimezone(ZoneInfo(store.timezone)).date()
        for sale in sales:
            entry = self._sales.setdefault((store.pk, day, sale.product_key), [sale.title, 0, Decimal(0)])
            if sign > 0:
                entry[0] = sale.title
            entry[1] += sign * sale.units
            entry[2] += sign * sale.revenue

    def changed_names(self) -> list[tuple[Store, list[str]]]:
        """Each store whose buckets change, with the names of the metrics that do."""
        names: dict[int, set[str]] = {}
        for (store_id, name, _, _), total in self._totals.items():
            if total:
                names.setdefault(store_id, set()).add(name)
        return [(self._stores[store_id], sorted(found)) for store_id, found in sorted(names.items())]

    def apply(self) -> dict[int, list[tuple[str, str, datetime, Decimal]]]:
        """Write the deltas; return each store's changed buckets with their new values.

        The values are those this transaction wrote, under the buckets' row locks, so
        of two batches the one that commits later reports the later values.
        """
        self._apply_sales()
        # Sorted, so concurrent writers lock bucket rows in the same order.
        rows = [(*key, total) for key, total in sorted(self._totals.items()) if total]
        self._totals.clear()
        if not rows:
            return {}
        placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(UPSERT.format(rows=placeholders), [value for row in rows for value in row])
            written = cursor.fetchall()
        buckets: dict[int, list[tuple[str, str, datetime, Decimal]]] = {}
        for store_id, name, granularity, timestamp, value in written:
            buckets.setdefault(store_id, []).append((name, granularity, timestamp, value))
        return buckets


    def _apply_sales(self) -> None:
        # Sorted, as the buckets are, so concurrent writers lock rows in the same order.
        rows = [
            (store_id, day, key, title, units, revenue)
            for (store_id, day, key), (title, units, revenue) in sorted(self._sales.items())
            if units or revenue
        ]
        self._sales.clear()
        if not rows:
            return
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(UPSERT_PRODUCT_DAYS.format(rows=placeholders), [value for row in rows for value in row])


def adjust_metrics(*, store: Store, at: datetime, deltas: dict[str, Decimal]) -> None:
    """Add each non-zero delta to the hour and day buckets that contain `at`, now."""
    changes = MetricChanges()
    changes.add(store, at=at, deltas=deltas)
    changes.apply()
