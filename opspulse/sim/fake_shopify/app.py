"""The fake Shopify as an ASGI app, and a way to run it in a thread for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from opspulse.sim.fake_shopify import admin_api, control, oauth
from opspulse.sim.fake_shopify.bulk import BulkRunner
from opspulse.sim.fake_shopify.services import Services
from opspulse.sim.fake_shopify.state import AppSettings, FakeShopify
from opspulse.sim.fake_shopify.webhooks import WebhookSender

SHOP = "/shops/{shop}"
FAKE = "/_fake"


def create_app(
    settings: AppSettings,
    *,
    webhook_retries: int = 3,
    webhook_retry_delay: float = 0.2,
    bulk_step_delay: float = 0.05,
) -> Starlette:
    """Return the Starlette app serving one app's view of many fake shops."""
    world = FakeShopify(settings)
    svc = Services(
        world=world,
        webhooks=WebhookSender(world, retries=webhook_retries, retry_delay=webhook_retry_delay),
        bulk=BulkRunner(world, step_delay=bulk_step_delay),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await svc.webhooks.close()

    routes = [
        Route(f"{SHOP}/admin/oauth/authorize", oauth.authorize, methods=["GET", "POST"]),
        Route(f"{SHOP}/admin/oauth/access_token", oauth.access_token, methods=["POST"]),
        Route(f"{SHOP}/admin/api/{{version}}/graphql.json", admin_api.graphql, methods=["POST"]),
        Route(f"{FAKE}/shops", control.list_shops, methods=["GET"]),
        Route(f"{FAKE}/shops", control.create_shop, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}", control.get_shop, methods=["GET"]),
        Route(f"{FAKE}/shops/{{shop}}/orders", control.place_order, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/orders/{{order_id:int}}", control.update_order, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/orders/{{order_id:int}}/cancel", control.cancel_order, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/inventory", control.set_inventory, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/products", control.create_product, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/carts", control.create_cart, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/uninstall", control.uninstall, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/redact", control.redact_shop, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/customers/redact", control.redact_customer, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/customers/data_request", control.request_customer_data, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/grant", control.narrow_grant, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/tokens/expire", control.expire_tokens, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/tokens/refresh-failures", control.fail_refreshes, methods=["POST"]),
        Route(f"{FAKE}/shops/{{shop}}/calls", control.calls, methods=["GET"]),
        Route(f"{FAKE}/shops/{{shop}}/launch", control.launch, methods=["GET"]),
        Route(f"{FAKE}/clock/advance", control.advance_clock, methods=["POST"]),
        Route(f"{FAKE}/webhooks/deliveries", control.deliveries, methods=["GET"]),
        Route(f"{FAKE}/webhooks/flush", control.flush, methods=["POST"]),
        Route(f"{FAKE}/app/webhooks", control.app_webhooks, methods=["GET", "PUT"]),
        Route(f"{FAKE}/bulk/delay", control.bulk_delay, methods=["PUT"]),
        Route(f"{FAKE}/bulk/{{operation_id:int}}.jsonl", control.bulk_file, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = svc
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread.

    Use as a context manager; `url` is the base URL without a trailing slash.
    """

    def __init__(self, app: Starlette, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            threading.Event().wait(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
