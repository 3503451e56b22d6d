"""Outbound HTTP: one overall deadline per call, a cap on what is read, and an SSRF guard.

Every socket operation of a call (connect, TLS handshake, each write and read) waits
at most until the call's deadline, so a receiver that answers one byte at a time
cannot hold a worker for longer than the deadline. A reply is read up to a cap and no
further.

Guarded calls (alert receivers, whose URLs merchants choose) reach public addresses on
the standard ports only: the host is resolved once at connect time, every address it
resolves to must be public, and the connection goes to the address that was checked,
so a name that turns internal after the check (DNS rebinding) leads nowhere. The Host
header and the TLS server name stay the URL's own. Redirects are never followed.
`OUTBOUND_ALLOW_PRIVATE_ADDRESSES` turns the guard off (development and tests only).
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import json
import socket
import ssl
import time
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

REPLY_LIMIT_BYTES = 64 * 1024

# Networks that carry an IPv4 address inside an IPv6 one; the IPv4 address decides.
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Not public whatever Python's `is_global` says on this version.
NOT_PUBLIC = (
    ipaddress.IPv4Network("0.0.0.0/8"),
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv4Network("192.88.99.0/24"),
    ipaddress.IPv4Network("198.18.0.0/15"),
    ipaddress.IPv4Network("224.0.0.0/3"),
    ipaddress.IPv6Network("fec0::/10"),
    ipaddress.IPv6Network("2001::/32"),  # Teredo: the IPv4 address inside is obfuscated
    ipaddress.IPv6Network("ff00::/8"),
)

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("outbound_deadline", default=None)


class BlockedAddress(Exception):
    """The URL leads somewhere outbound calls may not go (a private address, another port…)."""


class ReplyTooLarge(httpx.HTTPError):
    """The reply is longer than the call reads."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"reply longer than {limit} bytes")


class DeadlineExceeded(httpx.TimeoutException):
    """The call did not finish within its overall deadline."""


def guard_on() -> bool:
    return not settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES


# The guard.


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is on the public internet (an IPv4 address inside IPv6 decides for it)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.scope_id is not None:
            return False
    if any(address in network for network in NOT_PUBLIC if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in SIX_TO_FOUR:
        return address.sixtofour
    if any(address in network for network in NAT64) or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def allowed_ports(scheme: str) -> set[int]:
    """The ports a guarded call may use: 443, and 80 outside production."""
    if scheme == "https":
        return {443}
    return set() if settings.PRODUCTION else {80}


def check_url(url: str) -> None:
    """Raise BlockedAddress unless `url` may be called (resolving its host when the guard is on)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise BlockedAddress("the URL's port is not a number") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddress("only http and https URLs can be called")
    if not guard_on():
        return
    port = port or (443 if parts.scheme == "https" else 80)
    if port not in allowed_ports(parts.scheme):
        raise BlockedAddress("only https on port 443 can be called" if settings.PRODUCTION
                             else "only ports 443 (https) and 80 (http) can be called")
    resolve(parts.hostname, port)


def resolve(host: str, port: int) -> list[str]:
    """Return the public addresses `host` resolves to, or raise BlockedAddress.

    A host written as a number in any form other than the usual dotted quad
    (2130706433, 0177.0.0.1, 0x7f.1) is refused before it is resolved.
    """
    host = host.strip("[]")
    if _odd_ipv4_spelling(host):
        raise BlockedAddress(f"{host} is not a public address")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedAddress(f"{host} does not resolve") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(is_public(ipaddress.ip_address(address)) for address in addresses):
        raise BlockedAddress(f"{host} is not a public address")
    return addresses


def _odd_ipv4_spelling(host: str) -> bool:
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return False
    return socket.inet_ntoa(packed) != host


# The deadline (and the guard, at connect time) in httpcore's network layer.


def _remaining(timeout: float | None) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("deadline exceeded")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, _remaining(timeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self.stream.get_extra_info(info)


class _OutboundBackend(httpcore.NetworkBackend):
    def __init__(self, *, guarded: bool) -> None:
        self.backend = httpcore.SyncBackend()
        self.guarded = guarded

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.guarded and guard_on():
            # Connect to the address that was checked, never to a second lookup's answer.
            host = resolve(host, port)[0]
        stream = self.backend.connect_tcp(
            host, port, timeout=_remaining(timeout), local_address=local_address, socket_options=socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("outbound calls use TCP only")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _OutboundTransport(httpx.HTTPTransport):
    def __init__(self, *, guarded: bool) -> None:
        super().__init__()
        # httpx builds the connection pool; its connections go through our network layer.
        self._pool._network_backend = _OutboundBackend(guarded=guarded)


def client(*, guarded: bool = True, timeout: float | httpx.Timeout = 30.0) -> httpx.Client:
    """An httpx client whose calls through `send` keep to their deadline (and to the guard).

    Proxies from the environment are ignored: the guard checks the address it connects to.
    """
    return httpx.Client(
        transport=_OutboundTransport(guarded=guarded), timeout=timeout, trust_env=False, follow_redirects=False,
        # A compressed reply could unpack to far more than the limit in one read.
        headers={"Accept-Encoding": "identity"} if guarded else None,
    )


@dataclass(frozen=True)
class Reply:
    """An answer read whole (up to the call's limit)."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> typing.Any:
        return json.loads(self.content)


@contextlib.contextmanager
def deadline_of(seconds: float) -> Iterator[None]:
    """Make every socket operation of `client()` calls in the block end within `seconds`."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def send(
    http: httpx.Client, method: str, url: str, *, deadline: float, limit: int = REPLY_LIMIT_BYTES,
    **kwargs: typing.Any,
) -> Reply:
    """Make one call with `http` and read its reply, all within `deadline` seconds.

    Raise DeadlineExceeded when the deadline passes, ReplyTooLarge when the reply is
    longer than `limit` bytes (it is not read further), BlockedAddress when the guard
    refuses the address, httpx.HTTPError for the rest.
    """
    started = time.monotonic()
    try:
        with deadline_of(deadline), http.stream(method, url, **kwargs) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ReplyTooLarge(limit)
                chunks.append(chunk)
                if time.monotonic() - started > deadline:
                    raise DeadlineExceeded("deadline exceeded")
            return Reply(status_code=response.status_code, headers=response.headers, content=b"".join(chunks))
    except httpx.TimeoutException as exc:
        # A socket wait cut short to the deadline ends a hair before or after it.
        if not isinstance(exc, DeadlineExceeded) and time.monotonic() - started >= deadline - 0.05:
            raise DeadlineExceeded("deadline exceeded") from exc
        raise
