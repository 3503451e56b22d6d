"""② Turn a store's pending deliveries into OpsPulse records, in order and in batches."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import (
    DataError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import Model
from django.utils import timezone

from opspulse.commerce import actions as commerce
from opspulse.ingest import queue
from opspulse.ingest.models import DeliveryStatus, WebhookDelivery
from opspulse.ingest.selectors import retryable_deliveries
from opspulse.lib import broadcast
from opspulse.platforms import registry
from opspulse.platforms.errors import PayloadError
from opspulse.platforms.registry import PlatformEvent, PrivacyRequest, apply_platform_event
from opspulse.stores.models import Store

# Topics whose platform event may delete the store (and its deliveries) while parsing.
STORE_ERASING_TOPICS = {"shop/redact"}

logger = logging.getLogger("opspulse.ingest")

# Errors of the connection, not of a delivery: the whole job stops and a successor retries.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

# A drain job hands over to a fresh job after this many batches or
# DRAIN_JOB_MAX_SECONDS, so a busy lane cannot hold a worker for long while other lanes
# wait.
MAX_BATCHES_PER_JOB = 50

# The next batch of a lane (or a store): each store's oldest pending deliveries, an
# equal share of the batch per store, and no store whose queue waits for a retry (its
# deliveries are applied in order, so all of them wait). Each store's share is read
# from the pending index with a limit, so a large backlog is never sorted whole.
NEXT_BATCH = """
    WITH stores AS (
        SELECT DISTINCT store_id FROM ingest_webhook_delivery
        WHERE status = 'pending' AND {scope} AND store_id NOT IN (
            SELECT store_id FROM ingest_webhook_delivery
            WHERE status = 'pending' AND {scope} AND next_attempt_at > now())
    ),
    share AS (
        SELECT greatest(1, ceil(%(limit)s::numeric / greatest(count(*), 1)))::int AS n FROM stores
    )
    SELECT next.id FROM stores, share CROSS JOIN LATERAL (
        SELECT id FROM ingest_webhook_delivery
        WHERE store_id = stores.store_id AND status = 'pending'
        ORDER BY id LIMIT share.n
    ) next
    LIMIT %(limit)s
"""
# Whether NEXT_BATCH would find anything.
DUE = """
    SELECT EXISTS (
        SELECT 1 FROM ingest_webhook_delivery due
        WHERE status = 'pending' AND {scope} AND NOT EXISTS (
            SELECT 1 FROM ingest_webhook_delivery waiting
            WHERE waiting.store_id = due.store_id AND waiting.status = 'pending' AND waiting.next_attempt_at > now())
    )
"""
NEXT_RETRY = """
    SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM ingest_webhook_delivery
    WHERE status = 'pending' AND {scope} AND next_attempt_at > now()
"""
LANES_SCOPE = "store_id %% %(lanes)s = ANY(%(lane_list)s)"
STORE_SCOPE = "store_id = %(store_id)s"


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


# The batch's deliveries, locked, in one statement with their choice, each with its
# store's row (read in the batch's transaction: what it says of the store stands).
BATCH_DELIVERIES = f"""
    SELECT {_columns(WebhookDelivery, "d")}, {_columns(Store, "s")}
    FROM ingest_webhook_delivery d LEFT JOIN stores_store s ON s.id = d.store_id
    WHERE d.status = 'pending' AND d.id IN ({{next_batch}}) ORDER BY d.id FOR UPDATE OF d
"""
MARK_PROCESSED = """
    UPDATE ingest_webhook_delivery SET status = 'processed', error = '', attempts = attempts + 1, processed_at = %s
    WHERE id = ANY(%s)
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


@dataclass
class Batch:
    """What one batch took, and whether the scope may hold more right now."""

    taken: int = 0
    # False when the batch took every due delivery of its scope that had been
    # committed when it began.
    more: bool = False
    # Seconds until the delivery whose attempt failed in this batch is tried again.
    retry_in: float | None = None


def drain_lane(*, lane: int, batch_size: int | None = None) -> Drained:
    """Process the pending deliveries of the lane's stores, in batches that mix stores."""
    return _drain(LANES_SCOPE, lanes_params([lane]), batch_size, lane=lane)


