"""The per-store drain job: at most one waiting, at most one running, per store.

Ingest defers `drain_store(store_id)` with a queueing lock, so a burst of deliveries
for a store adds one job row (and one NOTIFY), not one per webhook. A delivery whose
ingest saw a drain job still waiting relies on that job to pick it up; the job's
start therefore waits, through an advisory lock, for every ingest transaction of its
store that is still in flight (see `wait_for_inflight_ingest`).
"""

from __future__ import annotations

import procrastinate
from django.db import connection, transaction
from procrastinate.exceptions import AlreadyEnqueued

DRAIN_TASK = "opspulse.ingest.drain_store"
DRAIN_QUEUE = "ingest"
# Advisory lock keys for ingest live in their own range of the 64-bit key space.
INGEST_LOCK_BASE = 0x4F50_0000_0000


def drain_lock(store_id: int) -> str:
    return f"drain-store-{store_id}"


def ingest_lock_key(store_id: int) -> int:
    return INGEST_LOCK_BASE + store_id


# Defers on the ingest endpoint's own psycopg connection (never opens a pool), so the
# job row commits or rolls back with the delivery row.
_deferrer = procrastinate.App(connector=procrastinate.PsycopgConnector())


async def hold_ingest_lock(conn, store_id: int) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (ingest_lock_key(store_id),))


WAITING_JOB_QUERY = "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = %(queueing_lock)s AND status = 'todo'"


async def ensure_drain_job(conn, store_id: int) -> None:
    """Defer the store's drain job in the caller's transaction unless one is waiting."""
    # The common case under load: a job is already waiting. Looking first (an index
    # probe) spares a failing insert per webhook. If that job starts right after this
    # look, its start waits for this transaction (wait_for_inflight_ingest).
    waiting = await conn.execute(f"SELECT EXISTS ({WAITING_JOB_QUERY})", {"queueing_lock": drain_lock(store_id)})
    if not (await waiting.fetchone())[0]:
        await defer_drain_job(conn, store_id)


async def defer_drain_job(conn, store_id: int) -> None:
    """Defer the store's drain job in the caller's transaction; a waiting one suffices."""
    try:
        # A savepoint: a queueing-lock conflict must not abort the caller's transaction.
        async with conn.transaction():
            await _deferrer.configure_task(
                name=DRAIN_TASK,
                queue=DRAIN_QUEUE,
                lock=drain_lock(store_id),
                queueing_lock=drain_lock(store_id),
                connection=conn,
            ).defer_async(store_id=store_id)
    except AlreadyEnqueued:
        pass


def defer_drain(store_id: int, *, attempt: int = 0, delay: float = 0) -> bool:
    """Defer the store's drain job on Django's connection; False if one is waiting."""
    from opspulse.ingest.tasks import drain_store

    options = {"schedule_in": {"seconds": delay}} if delay else {}
    try:
        with transaction.atomic():
            drain_store.configure(
                lock=drain_lock(store_id), queueing_lock=drain_lock(store_id), **options
            ).defer(store_id=store_id, attempt=attempt)
    except AlreadyEnqueued:
        return False
    return True


def wait_for_inflight_ingest(store_id: int) -> None:
    """Return once every ingest transaction of the store that began earlier has ended."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ingest_lock_key(store_id)])


STUCK_DRAIN_JOBS = """
    SELECT job.id FROM procrastinate_jobs job
    JOIN procrastinate_events event ON event.job_id = job.id AND event.type = 'started'
    WHERE job.status = 'doing' AND job.task_name = %s
    GROUP BY job.id
    HAVING max(event.at) < now() - make_interval(secs => %s)
"""


def stuck_drain_jobs(*, older_than_seconds: float) -> list[int]:
    """Return drain jobs `doing` for longer than any drain job takes.

    A worker that loses the database while finishing a job leaves it `doing`; the
    worker lives on, so procrastinate does not count the job as stalled, and the job
    keeps its store's lock, which would hold up every later drain job of the store.
    """
    with connection.cursor() as cursor:
        cursor.execute(STUCK_DRAIN_JOBS, [DRAIN_TASK, older_than_seconds])
        return [row[0] for row in cursor.fetchall()]
