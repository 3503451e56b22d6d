"""② Turn a store's pending deliveries into OpsPulse records, in order and in batches."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, connection, transaction
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

# Errors of the connection, not of a delivery: the whole job stops and a successor retries.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

# A drain job hands over to a fresh job after this many rounds (one batch per store
# each) or DRAIN_JOB_MAX_SECONDS, so a busy lane cannot hold a worker for long while
# other lanes wait, and a job `doing` for much longer is known to be stuck.
MAX_ROUNDS_PER_JOB = 25

PENDING_STORES = """
    SELECT DISTINCT store_id FROM ingest_webhook_delivery
    WHERE status = 'pending' AND store_id %% %(lanes)s = %(lane)s
"""


class DeliveryError(Exception):
    """Processing a delivery failed for a reason that may pass (database, bug fixed on deploy)."""

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"delivery {delivery_id} failed")
        self.delivery_id = delivery_id


@dataclass
class Drained:
    handled: int = 0
    # Seconds until the earliest delivery that waits for its next attempt is due.
    retry_in: float | None = None

    def wait(self, seconds: float) -> None:
        self.retry_in = seconds if self.retry_in is None else min(self.retry_in, seconds)


def drain_lane(*, lane: int, batch_size: int | None = None) -> Drained:
    """Process the pending deliveries of the lane's stores, one batch per store per round."""
    batch_size = batch_size or settings.DRAIN_BATCH_SIZE
    queue.wait_for_inflight_ingest(lane)
    result = Drained()
    stores: dict[int, Store] = {}
    deadline = time.monotonic() + settings.DRAIN_JOB_MAX_SECONDS
    for _ in range(MAX_ROUNDS_PER_JOB):
        with connection.cursor() as cursor:
            cursor.execute(PENDING_STORES, {"lanes": settings.DRAIN_LANES, "lane": lane})
            store_ids = sorted(row[0] for row in cursor.fetchall())
        missing = [pk for pk in store_ids if pk not in stores]
        if missing:
            stores.update(Store.objects.in_bulk(missing))
        more = False
        for store_id in store_ids:
            if store_id in stores:
                more |= drain_batch(stores[store_id], batch_size, result) == batch_size
            if time.monotonic() > deadline:
                queue.defer_drain(lane)
                return result
        if not more:
            # Deliveries that arrive from now on found this job running and deferred
            # a new one, so nothing is left behind.
            return result
    queue.defer_drain(lane)
    return result


def drain_store(*, store_id: int, batch_size: int | None = None) -> Drained:
    """Process one store's pending deliveries, all of them that are due."""
    batch_size = batch_size or settings.DRAIN_BATCH_SIZE
    queue.wait_for_inflight_ingest(queue.lane_of(store_id))
    result = Drained()
    store = Store.objects.filter(pk=store_id).first()
    while store is not None and drain_batch(store, batch_size, result) == batch_size:
        pass
    return result


def drain_batch(store: Store, batch_size: int, result: Drained) -> int:
    """Process the store's next batch; a delivery that fails for a passing reason waits."""
    while True:
        try:
            count, wait = process_batch(store=store, batch_size=batch_size)
        except DeliveryError as exc:
            if isinstance(exc.__cause__, CONNECTION_ERRORS):
                raise exc.__cause__ from None  # the database is away, not this delivery at fault
            wait = record_failed_attempt(exc.delivery_id, exc.__cause__)
            if wait is None:
                continue  # marked failed, so out of the way: go on with the next ones
            result.wait(wait)
            return 0
        if wait is not None:
            result.wait(wait)
        result.handled += count
        return count


def process_batch(*, store: Store, batch_size: int) -> tuple[int, float | None]:
    """Apply the store's next pending deliveries together.

    Return how many were taken and, if the batch stops at a delivery that waits for
    its next attempt, the seconds until it is due. Every delivery is parsed first; the
    records are then applied as one batch in a savepoint. If that fails, each delivery
    is applied alone in its own savepoint, so a bad one is found and marked without
    holding up the others.
    """
    with transaction.atomic():
        deliveries = list(
            WebhookDelivery.objects.select_for_update()
            .filter(store=store, status=DeliveryStatus.PENDING)
            .order_by("id")[:batch_size]
        )
        now = timezone.now()
        wait = None
        for position, delivery in enumerate(deliveries):
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
                # The store's deliveries are applied in order: the rest waits with it.
                wait = (delivery.next_attempt_at - now).total_seconds()
                deliveries = deliveries[:position]
                break
        parsed = [(delivery, parse_delivery(delivery)) for delivery in deliveries]
        work = [(delivery, record) for delivery, record in parsed if record is not None]
        with publish.batch():
            try:
                with publish.discard_on_error(), transaction.atomic():
                    commerce.apply_records(store=store, records=[record for _, record in work])
            except CONNECTION_ERRORS:
                raise  # the database is away: one by one would fail as well
            except Exception:
                logger.warning("store %s: batch of %s failed, applying its deliveries one by one",
                               store.pk, len(work), exc_info=True)
                for delivery, record in work:
                    apply_delivery(store, delivery, record)
        mark_done(deliveries)
    return len(deliveries), wait


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


def record_failed_attempt(delivery_id: int, cause: BaseException | None) -> float | None:
    """Count a failed attempt and return the seconds until the next; None once marked failed."""
    reason = f"{type(cause).__name__}: {cause}"[:2000] if cause else "unknown error"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts += 1
        delivery.error = reason
        if delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["attempts", "error", "status", "processed_at"])
            logger.error("delivery %s failed after %s attempts: %s", delivery_id, delivery.attempts, reason)
            return None
        wait = queue.backoff_seconds(delivery.attempts - 1)
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
        delivery.save(update_fields=["attempts", "error", "next_attempt_at"])
    logger.warning("delivery %s attempt %s failed, next in %.1fs: %s", delivery_id, delivery.attempts, wait, reason)
    return wait


def requeue_waiting_deliveries(*, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Defer a drain job for every lane whose pending deliveries have waited too long.

    A safety net: normally ingest defers the job itself, but a job can fail for good
    (its retries exhausted while the database was away) and leave deliveries behind.
    """
    store_ids = (
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, received_at__lt=timezone.now() - older_than
        )
        .values_list("store_id", flat=True)
        .distinct()
    )
    lanes = sorted({queue.lane_of(store_id) for store_id in store_ids})
    return [lane for lane in lanes if queue.defer_drain(lane)]