def drain_store(*, store_id: int, batch_size: int | None = None) -> Drained:
    """Process one store's pending deliveries, all of them that are due."""
    return _drain(STORE_SCOPE, {"store_id": store_id}, batch_size, lane=queue.lane_of(store_id))


def lanes_params(lanes: list[int]) -> dict[str, Any]:
    return {"lanes": settings.DRAIN_LANES, "lane_list": list(lanes)}


def drain_batch(*, lanes: list[int], batch_size: int | None = None, releasing_idle: list[int] = ()) -> Batch:
    """Process one batch of the lanes' pending deliveries, once every ingest of those
    lanes that is still in flight has ended (their ids come before any later one's)."""
    queue.wait_for_inflight_ingest(*lanes, releasing_idle=releasing_idle)
    return _one_batch(LANES_SCOPE, lanes_params(lanes), batch_size or settings.DRAIN_BATCH_SIZE)


def has_due_deliveries(*, lanes: list[int]) -> bool:
    """Whether the lanes hold a delivery that the next batch would take."""
    with connection.cursor() as cursor:
        cursor.execute(DUE.format(scope=LANES_SCOPE), lanes_params(lanes))
        return cursor.fetchone()[0]


def _one_batch(scope: str, params: dict[str, Any], batch_size: int) -> Batch:
    try:
        return process_batch(scope=scope, params=params, batch_size=batch_size)
    except DeliveryError as exc:
        if isinstance(exc.__cause__, CONNECTION_ERRORS):
            raise exc.__cause__ from None  # the database is away, not this delivery at fault
        # Marked failed, or waiting for its retry: the next batch goes on without it.
        return Batch(more=True, retry_in=record_failed_attempt(exc.delivery_id, exc.__cause__))


def next_retry_in(scope: str, params: dict[str, Any]) -> float | None:
    """Seconds until the scope's earliest delivery that waits for its next attempt is due."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_RETRY.format(scope=scope), params)
        retry_in = cursor.fetchone()[0]
    return None if retry_in is None else float(retry_in)


def _drain(scope: str, params: dict[str, Any], batch_size: int | None, *, lane: int) -> Drained:
    queue.wait_for_inflight_ingest(lane)
    batch_size = batch_size or settings.DRAIN_BATCH_SIZE
    result = Drained()
    deadline = time.monotonic() + settings.DRAIN_JOB_MAX_SECONDS
    for _ in range(MAX_BATCHES_PER_JOB):
        batch = _one_batch(scope, params, batch_size)
        result.handled += batch.taken
        if not batch.more:
            # Deliveries that arrive from now on found this job running and deferred
            # a new one, so nothing is left behind.
            break
        if time.monotonic() > deadline:
            queue.defer_drain(lane)
            break
    else:
        queue.defer_drain(lane)
    result.retry_in = next_retry_in(scope, params)
    return result


def process_batch(*, scope: str, params: dict[str, Any], batch_size: int, careful: bool = False) -> Batch:
    """Apply the next pending deliveries of the scope; return what was taken.

    Every delivery is parsed first; the records of all the batch's stores are then
    applied together. If that fails, the batch is rolled back and taken again
    `careful`ly: each store's records on their own, and within a store that fails,
    each delivery alone in its own savepoint, so a bad one is found and marked
    without holding up the others.
    """
    try:
        with transaction.atomic():
            return _process_batch(scope, params, batch_size, careful=careful)
    except _TakeCarefully:
        return process_batch(scope=scope, params=params, batch_size=batch_size, careful=True)


class _TakeCarefully(Exception):
    """The batch's records failed together; it is rolled back and taken store by store."""


