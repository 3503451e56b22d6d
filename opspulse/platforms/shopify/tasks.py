"""Background jobs that talk to a Shopify store (procrastinate, queue "shopify").

The task names are those the jobs had when they lived in opspulse.stores.tasks: jobs
already queued, and the periodic registration, are found by them.
"""

from __future__ import annotations

import logging

from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app

from opspulse.lib.jobs import defer_once
from opspulse.platforms.models import Backfill, BackfillStatus
from opspulse.platforms.shopify import backfill, reconcile
from opspulse.platforms.shopify.client import AccessRevoked, IntegrationUnavailable, ShopifyError
from opspulse.stores.models import Integration, IntegrationStatus, Platform

logger = logging.getLogger("opspulse.shopify")

PLATFORM_QUEUE = "shopify"
BACKFILL_ATTEMPTS = 5


@app.task(
    name="opspulse.stores.backfill_shopify_store",
    queue=PLATFORM_QUEUE,
    pass_context=True,
    # Shopify unreachable or failing beyond the client's own retries: try again later,
    # from the last saved page.
    retry=RetryStrategy(max_attempts=BACKFILL_ATTEMPTS, exponential_wait=10, retry_exceptions={ShopifyError}),
)
def backfill_shopify_store(context: JobContext, store_id: int) -> None:
    """Import a newly connected shop's recent orders and stock (resumable)."""
    try:
        state = backfill.run(store_id)
    except (AccessRevoked, IntegrationUnavailable) as exc:
        backfill.fail(store_id, str(exc))  # nothing to retry until the store is reconnected
    except ShopifyError as exc:
        if context.job.attempts + 1 >= BACKFILL_ATTEMPTS:
            backfill.fail(store_id, str(exc))
        raise
    if state.phase == "orders_bulk_wait":
        # Shopify is still exporting. Its bulk_operations/finish webhook starts the job
        # again (actions.resume_import), or, should that be lost, the next five-minute
        # sweep does.
        logger.info("store %s: the import waits for Shopify's bulk export", store_id)


def defer_backfill(store_id: int, *, queueing_lock: str | None = None) -> bool:
    """Queue the store's import; False if one under `queueing_lock` is waiting already."""
    # One import per store at a time: a second one waits for the first, then finds it done.
    return defer_once(
        backfill_shopify_store.configure(lock=f"backfill-{store_id}", queueing_lock=queueing_lock), store_id=store_id
    )


@app.periodic(cron="*/5 * * * *", periodic_id="shopify-reconcile")
@app.task(name="opspulse.stores.reconcile_shopify_stores", queue=PLATFORM_QUEUE,
          queueing_lock="opspulse.stores.reconcile_shopify_stores")
def reconcile_shopify_stores(timestamp: int) -> None:
    """Every five minutes: a reconciliation job for each connected Shopify store.

    Imports still waiting for a bulk export are looked at again too, in case Shopify's
    bulk_operations/finish webhook did not arrive.
    """
    store_ids = Integration.objects.filter(
        type=Platform.SHOPIFY, app_installed=True, status=IntegrationStatus.ACTIVE
    ).values_list("store_id", flat=True)
    for store_id in store_ids:
        # A waiting one has not started yet: it will read the same orders.
        defer_once(reconcile_shopify_store.configure(queueing_lock=f"reconcile-{store_id}"), store_id=store_id)
    waiting = Backfill.objects.filter(status=BackfillStatus.RUNNING, phase="orders_bulk_wait", store_id__in=store_ids)
    for store_id in waiting.values_list("store_id", flat=True):
        defer_backfill(store_id, queueing_lock=f"backfill-resume-{store_id}")


@app.task(name="opspulse.stores.reconcile_shopify_store", queue=PLATFORM_QUEUE)
def reconcile_shopify_store(store_id: int) -> None:
    """Apply the shop's recently updated orders that webhooks may have missed."""
    try:
        reconcile.reconcile(store_id)
    except ShopifyError as exc:
        reconcile.record_failure(store_id, str(exc))
