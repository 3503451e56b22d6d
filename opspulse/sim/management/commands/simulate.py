from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from opspulse.sim.demo import ensure_demo_data
from opspulse.sim.simulator import StoreTarget, run


class Command(BaseCommand):
    help = "Send signed Shopify and WooCommerce webhooks for the demo stores to a running server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
        parser.add_argument("--stores", type=int, default=4, help="number of demo stores")
        parser.add_argument(
            "--rate", type=float, default=10.0, help="webhooks per second, all stores together"
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
        if verbose:
            self.stdout.write(
                f"Sending {options['rate']:g} webhooks/s to {options['url']} for {len(targets)} stores "
                + (f"for {duration:g}s" if duration else "until interrupted")
            )
        asyncio.run(
            run(
                targets,
                url=options["url"],
                rate=options["rate"],
                duration=duration,
                seed=options["seed"],
                concurrency=options["concurrency"],
                report=self.stdout.write if verbose else lambda summary: None,
                handle_signals=True,
            )
        )
