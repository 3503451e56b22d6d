from __future__ import annotations

import random
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from opspulse.accounts.models import User
from opspulse.sim.demo import DEMO_ACCOUNT_NAME, DEMO_EMAIL, DEMO_PASSWORD, ensure_demo_data
from opspulse.sim.history import backfill_history
from opspulse.stores.models import Platform

# Today and the two weeks before it: the daily chart's 7-day range and "same weekday
# last week" have a whole earlier period to compare with (longer ranges say there is not
# enough history yet, as for a store connected two weeks ago).
HISTORY_DAYS = 15


class Command(BaseCommand):
    help = (
        "Create the demo login, account and stores, with orders of the last two weeks "
        "(safe to run again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stores", type=int, default=4, help="number of demo stores")
        parser.add_argument(
            "--days", type=int, default=HISTORY_DAYS, help="days of past orders, today included"
        )
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="skip creating orders for the past days and earlier today",
        )

    def handle(self, *args: Any, stores: int, days: int, no_history: bool, **options: Any) -> None:
        if stores < 1 or days < 1:
            self.stderr.write("--stores and --days must be at least 1")
            return
        now = timezone.now()
        rng = random.Random()
        demo_stores = ensure_demo_data(stores=stores)
        # Whoever runs the demo is its operator too: the admin link it prints takes the same login.
        User.objects.filter(email=DEMO_EMAIL).update(is_staff=True, is_superuser=True)
        for store in demo_stores:
            if store.platform == Platform.SHOPIFY:
                delivery = "/webhooks/shopify"
            else:
                delivery = f"/webhooks/woocommerce/{store.ingest_token}"
            platform = store.get_platform_display()
            self.stdout.write(f"  {platform:<11} {store.name:<26} {store.domain:<28} {delivery}")
            if no_history:
                continue
            started = time.monotonic()
            created = backfill_history(store, now=now, rng=rng, days=days)
            if created:
                elapsed = time.monotonic() - started
                self.stdout.write(f"{'':14}backfilled {created} orders in {elapsed:.1f}s")
            else:
                self.stdout.write(f"{'':14}already has history, left as is")
        self.stdout.write(
            self.style.SUCCESS(f"{DEMO_ACCOUNT_NAME}: log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        )
