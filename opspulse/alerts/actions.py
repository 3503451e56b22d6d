"""Alert evaluation: fire once per alert and cause, as an AlertEvent outbox row.

The drain job evaluates a whole batch of changes against the store's rules, read once
per batch, and records the events it fired with one statement at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce.models import NOT_COUNTED
from opspulse.live.publish import publish

INSERT_EVENTS = """
    INSERT INTO {table} (alert_id, store_id, subject, message, data, fired_at)
    VALUES {rows}
    ON CONFLICT (alert_id, subject) DO NOTHING
    RETURNING alert_id, store_id, message
"""


@dataclass(frozen=True)
class Firing:
    alert_id: int
    store_id: int
    subject: str
    message: str
    data: dict[str, Any]


class AlertCheck:
    """The active rules of a batch's stores and the firings found while it is applied."""

    def __init__(self, stores: dict[int, Any]) -> None:
        self.stores = stores
        self._rules: dict[tuple[int, str], list[Alert]] | None = None
        self._firings: dict[tuple[int, str], Firing] = {}

    def _active(self, store, alert_type: str) -> list[Alert]:
        if self._rules is None:
            # Read once for every store of the batch, at the first change that needs them.
            self._rules = {}
            for alert in Alert.objects.filter(store_id__in=list(self.stores), is_active=True).order_by("pk"):
                self._rules.setdefault((alert.store_id, alert.type), []).append(alert)
        return self._rules.get((store.pk, alert_type), [])

    def _fire(self, alert: Alert, *, subject: str, message: str, data: dict[str, Any]) -> None:
        self._firings.setdefault((alert.pk, subject), Firing(alert.pk, alert.store_id, subject, message, data))

    def order(self, store, order) -> None:
        if order.status in NOT_COUNTED:
            return
        for alert in self._active(store, AlertType.HIGH_VALUE_ORDER):
            try:
                threshold = Decimal(str(alert.config.get("threshold", "")))
            except InvalidOperation:
                continue
            if order.total >= threshold:
                self._fire(
                    alert,
                    subject=f"order:{order.external_id}",
                    message=f"High-value order {order.number}: {order.total} {order.currency}",
                    data={"order": order.external_id, "total": str(order.total)},
                )

    def stock(self, store, level, previous: int | None) -> None:
        for alert in self._active(store, AlertType.LOW_STOCK):
            threshold = int(alert.config.get("threshold", 5))
            # Fire when stock crosses the threshold downwards, once per crossing: replays
            # and stale updates never reach here (commerce.actions drops them first).
            if level.available <= threshold and (previous is None or previous > threshold):
                subject = (
                    f"stock:{level.item_external_id}:{level.location_external_id}:"
                    f"{level.platform_updated_at.isoformat()}"
                )
                self._fire(
                    alert,
                    subject=subject,
                    message=f"Low stock: {level.display_name} has {level.available} left",
                    data={"item": level.item_external_id, "available": level.available},
                )

    def record(self) -> int:
        """Store the firings not recorded before and announce them; return how many."""
        firings, self._firings = list(self._firings.values()), {}
        if not firings:
            return 0
        rows = [
            (firing.alert_id, firing.store_id, firing.subject[:200], firing.message[:500], json.dumps(firing.data))
            for firing in firings
        ]
        placeholders = ", ".join(["(%s, %s, %s, %s, %s::jsonb, now())"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                INSERT_EVENTS.format(table=AlertEvent._meta.db_table, rows=placeholders),
                [value for row in rows for value in row],
            )
            fired = cursor.fetchall()
        for alert_id, store_id, message in fired:
            publish(self.stores[store_id].public_id, {"type": "alert_fired", "alert": alert_id, "message": message})
        return len(fired)
