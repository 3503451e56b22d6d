"""The plain-ASGI pieces of the ceiling apps (bare_asgi.py, bare_ws.py): lifespan, body, a 200."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

BODY = b'{"status": "accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, *, keep: bool = True) -> bytes | None:
    """Return the request's body (b"" unless `keep`), or None if the client went away first."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if keep:
            body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def accept(send: Send) -> None:
    """Answer 200 with OpsPulse's ingest body."""
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
