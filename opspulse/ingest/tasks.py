"""Background jobs of the ingest pipeline (procrastinate, on PostgreSQL)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from procrastinate import JobContext, builtin_tasks
from procrastinate.contrib.django import app
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status

from opspulse.ingest import actions, queue, retention
from opspulse.stores.tasks import resume_store_deletions


backoff_seconds = queue.backoff_seconds

# Upkeep (the sweep, the daily retention job) runs in slots of its own, never the drain's.
MAINTENANCE_QUEUE = "maintenance"


@app.task(name=queue.DRAIN_TASK, queue=queue.DRAIN_QUEUE)
def drain_lane(lane: int, attempt: int = 0) -> None:
    """Process the lane's pending deliveries; after a failure, a successor job retries.

    procrastinate's own retry is not used: it would put this job back in the queue under
    the lane's queueing lock, which the lane's next job may already hold (ingest defers
    one while this one runs), and the failed job would then stay `doing` and block the
    lane. A successor job, deferred after a backoff, takes over instead; this job ends
    as failed. A delivery that waits for its next attempt gets a delayed job as well.

    A lane that a worker's drainer owns (opspulse.ingest.drainer) is left to it.
    """
    try:
        with queue.unless_drainer_owns(lane) as ours:
            if not ours:
                return
            with queue.running(lane):
                drained = actions.drain_lane(lane=lane)
    except Exception:
        queue.defer_drain(lane, attempt=attempt + 1, delay=backoff_seconds(attempt))
        raise
    if drained.retry_in is not None:
        queue.defer_drain(lane, delay=max(drained.retry_in, 0.1))


# Every 15 s: a worker killed mid-job has its jobs run again within a minute (its
# heartbeat is missed for WORKER_STALLED_SECONDS, 30 s by default, then the next sweep).
@app.periodic(cron="* * * * * */15", periodic_id="ingest-sweep")
@app.task(
    name="opspulse.ingest.sweep",
    queue=MAINTENANCE_QUEUE,
    queueing_lock="opspulse.ingest.sweep",
    pass_context=True,
)
async def sweep(context: JobContext, timestamp: int) -> None:
    """Run jobs of dead workers again, end drain jobs nobody runs, drain forgotten deliveries.

    A worker is dead when its heartbeat is older than WORKER_STALLED_SECONDS; a job of
    a live worker runs for as long as it needs.
    """
    job_manager = context.app.job_manager
    stalled_after = settings.PROCRASTINATE_WORKER_DEFAULTS["stalled_worker_timeout"]
    orphaned = await sync_to_async(queue.orphaned_drain_jobs)(started_before_seconds=stalled_after)
    for job_id in orphaned:
        # Ending it frees the lane's lock; its deliveries are still pending and are
        # queued again below.
        await job_manager.finish_job_by_id_async(job_id, status=Status.FAILED, delete_job=False)
    for job in await job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            await job_manager.retry_job(job)
        except UniqueViolation:
            # A newer job with the same queueing lock is already waiting and will do
            # the same work (drain jobs take every pending delivery of their lane).
            await job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    await sync_to_async(actions.requeue_waiting_deliveries)()


@app.periodic(cron=settings.MAINTENANCE_CRON, periodic_id="maintenance")
@app.task(
    name="opspulse.ingest.maintain",
    queue=MAINTENANCE_QUEUE,
    queueing_lock="opspulse.ingest.maintain",
    pass_context=True,
)
async def maintain(context: JobContext, timestamp: int) -> None:
    """Every day: scrub old webhook bodies, remove old privacy exports, expired sessions
    and cache rows (opspulse.ingest.retention), finish the removal of deleted stores, and
    remove jobs finished long ago."""
    await sync_to_async(retention.remove_expired_data)()
    await sync_to_async(resume_store_deletions)()
    if settings.FINISHED_JOB_RETENTION_DAYS > 0:
        await builtin_tasks.remove_old_jobs(
            context,
            max_hours=settings.FINISHED_JOB_RETENTION_DAYS * 24,
            remove_failed=True,
            remove_cancelled=True,
            remove_aborted=True,
        )
