"""ASGI entry point: webhook ingest, then Django over HTTP, then live dashboards over WebSocket.

The ingest route sits in front of Django on purpose: it is the hot path and pays for
neither the middleware stack nor the ORM (see opspulse.ingest.endpoint).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from opspulse.ingest.endpoint import IngestApp  # noqa: E402
from opspulse.live.routing import websocket_urlpatterns  # noqa: E402

application = IngestApp(
    ProtocolTypeRouter(
        {
            "http": django_http,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
