"""② Turn a store's pending deliveries into OpsPulse records, in order and in batches."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import DataError, transaction
from django.db.models import F
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.ingest import queue
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.live import publish
from opspulse.platforms import registry
from opspulse.platforms.errors import PayloadError
from opspulse.stores.models import Store

logger = logging.getLogger("opspulse.ingest")

# A drain job hands over to a fresh job after this many batches, so one busy store
# cannot hold a worker forever while other stores wait.
MAX_BATCHES_PER_JOB = 25


class DeliveryError(Exception):
    """Processing a delivery failed for a reason that may pass (database, bug fixed on deploy)."""

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"delivery {delivery_id} failed")
        self.delivery_id = delivery_id


def drain_store(*, store_id: int, batch_size: int | None = None) -> int:
    """Process the store's pending deliveries; return how many were handled."""
    batch_size = batch_size or settings.DRAIN_BATCH_SIZE
    queue.wait_for_inflight_ingest(store_id)
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return 0
    handled = 0
    for _ in range(MAX_BATCHES_PER_JOB):
        try:
            count = process_batch(store=store, batch_size=batch_size)
        except DeliveryError as exc:
            if not record_failed_attempt(exc.delivery_id, exc.__cause__):
                raise  # procrastinate retries the job after a backoff
            continue  # the delivery is out of the way: go on with the next ones
        handled += count
        if count < batch_size:
            # Deliveries that arrive from now on found this job running and deferred
            # a new one, so nothing is left behind.
            return handled
    queue.defer_drain(store_id)
    return handled


def process_batch(*, store: Store, batch_size: int) -> int:
    """Apply the store's next pending deliveries together; return how many were taken.

    Every delivery is parsed first; the records are then applied as one batch in a
    savepoint. If that fails, each delivery is applied alone in its own savepoint, so
    a bad one is found and marked without holding up the others.
    """
    with transaction.atomic():
        deliveries = list(
            WebhookDelivery.objects.select_for_update()
            .filter(store=store, status=DeliveryStatus.PENDING)
            .order_by("id")[:batch_size]
        )
        parsed = [(delivery, parse_delivery(delivery)) for delivery in deliveries]
        work = [(delivery, record) for delivery, record in parsed if record is not None]
        with publish.batch():
            try:
                with publish.discard_on_error(), transaction.atomic():
                    commerce.apply_records(store=store, records=[record for _, record in work])
            except Exception:
                logger.warning("store %s: batch of %s failed, applying its deliveries one by one",
                               store.pk, len(work), exc_info=True)
                for delivery, record in work:
                    apply_delivery(store, delivery, record)
        mark_done(deliveries)
    return len(deliveries)


def parse_delivery(delivery: WebhookDelivery) -> commerce.Record | None:
    """Turn a delivery into the record it describes; None when there is nothing to apply.

    A delivery that cannot be parsed is marked failed (or ignored, for a topic OpsPulse
    does not handle) here: retrying will not change its payload.
    """
    delivery.attempts += 1
    delivery.status, delivery.error = DeliveryStatus.PROCESSED, ""
    parse = registry.parser_for(delivery.platform, delivery.topic)
    if parse is None:
        delivery.status, delivery.error = DeliveryStatus.IGNORED, f"unknown topic {delivery.topic!r}"
        return None
    try:
        return parse(json.loads(bytes(delivery.body).decode("utf-8-sig")))
    except (PayloadError, ValueError, RecursionError) as exc:
        fail(delivery, exc)
        return None
    except Exception as exc:
        raise DeliveryError(delivery.pk) from exc


def apply_delivery(store: Store, delivery: WebhookDelivery, record: commerce.Record) -> None:
    """Apply one delivery's record inside a savepoint; a bad one marks it failed."""
    # A DataError (NUL in a text, a total out of range) comes back on every retry of the
    # same payload, and each retry would hold up the store's other deliveries.
    try:
        with publish.discard_on_error(), transaction.atomic():
            commerce.apply_records(store=store, records=[record])
    except (PayloadError, ValueError, RecursionError, DataError) as exc:
        fail(delivery, exc)
    except Exception as exc:
        raise DeliveryError(delivery.pk) from exc


def fail(delivery: WebhookDelivery, exc: BaseException) -> None:
    delivery.status, delivery.error = DeliveryStatus.FAILED, str(exc)[:2000]
    logger.warning("delivery %s failed: %s", delivery.pk, delivery.error)


def mark_done(deliveries: list[WebhookDelivery]) -> None:
    """Write the outcome of a batch: one statement for the processed, one for the rest."""
    now = timezone.now()
    processed = [d.pk for d in deliveries if d.status == DeliveryStatus.PROCESSED]
    others = [d for d in deliveries if d.status != DeliveryStatus.PROCESSED]
    if processed:
        WebhookDelivery.objects.filter(pk__in=processed).update(
            status=DeliveryStatus.PROCESSED, error="", attempts=F("attempts") + 1, processed_at=now
        )
    for delivery in others:
        delivery.processed_at = now
    if others:
        WebhookDelivery.objects.bulk_update(others, ["status", "error", "attempts", "processed_at"])


def record_failed_attempt(delivery_id: int, cause: BaseException | None) -> bool:
    """Count a failed attempt; after the last one mark the delivery failed. True if marked."""
    reason = f"{type(cause).__name__}: {cause}"[:2000] if cause else "unknown error"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts = F("attempts") + 1
        delivery.error = reason
        delivery.save(update_fields=["attempts", "error"])
        delivery.refresh_from_db(fields=["attempts"])
        if delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["status", "processed_at"])
            logger.error("delivery %s failed after %s attempts: %s", delivery_id, delivery.attempts, reason)
            return True
    logger.warning("delivery %s attempt %s failed: %s", delivery_id, delivery.attempts, reason)
    return False


def requeue_waiting_deliveries(*, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Defer a drain job for every store whose pending deliveries have waited too long.

    A safety net: normally ingest defers the job itself, but a job can fail for good
    (its retries exhausted while the database was away) and leave deliveries behind.
    """
    store_ids = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, received_at__lt=timezone.now() - older_than
        )
        .values_list("store_id", flat=True)
        .distinct()
    )
    return [store_id for store_id in store_ids if queue.defer_drain(store_id)]
