from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from opspulse.sim.demo import DEMO_ACCOUNT_NAME, DEMO_EMAIL, DEMO_PASSWORD, ensure_demo_data
from opspulse.stores.models import Platform


class Command(BaseCommand):
    help = "Create the demo login, account and stores (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stores", type=int, default=4, help="number of demo stores")

    def handle(self, *args: Any, stores: int, **options: Any) -> None:
        if stores < 1:
            self.stderr.write("--stores must be at least 1")
            return
        for store in ensure_demo_data(stores=stores):
            if store.platform == Platform.SHOPIFY:
                delivery = "/webhooks/shopify"
            else:
                delivery = f"/webhooks/woocommerce/{store.ingest_token}"
            platform = store.get_platform_display()
            self.stdout.write(f"  {platform:<11} {store.name:<26} {store.domain:<28} {delivery}")
        self.stdout.write(
            self.style.SUCCESS(f"{DEMO_ACCOUNT_NAME}: log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        )
