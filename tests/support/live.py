"""Dashboard, overview and wallboard sockets on the ASGI application, and what they are sent."""

from __future__ import annotations

import asyncio
import json
import re
import select
import time
from decimal import Decimal
from html import unescape
from typing import Any

import psycopg
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from config.asgi import application
from opspulse.commerce.actions import LineItemData, OrderData
from opspulse.commerce.models import OrderStatus
from opspulse.live import frames
from tests.support.websocket import WebsocketClient


def socket_headers(client: Client | None = None, origin: bytes = b"http://testserver") -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"testserver"), (b"origin", origin)]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def dashboard_socket(store, headers) -> WebsocketClient:
    return WebsocketClient(application, f"/ws/stores/{store.public_id}/", headers)


def wallboard_socket(store, headers) -> WebsocketClient:
    return WebsocketClient(application, f"/ws/stores/{store.public_id}/wallboard/", headers)


def shared_socket(token: str) -> WebsocketClient:
    return WebsocketClient(application, f"/ws/wall/{token}/", socket_headers())


def overview_socket(headers) -> WebsocketClient:
    return WebsocketClient(application, "/ws/overview/", headers)


async def connect_and_read_panels(socket: WebsocketClient) -> str:
    connected, _ = await socket.connect()
    assert connected
    return await socket.receive_text()


async def refusal_code(socket: WebsocketClient) -> int | None:
    """Return the close code of a refused socket, whether refused at or after the handshake."""
    connected, code = await socket.connect()
    if connected:
        code = await socket.receive_close_code()
    return code


async def receive_until(socket: WebsocketClient, *needles: str, timeout: float = 5) -> str:
    """Every frame received until all `needles` were seen (in any of them)."""
    frames = ""
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(needle in frames for needle in needles):
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"never received {[n for n in needles if n not in frames]}"
        frames += await socket.receive_text(timeout=left)
    return frames


def new_order(number: int, total: str) -> OrderData:
    now = timezone.now()
    return OrderData(
        external_id=str(number), number=f"#{number}", status=OrderStatus.PAID, currency="USD", total=Decimal(total),
        placed_at=now, updated_at=now, customer_first_name="Ines", customer_city="Porto",
        line_items=[LineItemData(external_id=f"{number}-1", title="Mug", quantity=1, price=Decimal(total))],
    )


def notifications(conn: psycopg.Connection, timeout: float) -> list[dict]:
    """The live messages NOTIFYed to `conn` (which LISTENs) within `timeout` seconds."""
    received = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if select.select([conn.fileno()], [], [], remaining)[0]:
            received.extend(json.loads(n.payload) for n in conn.notifies(timeout=0, stop_after=100))
    return received



_OUT_OF_BAND = re.compile(r'<[a-z]+ id="([^"]+)" hx-swap-oob="([^"]+)"')


def _edited(value: str, edits: list[Any]) -> str:
    """`value` after a long attribute's edits ([start, end, text, …] in UTF-16 units)."""
    encoded = value.encode("utf-16-le")
    for index in range(len(edits) - 3, -1, -3):
        start, end, text = edits[index:index + 3]
        encoded = encoded[: 2 * start] + text.encode("utf-16-le") + encoded[2 * end:]
    return encoded.decode("utf-16-le")


def patched_html(fragment: str, ops: list[list[Any]]) -> str:
    """Apply a patch's ops to a panel's HTML, as the page applies them to its DOM
    (live-patch.js); the nodes are counted as opspulse.live.frames counts them."""
    texts = {op[0]: op[1] for op in ops if len(op) == 2}
    attributes: dict[int, dict[str, Any]] = {}
    for op in ops:
        if len(op) == 3:
            attributes.setdefault(op[0], {})[op[1]] = op[2]
    out = []
    node = 0
    position = 0
    for match in frames._TOKEN.finditer(fragment):
        text = fragment[position:match.start()]
        if text:
            out.append(escape(texts.pop(node)) if node in texts else text)
            node += 1
        position = match.end()
        token = match.group(0)
        if match.group(1) is not None and not token.startswith("<!--"):
            changes = attributes.pop(node, None)
            if changes:
                parts = [f"<{match.group(1)}"]
                for name, value in frames._attributes(match.group(2)):
                    if name in changes:
                        change = changes.pop(name)
                        value = _edited(value, change) if isinstance(change, list) else change
                    parts.append(f' {name}="{escape(value)}"')
                assert not changes, f"no attribute {changes} on node {node}"
                token = "".join(parts) + ("/>" if token.endswith("/>") else ">")
            node += 1
        out.append(token)
    tail = fragment[position:]
    if tail:
        out.append(escape(texts.pop(node)) if node in texts else tail)
    assert not texts and not attributes, f"ops for nodes the panel does not have: {texts} {attributes}"
    return "".join(out)


class LivePage:
    """The live panels of a page as its socket's frames leave them: whole panels as sent,
    patches applied once their digest matches, as the browser does (live-patch.js)."""

    def __init__(self) -> None:
        self.html: dict[str, str] = {}

    def apply(self, frame: str) -> set[str]:
        """Apply one frame; return the ids of the elements it sent whole or patched."""
        changed = set()
        if frame.startswith("{"):
            head, _, frame = frame.partition("\n")
            for element_id, (expected, ops) in json.loads(head)["patch"].items():
                assert element_id in self.html, f"a patch of {element_id}, which the page does not have"
                assert frames.shape(self.html[element_id]).digest == expected, (
                    f"a patch of {element_id} for another version of it")
                self.html[element_id] = patched_html(self.html[element_id], ops)
                changed.add(element_id)
        starts = [(m.start(), m.group(1), m.group(2)) for m in _OUT_OF_BAND.finditer(frame)]
        for index, (start, element_id, swap) in enumerate(starts):
            if swap == "morph":
                end = starts[index + 1][0] if index + 1 < len(starts) else len(frame)
                self.html[element_id] = frame[start:end]
                changed.add(element_id)
        return changed

    def text(self, element_id: str) -> str:
        """The element's text, whitespace collapsed."""
        return " ".join(unescape(re.sub(r"<[^>]*>", " ", self.html[element_id])).split())

    def attribute(self, element_id: str, name: str) -> str | None:
        """The value of `name` on the element itself."""
        root = frames.shape(self.html[element_id]).nodes[0]
        return dict(root.attributes).get(name)
