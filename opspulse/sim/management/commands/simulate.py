from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opspulse.sim.demo import ensure_demo_data
from opspulse.sim.history import expected_order_rate
from opspulse.sim.simulator import StoreTarget, run


def history_pace(targets: list[StoreTarget]) -> Callable[[datetime], list[float]]:
    """Each store's orders per second at a moment, as its seeded history has them."""

    def pace(at: datetime) -> list[float]:
        return [expected_order_rate(target.domain, target.timezone, at) / 3600 for target in targets]

    return pace


class Command(BaseCommand):
    help = "Send signed Shopify and WooCommerce webhooks for the demo stores to a running server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
        parser.add_argument("--stores", type=int, default=4, help="number of demo stores")
        parser.add_argument(
            "--rate", type=float, default=10.0, help="webhooks per second, all stores together"
        )
        parser.add_argument(
            "--pace-of-history",
            action="store_true",
            help="instead of --rate: each store's orders at the pace of its demo history at this hour",
        )
        parser.add_argument(
            "--duration", type=float, default=60.0, help="seconds to run; 0 runs until interrupted"
        )
        parser.add_argument("--seed", type=int, default=None, help="seed for repeatable traffic")
        parser.add_argument(
            "--concurrency", type=int, default=16, help="maximum requests in flight"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stores"] < 1 or options["rate"] <= 0 or options["duration"] < 0:
            raise CommandError("--stores and --rate must be positive, --duration not negative")
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        # One INFO line per request would drown the periodic summary.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        stores = ensure_demo_data(stores=options["stores"])
        targets = [StoreTarget.from_store(store) for store in stores]
        duration = options["duration"]
        # With --verbosity 0 (`make demo`) the run is silent: the server logs what goes wrong.
        verbose = options["verbosity"] > 0
        pace = history_pace(targets) if options["pace_of_history"] else None
        if verbose:
            self.stdout.write(
                ("Sending orders at the pace of the stores' history" if pace else f"Sending {options['rate']:g} webhooks/s")
                + f" to {options['url']} for {len(targets)} stores "
                + (f"for {duration:g}s" if duration else "until interrupted")
            )
        asyncio.run(
            run(
                targets,
                url=options["url"],
                rate=options["rate"],
                pace=pace,
                duration=duration,
                seed=options["seed"],
                concurrency=options["concurrency"],
                report=self.stdout.write if verbose else lambda summary: None,
                handle_signals=True,
            )
        )
