"""What the request handlers share: the world and the background workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from opspulse.sim.fake_shopify.bulk import BulkRunner
from opspulse.sim.fake_shopify.state import FakeShopify
from opspulse.sim.fake_shopify.webhooks import WebhookSender


@dataclass
class Services:
    world: FakeShopify
    webhooks: WebhookSender
    bulk: BulkRunner


def services(request: Request) -> Services:
    return request.app.state.services


async def request_params(request: Request) -> dict[str, Any]:
    """Return a request's parameters from its JSON or form body, else its query string."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and content_type.startswith("application/json"):
        try:
            decoded = (await request.json()) or {}
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    return dict(request.query_params)
