"""A team change closes the affected dashboards at once, not at their next periodic check."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from config.asgi import application
from opspulse.accounts import actions
from opspulse.accounts.models import Membership, Role
from opspulse.live.access import AccessWatch, watch
from tests.factories import AccountFactory, MembershipFactory, StoreFactory, UserFactory
from tests.support.live import socket_headers
from tests.support.processes import redis_answers
from tests.support.websocket import WebsocketClient

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


def _make_team() -> dict:
    """alice owns Apparel, where bob is a member; bob also owns Bikes. A store in each."""
    apparel, bikes = AccountFactory(name="Apparel"), AccountFactory(name="Bikes")
    alice, bob = UserFactory(email="alice@example.com"), UserFactory(email="bob@example.com")
    MembershipFactory(account=apparel, user=alice, role=Role.OWNER)
    MembershipFactory(account=apparel, user=bob, role=Role.MEMBER)
    MembershipFactory(account=bikes, user=bob, role=Role.OWNER)
    client = Client()
    client.force_login(bob)
    return {
        "alice": alice, "bob": bob, "apparel": apparel, "bikes": bikes, "bob_client": client,
        "apparel_store": StoreFactory(account=apparel), "bikes_store": StoreFactory(account=bikes),
    }


@pytest.fixture
async def team():
    return await database_sync_to_async(_make_team)()


async def open_dashboard(store, client) -> WebsocketClient:
    socket_ = WebsocketClient(application, f"/ws/stores/{store.public_id}/", socket_headers(client))
    connected, _ = await socket_.connect()
    assert connected
    await socket_.receive_text()  # every panel, on connect
    return socket_


def _bobs_apparel_membership(team) -> Membership:
    return Membership.objects.select_related("account", "user").get(user=team["bob"], account=team["apparel"])


@database_sync_to_async
def remove_bob(team) -> None:
    actions.remove_member(membership=_bobs_apparel_membership(team), actor=team["alice"])


async def assert_closes_at_once(socket_: WebsocketClient) -> None:
    # The periodic check comes 15 to 30 s after a dashboard joins; this is well before.
    assert AccessWatch.period_seconds >= 30
    assert await socket_.receive_close_code(timeout=5) == 4403


async def test_removed_members_dashboard_closes_at_once_while_their_other_accounts_stays_open(team, live_listener):
    removed = await open_dashboard(team["apparel_store"], team["bob_client"])
    kept = await open_dashboard(team["bikes_store"], team["bob_client"])

    await remove_bob(team)

    await assert_closes_at_once(removed)
    await assert_stays_open(kept)
    assert len(watch().by_user.get(team["bob"].pk, ())) == 1
    await kept.disconnect()


async def test_leaving_closes_the_members_dashboards_of_that_account_at_once(team, live_listener):
    dashboard = await open_dashboard(team["apparel_store"], team["bob_client"])

    await database_sync_to_async(actions.leave_account)(account=team["apparel"], user=team["bob"])

    await assert_closes_at_once(dashboard)


async def test_deleting_the_account_closes_its_dashboards_at_once(team, live_listener):
    dashboard = await open_dashboard(team["bikes_store"], team["bob_client"])

    await database_sync_to_async(actions.delete_account)(account=team["bikes"], actor=team["bob"])

    await assert_closes_at_once(dashboard)


async def test_a_role_change_keeps_the_dashboard_open(team, live_listener):
    dashboard = await open_dashboard(team["apparel_store"], team["bob_client"])

    await database_sync_to_async(actions.change_role)(
        membership=await database_sync_to_async(_bobs_apparel_membership)(team), role=Role.ADMIN, actor=team["alice"]
    )

    await assert_stays_open(dashboard)
    await dashboard.disconnect()


async def assert_stays_open(dashboard, seconds: float = 0.5) -> None:
    """No close within `seconds` (a panel refresh may arrive meanwhile; it is not a close)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        if await dashboard.receive_nothing(timeout=left):
            return
        output = await dashboard.receive_output(timeout=1)  # there is one: take it
        assert output["type"] != "websocket.close", output


async def test_other_users_dashboards_are_not_rechecked(team, live_listener, monkeypatch):
    alice_client = await sync_to_async(_signed_in)(team["alice"])
    alices = await open_dashboard(team["apparel_store"], alice_client)
    checked: list[list[int]] = []
    original = watch()._close_ended

    async def spy(dashboards):
        checked.append([d.user_id for d in dashboards])
        await original(dashboards)

    monkeypatch.setattr(watch(), "_close_ended", spy)
    bobs = await open_dashboard(team["apparel_store"], team["bob_client"])

    await remove_bob(team)

    await assert_closes_at_once(bobs)
    assert checked == [[team["bob"].pk]]
    await assert_stays_open(alices, 0.3)
    await alices.disconnect()


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
async def redis_transport(settings):
    if not redis_answers(settings.REDIS_URL):
        pytest.skip(f"no Redis answers at REDIS_URL ({settings.REDIS_URL}): the Redis transport is not tested")
    settings.LIVE_TRANSPORT = "redis"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A prefix of its own: other test runs may share the Redis server.
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"opspulse-test-{uuid.uuid4().hex[:8]}"},
        }
    }
    yield
    layer = get_channel_layer()
    await layer.flush()
    await layer.close_pools()


async def test_removed_members_dashboard_closes_at_once_with_the_redis_transport(team, redis_transport):
    removed = await open_dashboard(team["apparel_store"], team["bob_client"])
    kept = await open_dashboard(team["bikes_store"], team["bob_client"])

    await remove_bob(team)

    await assert_closes_at_once(removed)
    await assert_stays_open(kept)
    await kept.disconnect()
