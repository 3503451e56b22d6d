from __future__ import annotations

from typing import Any

import uvicorn
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opspulse.sim.fake_shopify.app import create_app
from opspulse.sim.fake_shopify.state import AppSettings


class Command(BaseCommand):
    help = "Serve a fake Shopify (OAuth, GraphQL Admin API, webhooks, bulk) for one app."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8701)
        parser.add_argument("--client-id", required=True, help="the app's client id")
        parser.add_argument("--client-secret", required=True, help="signs callbacks and webhooks")
        parser.add_argument(
            "--redirect-prefix",
            required=True,
            help="allowed redirect_uri prefix, e.g. http://127.0.0.1:8000/",
        )
        parser.add_argument(
            "--token-lifetime", type=int, default=3600, help="access token lifetime in seconds"
        )
        parser.add_argument(
            "--webhook-retries", type=int, default=3, help="retries after a failed delivery"
        )
        parser.add_argument(
            "--webhook-retry-delay",
            type=float,
            default=0.5,
            help="seconds before the first retry; doubles each time",
        )
        parser.add_argument(
            "--app-webhook",
            action="append",
            default=[],
            metavar="TOPIC=URI",
            help="an app-level subscription, e.g. customers/redact=http://127.0.0.1:8000/…",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["token_lifetime"] < 1 or options["webhook_retries"] < 0:
            raise CommandError("--token-lifetime must be positive, --webhook-retries not negative")
        subscriptions: dict[str, list[str]] = {}
        for entry in options["app_webhook"]:
            topic, _, uri = entry.partition("=")
            if not topic or not uri:
                raise CommandError(f"--app-webhook wants TOPIC=URI, got {entry!r}")
            subscriptions.setdefault(topic, []).append(uri)
        settings = AppSettings(
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            redirect_prefix=options["redirect_prefix"],
            access_token_lifetime=options["token_lifetime"],
            app_subscriptions=subscriptions,
        )
        app = create_app(
            settings,
            webhook_retries=options["webhook_retries"],
            webhook_retry_delay=options["webhook_retry_delay"],
        )
        self.stdout.write(f"Fake Shopify on http://{options['host']}:{options['port']}/shops/{{shop}}")
        uvicorn.run(app, host=options["host"], port=options["port"], log_level="warning")
