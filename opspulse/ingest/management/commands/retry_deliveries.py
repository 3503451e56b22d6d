from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_duration

from opspulse.ingest import actions, selectors
from opspulse.stores.models import Store


def failed_since(value: str) -> datetime:
    """Return the time `value` names: an ISO time ("2026-12-01T08:00Z", a date for its
    midnight UTC) or a duration back from now ("2 days, 0:00", "3600" seconds)."""
    try:
        moment = parse_datetime(value) or parse_datetime(f"{value}T00:00:00+00:00")
        duration = parse_duration(value)
    except ValueError:  # well-formed but impossible, e.g. a 13th month
        moment = duration = None
    if moment is not None:
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
    if duration is not None:
        return timezone.now() - duration
    raise CommandError(f"--since: {value!r} is neither a time nor a duration")


class Command(BaseCommand):
    help = "Queue failed webhook deliveries again, of one store or of every store; print how many."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--store", help="the store's public id")
        scope.add_argument("--all-stores", action="store_true", help="every store's failed deliveries")
        parser.add_argument("--id", type=int, action="append", dest="ids", help="only this delivery (repeatable)")
        parser.add_argument(
            "--since",
            help='only deliveries that failed since then: an ISO time, or a duration back from now ("1 day, 0:00")',
        )

    def handle(self, *args: Any, store: str | None, all_stores: bool, ids: list[int] | None, since: str | None,
               **options: Any) -> None:
        store_ids = None
        if store is not None:
            try:
                store_ids = [Store.objects.get(public_id=store).pk]
            except (Store.DoesNotExist, ValidationError) as exc:
                raise CommandError(f"no store with public id {store!r}") from exc
        eligible = selectors.retryable_deliveries()
        if store_ids is not None:
            eligible = eligible.filter(store_id__in=store_ids)
        failed = eligible.count()
        retried = actions.retry_failed_deliveries(
            store_ids=store_ids, delivery_ids=ids, failed_since=failed_since(since) if since else None
        )
        self.stdout.write(f"{retried} of {failed} failed deliveries queued again")
