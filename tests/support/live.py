"""Dashboard, overview and wallboard sockets on the ASGI application, and what they are sent."""

from __future__ import annotations

import asyncio
import json
import select
import time
from decimal import Decimal

import psycopg
from django.test import Client
from django.utils import timezone

from config.asgi import application
from opspulse.commerce.actions import LineItemData, OrderData
from opspulse.commerce.models import OrderStatus
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
