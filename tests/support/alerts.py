"""Alert receivers on 127.0.0.1, and the orders and channels that make alerts reach them."""

from __future__ import annotations

import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import sleep

from django.utils import timezone

from opspulse.alerts import actions as alert_actions
from opspulse.alerts.models import ChannelDelivery
from opspulse.commerce import actions


class Receiver:
    """A webhook receiver on 127.0.0.1 answering with the given statuses in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawReceiver:
    """A receiver on 127.0.0.1 that answers 200 either one byte at a time (`drip_seconds`
    apart, for ever) or with a `body_bytes` long body sent as fast as it is read."""

    def __init__(self, *, drip_seconds: float | None = None, body_bytes: int = 0) -> None:
        self.drip_seconds, self.body_bytes = drip_seconds, body_bytes
        self.sent_bytes = 0
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.closed = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if self.drip_seconds is not None:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1_000_000:
                        if self.closed.is_set():
                            return
                        conn.sendall(bytes([byte]))
                        sleep(self.drip_seconds)
                    return
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.body_bytes}\r\n\r\n".encode())
                block = b"x" * 65536
                while self.sent_bytes < self.body_bytes and not self.closed.is_set():
                    conn.sendall(block)
                    self.sent_bytes += len(block)
            except OSError:
                pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()


def channel_delivery(store, event, *, url: str, kind: str = "webhook") -> ChannelDelivery:
    channel = alert_actions.create_channel(account=store.account, store=store, kind=kind, name="Ops", url=url)
    deliveries, _ = alert_actions.dispatch_event(event.pk)
    return ChannelDelivery.objects.get(pk__in=deliveries, channel=channel)


def big_order(external_id: str) -> actions.OrderData:
    now = timezone.now()
    return actions.OrderData(external_id=external_id, number=f"#{external_id}", status="paid", currency="USD",
                             total=Decimal("900.00"), placed_at=now, updated_at=now)
