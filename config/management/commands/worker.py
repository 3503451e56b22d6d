from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config import worker


class Command(BaseCommand):
    help = "Run a background worker: processes webhook deliveries and periodic jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", default=None,
            help='slots per queue, e.g. "ingest=4,alerts=4,shopify=2", or one number for each queue'
            " (default: WORKER_CONCURRENCY)",
        )
        parser.add_argument("--queues", default=",".join(worker.QUEUES), help="comma-separated queues to take jobs from")

    def handle(self, *args: Any, concurrency: str | None, queues: str, **options: Any) -> None:
        try:
            slots = worker.parse_concurrency(
                concurrency or settings.WORKER_CONCURRENCY, [queue for queue in queues.split(",") if queue]
            )
        except ValueError as exc:
            raise CommandError(f"--concurrency: {exc}") from None
        worker.run(slots=slots)
