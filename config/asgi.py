"""ASGI entry point: webhook ingest, then Django over HTTP, then live dashboards over WebSocket.

The ingest route sits in front of Django on purpose: it is the hot path and pays for
neither the middleware stack nor the ORM (see opspulse.ingest.endpoint). The process's
lifespan opens the ingest's connection pool and starts the live transport's receiving
side (opspulse.live.transports: with PostgreSQL, the process's LISTEN connection).
"""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from opspulse.ingest.endpoint import IngestApp  # noqa: E402
from opspulse.live.routing import websocket_urlpatterns  # noqa: E402
from opspulse.live.transports import transport  # noqa: E402

ingest = IngestApp(
    ProtocolTypeRouter(
        {
            "http": django_http,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)


async def application(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await ingest(scope, receive, send)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await ingest.open_pool()
            await transport().start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await transport().stop()
            await ingest.close_pool()
            await send({"type": "lifespan.shutdown.complete"})
            return
