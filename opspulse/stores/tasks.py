"""Background jobs of the stores themselves (procrastinate, queue "maintenance").

The jobs that talk to a store's platform are its provider's (opspulse.platforms.shopify.tasks).
"""

from __future__ import annotations

from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from opspulse.stores.actions import defer_store_deletion, purge_store_rows
from opspulse.stores.models import Store

# Upkeep runs in slots of its own, never a drain lane's (opspulse.ingest.tasks).
MAINTENANCE_QUEUE = "maintenance"


@app.task(
    name="opspulse.stores.delete_store_data",
    queue=MAINTENANCE_QUEUE,
    retry=RetryStrategy(max_attempts=10, exponential_wait=5),
)
def delete_store_data(store_id: int) -> None:
    """Remove a deleted store's rows, a batch at a time, then the store itself."""
    while not purge_store_rows(store_id=store_id):
        pass


def resume_store_deletions() -> int:
    """Queue again the removal of every deleted store whose rows are still here (its job
    gave up, or was lost with a database restore); return how many."""
    store_ids = list(Store.objects.filter(deleted_at__isnull=False).values_list("pk", flat=True))
    for store_id in store_ids:
        defer_store_deletion(store_id)
    return len(store_ids)
