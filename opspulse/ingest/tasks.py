"""Background jobs of the ingest pipeline (procrastinate, on PostgreSQL)."""

from __future__ import annotations

import random

from asgiref.sync import sync_to_async
from procrastinate import JobContext, RetryDecision
from procrastinate.contrib.django import app
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy

from opspulse.ingest import actions, queue


class JitteredBackoff(BaseRetryStrategy):
    """Exponential backoff with full jitter, so retries of many stores don't align."""

    def __init__(self, *, max_attempts: int, base_seconds: float = 1.0, cap_seconds: float = 60.0):
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if job.attempts >= self.max_attempts:
            return None
        ceiling = min(self.cap_seconds, self.base_seconds * 2**job.attempts)
        return RetryDecision(retry_in={"seconds": self.base_seconds / 2 + random.uniform(0, ceiling)})


@app.task(name=queue.DRAIN_TASK, queue=queue.DRAIN_QUEUE, retry=JitteredBackoff(max_attempts=8))
def drain_store(store_id: int) -> None:
    actions.drain_store(store_id=store_id)


@app.periodic(cron="* * * * *", periodic_id="ingest-sweep")
@app.task(
    name="opspulse.ingest.sweep",
    queue=queue.DRAIN_QUEUE,
    queueing_lock="opspulse.ingest.sweep",
    pass_context=True,
)
async def sweep(context: JobContext, timestamp: int) -> None:
    """Run jobs again that a dead worker left in `doing`; drain forgotten deliveries."""
    job_manager = context.app.job_manager
    for job in await job_manager.get_stalled_jobs():
        try:
            await job_manager.retry_job(job)
        except UniqueViolation:
            # A newer job with the same queueing lock is already waiting and will do
            # the same work (drain jobs take every pending delivery of their store).
            await job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    await sync_to_async(actions.requeue_waiting_deliveries)()