def _process_batch(scope: str, params: dict[str, Any], batch_size: int, *, careful: bool) -> Batch:
    taken_at = timezone.now()
    deliveries, stores = _take(BATCH_DELIVERIES.format(next_batch=NEXT_BATCH.format(scope=scope)),
                               {**params, "limit": batch_size})
    if not deliveries:
        return Batch()
    by_store: dict[int, list[WebhookDelivery]] = {}
    for delivery in deliveries:
        by_store.setdefault(delivery.store_id, []).append(delivery)
    # Each store's share of a batch that is not full is ceil(limit / stores): a store
    # that got all of it may have more waiting.
    share = max(1, -(-batch_size // len(by_store)))
    more = len(deliveries) >= batch_size or any(len(group) >= share for group in by_store.values())
    work = {
        store_id: [(d, record) for d in group if (record := parse_delivery(d, stores[store_id])) is not None]
        for store_id, group in by_store.items()
        if store_id in stores
    }
    if any(delivery.topic in STORE_ERASING_TOPICS for delivery in deliveries):
        # A shop's data was erased while parsing (Shopify's shop/redact): its other
        # deliveries went with the store and have nothing left to apply to.
        remaining = set(Store.objects.filter(pk__in=list(stores)).values_list("pk", flat=True))
        stores = {store_id: store for store_id, store in stores.items() if store_id in remaining}
        work = {store_id: pairs for store_id, pairs in work.items() if store_id in remaining}
    with broadcast.batch():
        if not careful:
            try:
                with broadcast.discard_on_error():
                    commerce.apply_changes(
                        [(stores[store_id], record) for store_id, pairs in work.items() for _, record in pairs],
                        stores_current=True,
                    )
            except CONNECTION_ERRORS:
                raise  # the database is away: store by store would fail as well
            except Exception as exc:
                logger.warning("batch of %s stores failed, applying each store's on its own", len(work),
                               exc_info=True)
                raise _TakeCarefully from exc
        else:
            for store_id, pairs in work.items():
                apply_deliveries(stores[store_id], pairs)
    mark_done([d for d in deliveries if d.store_id in stores], taken_at=taken_at)
    return Batch(taken=len(deliveries), more=more)


def _rows_as(model: type[Model]) -> Callable[[Sequence[Any]], Model]:
    """Build `model` instances from rows of its concrete columns, as a queryset would
    (with the fields' converters), without compiling a query for each batch."""
    fields = model._meta.concrete_fields
    names = [field.attname for field in fields]
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        functions = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        if functions:
            converters.append((index, column, functions))

    def build(values: Sequence[Any]) -> Model:
        if converters:
            values = list(values)
            for index, column, functions in converters:
                for convert in functions:
                    values[index] = convert(values[index], column, connection)
        return model.from_db(connection.alias, names, values)

    return build


@functools.cache
def _builders() -> tuple[int, Callable[[Sequence[Any]], WebhookDelivery], Callable[[Sequence[Any]], Store]]:
    return len(WebhookDelivery._meta.concrete_fields), _rows_as(WebhookDelivery), _rows_as(Store)


def _take(sql: str, params: dict[str, Any]) -> tuple[list[WebhookDelivery], dict[int, Store]]:
    """The batch's deliveries, and their stores by id (a store deleted since is absent)."""
    width, delivery_from, store_from = _builders()
    deliveries, stores = [], {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            deliveries.append(delivery_from(row[:width]))
            if row[width] is not None and row[width] not in stores:
                stores[row[width]] = store_from(row[width:])
    return deliveries, stores


def apply_deliveries(store: Store, work: list[tuple[WebhookDelivery, commerce.Record]]) -> None:
    """Apply one store's parsed deliveries together, else one by one."""
    if not work:
        return
    try:
        with broadcast.discard_on_error(), transaction.atomic():
            commerce.apply_records(store=store, records=[record for _, record in work])
    except CONNECTION_ERRORS:
        raise  # the database is away: one by one would fail as well
    except Exception:
        logger.warning("store %s: batch of %s failed, applying its deliveries one by one",
                       store.pk, len(work), exc_info=True)
        for delivery, record in work:
            apply_delivery(store, delivery, record)


def parse_delivery(delivery: WebhookDelivery, store: Store) -> commerce.Record | None:
    """Turn a delivery into the record it describes; None when there is nothing to apply.

    A delivery that cannot be parsed is marked failed (or ignored, for a topic OpsPulse
    does not handle) here: retrying will not change its payload. So is one of a store
    that was deleted, or disconnected (unless it is a privacy request about the
    history the store keeps): it was accepted just before, or by a web process that
    had not yet seen the change.
    """
    delivery.attempts += 1
    delivery.status, delivery.error = DeliveryStatus.PROCESSED, ""
    parse = registry.parser_for(delivery.platform, delivery.topic)
    if parse is None:
        delivery.status, delivery.error = DeliveryStatus.IGNORED, f"unknown topic {delivery.topic!r}"
        return None
    try:
        # Both platforms send UTF-8 (RFC 8259 §8.1); given bytes, json.loads would also
        # accept UTF-16 and UTF-32. Deep nesting raises RecursionError.
        payload = json.loads(bytes(delivery.body).decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        fail(delivery, ValueError(f"unparseable payload: {exc}"))
        return None
    try:
        record = parse(payload)
    except (PayloadError, ValueError, RecursionError) as exc:
        fail(delivery, exc)
        return None
    except Exception as exc:
        raise DeliveryError(delivery.pk) from exc
    if store.deleted_at is not None or (
        store.disconnected_at is not None and not isinstance(record, PrivacyRequest)
    ):
        delivery.status = DeliveryStatus.IGNORED
        delivery.error = "the store was deleted" if store.deleted_at is not None else "the store was disconnected"
        return None
    if isinstance(record, PlatformEvent):
        # About the store's integration, not its commerce: applied here, in the batch's
        # transaction, and nothing is left for the commerce actions.
        apply_platform_event(store_id=delivery.store_id, event=record)
        return None
    return record


def apply_delivery(store: Store, delivery: WebhookDelivery, record: commerce.Record) -> None:
    """Apply one delivery's record inside a savepoint; a bad one marks it failed."""
    # A DataError (NUL in a text, a total out of range) comes back on every retry of the
    # same payload, and each retry would hold up the store's other deliveries.
    try:
        with broadcast.discard_on_error(), transaction.atomic():
            commerce.apply_records(store=store, records=[record])
    except (PayloadError, ValueError, RecursionError, DataError) as exc:
        fail(delivery, exc)
    except Exception as exc:
        raise DeliveryError(delivery.pk) from exc


def fail(delivery: WebhookDelivery, exc: BaseException) -> None:
    delivery.status, delivery.error = DeliveryStatus.FAILED, str(exc)[:2000]
    logger.warning("delivery %s failed: %s", delivery.pk, delivery.error)


def mark_done(deliveries: list[WebhookDelivery], *, taken_at: datetime | None = None) -> None:
    """Write the outcome of a batch: one statement for the processed, one for the rest.

    `processed_at` is when the batch took them (default: now).
    """
    now = taken_at or timezone.now()
    processed = [d.pk for d in deliveries if d.status == DeliveryStatus.PROCESSED]
    others = [d for d in deliveries if d.status != DeliveryStatus.PROCESSED]
    if processed:
        with connection.cursor() as cursor:
            cursor.execute(MARK_PROCESSED, [now, processed])
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
    return [lane for lane in lanes if queue.announce(lane)]


@transaction.atomic
def retry_failed_deliveries(
    *,
    store_ids: Iterable[int] | None = None,
    delivery_ids: Iterable[int] | None = None,
    delivery_keys: Iterable[str] | None = None,
    failed_since: datetime | None = None,
) -> int:
    """Put failed deliveries back in their stores' queues, with their attempts counted
    from zero; return how many. Each is then processed by its lane's drain job as if it
    had just arrived (and marked failed again if it still cannot be).

    Every filter given narrows the choice; none retries every failed delivery.
    """
    deliveries = retryable_deliveries()
    if store_ids is not None:
        deliveries = deliveries.filter(store_id__in=list(store_ids))
    if delivery_ids is not None:
        deliveries = deliveries.filter(pk__in=list(delivery_ids))
    if delivery_keys is not None:
        deliveries = deliveries.filter(delivery_key__in=list(delivery_keys))
    if failed_since is not None:
        deliveries = deliveries.filter(processed_at__gte=failed_since)
    rows = list(deliveries.order_by("pk").values_list("pk", "store_id"))
    if not rows:
        return 0
    lanes = sorted({queue.lane_of(store_id) for _, store_id in rows})
    with connection.cursor() as cursor:
        # As ingest does: a drain job of the lane that is waiting now starts only once
        # this transaction has ended, so it finds these deliveries pending.
        for lane in lanes:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [queue.ingest_lock_key(lane)])
    retried = (
        retryable_deliveries()
        .filter(pk__in=[pk for pk, _ in rows])
        .update(status=DeliveryStatus.PENDING, error="", attempts=0, next_attempt_at=None, processed_at=None)
    )
    for lane in lanes:
        queue.announce(lane)
    logger.info("%s failed deliveries of %s stores queued again", retried, len({store_id for _, store_id in rows}))
    return retried
