"""The dashboard ceiling: a bare ASGI WebSocket broadcast app, nothing else.

Served by uvicorn with the same options as OpsPulse (`uvicorn bare_ws:app --app-dir
bench --workers 1`) and driven by the same clients (bench/wsclients.py) and sender
(bench/loadgen.py), it shows what the server, the WebSocket protocol (with
permessage-deflate, as negotiated with the clients) and the loopback cost per socket
on their own.

- `GET /ws/stores/<id>/` (WebSocket): accepted at once, answered with one frame (the
  "full render"), then held, registered under <id>.
- `POST /publish/<id>/` with the order number ("#N") as the body: answered 200, then
  one frame containing `data-order-number="#N"` is sent to every socket of <id>.
- Any other HTTP request: 200 (readiness checks).

Frames are HTML-like text of BARE_WS_FRAME_BYTES bytes (default 4000, about what an
OpsPulse update carries), varied per order so that compression has work to do.
"""

from __future__ import annotations

import os
from typing import Any

from support.asgi import Receive, Send, accept, lifespan, read_body

FRAME_BYTES = int(os.environ.get("BARE_WS_FRAME_BYTES", "4000"))

subscribers: dict[str, set[Send]] = {}


def frame(number: str) -> str:
    head = f'<tr id="order-{number[1:]}" data-order-number="{number}"><td>{number}</td></tr>'
    rows = []
    size = len(head)
    n = 0
    while size < FRAME_BYTES:
        row = (f'<tr class="row-{n % 7}"><td>{number}-{n}</td><td>{(n * 7919) % 100003}</td>'
               f'<td>item {n * 31 % 97}</td></tr>')
        rows.append(row)
        size += len(row)
        n += 1
    return (head + "".join(rows))[:max(FRAME_BYTES, len(head))]


def store_of(path: str, prefix: str) -> str | None:
    if not path.startswith(prefix):
        return None
    return path[len(prefix):].strip("/") or None


async def websocket(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    store = store_of(scope["path"], "/ws/stores/")
    message = await receive()
    if message["type"] != "websocket.connect" or store is None:
        await send({"type": "websocket.close", "code": 4404})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": frame("#0")})
    members = subscribers.setdefault(store, set())
    members.add(send)
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        members.discard(send)


async def http(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    if body is None:
        return
    await accept(send)
    store = store_of(scope["path"], "/publish/")
    if scope["method"] == "POST" and store is not None:
        text = frame(body.decode().strip())
        for member in list(subscribers.get(store, ())):
            try:
                await member({"type": "websocket.send", "text": text})
            except Exception:  # noqa: BLE001 - a socket closing under us
                subscribers.get(store, set()).discard(member)


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
