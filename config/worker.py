"""The background worker: the webhook drainer, and procrastinate, woken by
PostgreSQL's NOTIFY, that rides through a database restart.

A worker that takes the ingest queue runs a drainer (opspulse.ingest.drainer) in a
thread of its own (unless WORKER_DRAINER is false): it owns the drain lanes and takes
each delivery as it arrives. Drain jobs then only carry lanes no drainer owns.

procrastinate's trigger sends a NOTIFY for every job deferred, and a listening worker
takes the job at once; without one it only finds jobs when it polls. procrastinate
stops a worker whose LISTEN connection cannot be re-opened, so this connector keeps
trying, with backoff, for as long as the database is away. Meanwhile, and for jobs
whose lock frees while no NOTIFY comes, the worker also polls every WORKER_POLL_MS.

Each queue (or group of queues) has slots of its own (WORKER_CONCURRENCY, e.g.
"ingest=4,alerts=4,shopify=2,maintenance=2"): webhook processing never waits behind alert posts or
Shopify API calls, however slow their receivers are.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from procrastinate import connector, exceptions, signals
from procrastinate.contrib.django import app
from procrastinate.contrib.django.utils import connector_params
from procrastinate.psycopg_connector import PsycopgConnector

from opspulse.ingest import drainer
from opspulse.ingest.queue import DRAIN_QUEUE

logger = logging.getLogger("opspulse.ingest")

QUEUES = [DRAIN_QUEUE, "shopify", "alerts", "maintenance"]


class WorkerConnector(PsycopgConnector):
    """procrastinate's psycopg connector, with a LISTEN that outlives a database restart."""

    max_backoff_seconds = 10.0

    async def listen_notify(self, on_notification: connector.Notify, channels: Iterable[str]) -> None:
        channels = list(channels)
        delay = 0.5
        while True:
            try:
                await super().listen_notify(on_notification=on_notification, channels=channels)
            except exceptions.ConnectorException as exc:
                logger.warning("worker: cannot listen for new jobs (%s); polling until it can again", exc)
                await asyncio.sleep(delay * random.uniform(1.0, 1.5))
                delay = min(delay * 2, self.max_backoff_seconds)
            else:
                delay = 0.5


def parse_concurrency(spec: str, queues: list[str] | None = None) -> dict[tuple[str, ...], int]:
    """Return the slots of each group of queues described by `spec`.

    `spec` is "queue=slots" pairs ("ingest=4,alerts=4,shopify=2"; queues joined by "+"
    share their slots: "alerts+shopify=4"), or one number for every queue alike. Given
    `queues`, only those get slots; otherwise every queue of QUEUES must have some, and
    a queue the spec adds gets its own. Raise ValueError on a malformed spec.
    """
    wanted = queues or QUEUES
    spec = spec.strip()
    if spec.isdigit():
        groups = {(queue,): int(spec) for queue in wanted}
    else:
        groups = {}
        for part in filter(None, (part.strip() for part in spec.split(","))):
            names, _, slots = part.partition("=")
            group = tuple(name.strip() for name in names.split("+") if name.strip())
            if not group or not slots.strip().isdigit():
                raise ValueError(f"{part!r} is not queue=slots")
            groups[group] = int(slots)
        missing = set(wanted) - {queue for group in groups for queue in group}
        if missing:
            raise ValueError(f"no slots for queue(s) {', '.join(sorted(missing))}")
    slots = {
        tuple(queue for queue in group if queue in wanted or not queues): count for group, count in groups.items()
    }
    slots = {group: count for group, count in slots.items() if group}
    if any(count < 1 for count in slots.values()):
        raise ValueError("every queue needs at least one slot")
    return slots


def run(*, slots: dict[tuple[str, ...], int]) -> None:
    """Run one worker per group of queues, each with its slots, until stopped (SIGINT or SIGTERM)."""

    async def work() -> None:
        # Sync jobs run in the loop's default thread pool: room for every slot, and some
        # for the loop's own work there (host name lookups when a connection opens).
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=sum(slots.values()) + 4, thread_name_prefix="job")
        )
        with app.replace_connector(WorkerConnector(kwargs=connector_params())) as worker_app:
            async with worker_app.open_async():
                workers = [
                    asyncio.create_task(
                        worker_app.run_worker_async(
                            queues=list(group), concurrency=count, name="+".join(group), install_signal_handlers=False,
                        ),
                        name=f"worker {'+'.join(group)}",
                    )
                    for group, count in slots.items()
                ]
                drain = drainer.start() if settings.WORKER_DRAINER and any(DRAIN_QUEUE in group for group in slots) else None

                stopping = False

                def stop() -> None:
                    # Once: procrastinate finishes the running jobs on a first cancel, and
                    # aborts them on a second.
                    nonlocal stopping
                    if not stopping:
                        stopping = True
                        if drain:
                            drain.stop()
                        for task in workers:
                            task.cancel()

                with signals.on_stop(stop):
                    # One group stopping (its LISTEN or heartbeat failed for good) stops them all.
                    await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
                    stop()
                    results = await asyncio.gather(*workers, return_exceptions=True)
                    if drain:
                        # The drainer finishes its batch and hands its lanes back.
                        await asyncio.to_thread(drain.thread.join)
                for result in results:
                    if isinstance(result, Exception):
                        raise result

    asyncio.run(work())
