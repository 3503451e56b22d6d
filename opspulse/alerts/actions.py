"""Alert evaluation: fire once per alert and cause, as an AlertEvent outbox row."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from opspulse.alerts.models import Alert, AlertEvent, AlertType
from opspulse.commerce.models import NOT_COUNTED
from opspulse.live.publish import publish


def _active(store, alert_type: str) -> list[Alert]:
    return list(Alert.objects.filter(store=store, type=alert_type, is_active=True))


def _fire(alert: Alert, *, subject: str, message: str, data: dict) -> AlertEvent | None:
    try:
        with transaction.atomic():
            event = AlertEvent.objects.create(
                alert=alert, store_id=alert.store_id, subject=subject, message=message, data=data
            )
    except IntegrityError:
        return None  # already fired for this cause
    publish(alert.store.public_id, {"type": "alert_fired", "alert": alert.pk, "message": message})
    return event


def check_order(*, store, order) -> None:
    if order.status in NOT_COUNTED:
        return
    for alert in _active(store, AlertType.HIGH_VALUE_ORDER):
        try:
            threshold = Decimal(str(alert.config.get("threshold", "")))
        except InvalidOperation:
            continue
        if order.total >= threshold:
            _fire(
                alert,
                subject=f"order:{order.external_id}",
                message=f"High-value order {order.number}: {order.total} {order.currency}",
                data={"order": order.external_id, "total": str(order.total)},
            )


def check_stock(*, store, level, previous: int | None) -> None:
    for alert in _active(store, AlertType.LOW_STOCK):
        threshold = int(alert.config.get("threshold", 5))
        # Fire when stock crosses the threshold downwards, once per crossing: replays and
        # stale updates never reach here (commerce.actions drops them first).
        if level.available <= threshold and (previous is None or previous > threshold):
            subject = (
                f"stock:{level.item_external_id}:{level.location_external_id}:"
                f"{level.platform_updated_at.isoformat()}"
            )
            _fire(
                alert,
                subject=subject,
                message=f"Low stock: {level.display_name} has {level.available} left",
                data={"item": level.item_external_id, "available": level.available},
            )
