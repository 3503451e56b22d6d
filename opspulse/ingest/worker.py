"""The background worker: procrastinate, woken by PostgreSQL's NOTIFY, that rides
through a database restart.

procrastinate's trigger sends a NOTIFY for every job deferred, and a listening worker
takes the job at once; without one it only finds jobs when it polls. procrastinate
stops a worker whose LISTEN connection cannot be re-opened, so this connector keeps
trying, with backoff, for as long as the database is away. Meanwhile, and for jobs
whose lock frees while no NOTIFY comes, the worker also polls every WORKER_POLL_MS.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

from procrastinate import connector, exceptions
from procrastinate.contrib.django import app
from procrastinate.contrib.django.utils import connector_params
from procrastinate.psycopg_connector import PsycopgConnector

logger = logging.getLogger("opspulse.ingest")

QUEUES = ["ingest", "shopify", "alerts", "maintenance"]


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


def run(*, concurrency: int, queues: list[str] | None = None) -> None:
    """Run a worker on `queues` until it is stopped (SIGINT or SIGTERM)."""

    async def work() -> None:
        with app.replace_connector(WorkerConnector(kwargs=connector_params())) as worker_app:
            async with worker_app.open_async():
                await worker_app.run_worker_async(queues=queues or QUEUES, concurrency=concurrency)

    asyncio.run(work())
