from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from opspulse.ingest import worker


class Command(BaseCommand):
    help = "Run a background worker: processes webhook deliveries and periodic jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=4, help="jobs run at the same time")
        parser.add_argument("--queues", default=",".join(worker.QUEUES), help="comma-separated queues to take jobs from")

    def handle(self, *args: Any, concurrency: int, queues: str, **options: Any) -> None:
        worker.run(concurrency=concurrency, queues=[queue for queue in queues.split(",") if queue])
