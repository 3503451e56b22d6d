"""Drain lanes: who processes a lane's deliveries, and how they are told.

Stores are spread over DRAIN_LANES lanes (store id modulo the lane count). A worker
keeps a drainer (opspulse.ingest.drainer) that owns lanes through a session advisory
lock (`drainer_lock_key`) and listens on each lane's channel (`drain_channel`). Ingest
sees the lock taken and defers no job: it notifies the channel while the drainer waits
(`idle_lock_key`), and the drainer, already connected, takes the delivery within a
millisecond; a busy drainer takes everything that arrived in its next batch. A
drainer's lanes go back to the job queue when it stops (see opspulse.ingest.drainer),
and when its connection dies PostgreSQL frees the lock.

A lane that no drainer owns (no worker runs, or one only of other queues; the tests'
in-process workers) goes through the job queue, as a recovery path: ingest
defers `drain_lane(lane)` with a queueing lock, so a burst of deliveries adds one job
row per lane, not one per webhook or per store; the job then takes every pending
delivery of the lane's stores, store by store, in batches. A delivery whose ingest saw
a drain job still waiting relies on that job to pick it up; the job's start therefore
waits, through an advisory lock, for every ingest transaction of its lane that is
still in flight (see `wait_for_inflight_ingest`).

Retries of a failed delivery wait in the delivery row (`next_attempt_at`), not in the
queue: a delayed job under the lane's queueing lock would make new deliveries of the
whole lane wait for it. Delayed jobs use a queueing lock of their own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from opspulse.lib.jobs import defer_once, task_named

DRAIN_TASK = "opspulse.ingest.drain_lane"
DRAIN_QUEUE = "ingest"
# Advisory lock keys for ingest live in their own range of the 64-bit key space.
INGEST_LOCK_BASE = 0x4F50_0000_0000
RUNNING_LOCK_BASE = 0x4F51_0000_0000
DRAINER_LOCK_BASE = 0x4F52_0000_0000
IDLE_LOCK_BASE = 0x4F53_0000_0000


def lane_of(store_id: int) -> int:
    return store_id % settings.DRAIN_LANES


def drain_lock(lane: int) -> str:
    return f"drain-lane-{lane}"


def retry_lock(lane: int) -> str:
    return f"drain-lane-{lane}-later"


def ingest_lock_key(lane: int) -> int:
    return INGEST_LOCK_BASE + lane


def drainer_lock_key(lane: int) -> int:
    """Held, exclusively and for its whole life, by the drainer that owns the lane; a
    drain job holds it shared while it runs, so that a drainer takes over only between jobs."""
    return DRAINER_LOCK_BASE + lane


def idle_lock_key(lane: int) -> int:
    """Held by the lane's drainer while it waits for a notification, and only then: an
    ingest that finds it held notifies, one that finds it free (the drainer is busy and
    looks again after its batch) does not, sparing PostgreSQL a NOTIFY per webhook in a
    burst. Ingest holds it shared until its commit, so a drainer that goes idle waits for
    the ingests that saw it busy before it looks for their deliveries."""
    return IDLE_LOCK_BASE + lane


def drain_channel(lane: int) -> str:
    return f"opspulse_drain_{lane}"


def backoff_seconds(attempt: int, *, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter, so the retries of many stores don't align."""
    base = settings.DELIVERY_RETRY_BASE_SECONDS
    return base / 2 + random.uniform(0, min(cap, base * 2**attempt))


WAITING_JOB_QUERY = "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = %(queueing_lock)s AND status = 'todo'"
# procrastinate's own defer (its `defer_jobs` query), for a drain job of a lane inside
# the ingest statement; the job's queueing lock makes a second waiting one fail.
DEFER_DRAIN_JOB = """
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(job_queue)s, %(job_task)s, 0, %(queueing_lock)s, %(queueing_lock)s, %(job_args)s::jsonb, NULL::timestamptz
    )]::procrastinate_job_to_defer_v1[])
"""


@functools.cache
def drain_job_params(lane: int) -> Mapping[str, Any]:
    """The parameters of WAITING_JOB_QUERY, DEFER_DRAIN_JOB and the lane's drainer check:
    the same for every webhook of the lane, so built once (read-only)."""
    return MappingProxyType({
        "lock_key": ingest_lock_key(lane),
        "drainer_key": drainer_lock_key(lane),
        "idle_key": idle_lock_key(lane),
        "channel": drain_channel(lane),
        "queueing_lock": drain_lock(lane),
        "job_queue": DRAIN_QUEUE,
        "job_task": DRAIN_TASK,
        "job_args": json.dumps({"lane": lane}),
    })


def defer_drain(lane: int, *, attempt: int = 0, delay: float = 0) -> bool:
    """Defer the lane's drain job on Django's connection; False if one is waiting.

    A delayed job waits under its own queueing lock, so ingest still defers an
    immediate one for the lane's new deliveries.
    """
    options = {"schedule_in": {"seconds": delay}} if delay else {}
    job = task_named(
        DRAIN_TASK,
        queue=DRAIN_QUEUE,
        lock=drain_lock(lane),
        queueing_lock=retry_lock(lane) if delay else drain_lock(lane),
        **options,
    )
    return defer_once(job, lane=lane, attempt=attempt)


def announce(lane: int) -> bool:
    """Make sure the lane's pending deliveries will be taken: tell its drainer, if one
    listens, and defer a drain job (which leaves the lane to a drainer that owns it).
    False if a drain job of the lane was waiting already."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [drain_channel(lane)])
    return defer_drain(lane)


@contextlib.contextmanager
def unless_drainer_owns(lane: int) -> Iterator[bool]:
    """Yield True, holding the lane's drainer lock shared, unless a drainer owns the lane
    (then yield False: the drainer takes the lane's deliveries)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock_shared(%s)", [drainer_lock_key(lane)])
        free = cursor.fetchone()[0]
    try:
        yield free
    finally:
        if free:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [drainer_lock_key(lane)])
            except DatabaseError:
                pass  # the connection is gone, and the lock with it


def wait_for_inflight_ingest(*lanes: int, releasing_idle: list[int] | tuple[int, ...] = ()) -> None:
    """Return once every ingest transaction of the lanes that began earlier has ended;
    first release the idle locks of the lanes `releasing_idle` (a drainer starting a batch).

    One statement per lane, outside a transaction: each lane's lock is taken and released
    as it ends, so the ingests of a lane wait only for the lane's own ingests in flight,
    never for another lane's.
    """
    with connection.cursor() as cursor:
        if releasing_idle:
            cursor.execute(
                "SELECT count(pg_advisory_unlock(key)) FROM unnest(%s::bigint[]) AS key",
                [[idle_lock_key(lane) for lane in releasing_idle]],
            )
        for lane in sorted(lanes):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ingest_lock_key(lane)])


def running_lock_key(lane: int) -> int:
    return RUNNING_LOCK_BASE + lane


@contextlib.contextmanager
def running(lane: int) -> Iterator[None]:
    """Hold the lane's session advisory lock while its drain job runs.

    The lock is the sweep's proof that a `doing` drain job still runs, however long it
    takes: PostgreSQL releases it when the job's connection ends, so a job whose worker
    lost the database while finishing it shows as `doing` with its lock free.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [running_lock_key(lane)])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [running_lock_key(lane)])
        except DatabaseError:
            pass  # the connection is gone, and the lock with it


ORPHANED_DRAIN_JOBS = """
    SELECT job.id FROM procrastinate_jobs job
    JOIN procrastinate_events event ON event.job_id = job.id AND event.type = 'started'
    WHERE job.status = 'doing' AND job.task_name = %(task)s
      AND NOT EXISTS (
          SELECT 1 FROM pg_locks held
          WHERE held.locktype = 'advisory' AND held.granted AND held.objsubid = 1
            AND held.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND held.classid::bigint = (%(base)s + (job.args->>'lane')::bigint) >> 32
            AND held.objid::bigint = (%(base)s + (job.args->>'lane')::bigint) & 4294967295
      )
    GROUP BY job.id
    HAVING max(event.at) < now() - make_interval(secs => %(grace)s)
"""


def orphaned_drain_jobs(*, started_before_seconds: float) -> list[int]:
    """Return drain jobs `doing` that no process runs any more.

    A worker that loses the database while finishing a job leaves it `doing`; the
    worker lives on and keeps its heartbeat, so procrastinate does not count the job as
    stalled, and the job keeps its lane's lock, which would hold up every later drain
    job of the lane. Such a job's running lock is free. Jobs that started within
    `started_before_seconds` are left alone: they may not have taken the lock yet.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            ORPHANED_DRAIN_JOBS, {"task": DRAIN_TASK, "base": RUNNING_LOCK_BASE, "grace": started_before_seconds}
        )
        return [row[0] for row in cursor.fetchall()]
