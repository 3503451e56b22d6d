"""Wallboard share links end: at their expiry, when their creator loses the right to make
them, and every making and revoking is in the account's audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from opspulse.accounts import actions as team
from opspulse.accounts.models import AuditEvent, AuditKind, Membership, Role
from opspulse.live import share
from opspulse.live.access import AccessWatch
from opspulse.live.consumers import HEARTBEAT
from opspulse.live.models import WallboardLink
from tests.factories import MembershipFactory, UserFactory
from tests.support.live import shared_socket
from tests.support.stores import client_for


def opens(token: str) -> int:
    return Client().get(reverse("shared-wallboard", args=[token])).status_code


def made_ago(link: WallboardLink, age: timedelta) -> None:
    """Move the clock forward by `age` for the link: it was made that long ago."""
    WallboardLink.objects.filter(pk=link.pk).update(
        created_at=link.created_at - age, expires_at=link.expires_at - age if link.expires_at else None
    )


@pytest.fixture
def admin(store, owner):
    return MembershipFactory(account=store.account, user=UserFactory(email="admin@example.com"), role=Role.ADMIN).user


def test_an_admin_chooses_when_a_link_expires_and_it_then_answers_404_like_a_revoked_one(store, owner_client):
    """A link pasted into a chat or left on a retired TV must not open the wallboard for ever."""
    url = reverse("wallboard-links", args=[store.public_id])
    created = owner_client.post(url, {"action": "create", "label": "Pop-up TV", "expires": "7d"}).content.decode()
    token = created.split("/wall/")[1].split("/")[0]
    link = WallboardLink.objects.get()
    assert link.expires_at - link.created_at == timedelta(days=7)
    assert opens(token) == 200

    made_ago(link, timedelta(days=7, seconds=1))

    assert opens(token) == 404
    listed = owner_client.get(url).content.decode()
    assert 'data-link-state="expired"' in listed and "Pop-up TV" in listed


def test_a_link_made_to_never_expire_keeps_working_until_revoked(store, owner_client):
    url = reverse("wallboard-links", args=[store.public_id])
    created = owner_client.post(url, {"action": "create", "expires": "never"}).content.decode()
    token = created.split("/wall/")[1].split("/")[0]

    made_ago(WallboardLink.objects.get(), timedelta(days=400))

    assert WallboardLink.objects.get().expires_at is None
    assert opens(token) == 200


def test_an_unknown_expiry_is_refused_with_a_message_and_makes_no_link(store, owner_client):
    response = owner_client.post(
        reverse("wallboard-links", args=[store.public_id]), {"action": "create", "expires": "forever"}
    )

    assert response.status_code == 400 and "Choose when the link expires." in response.content.decode()
    assert not WallboardLink.objects.exists()


@pytest.mark.parametrize("loss", ["removed", "demoted", "left"])
def test_a_link_stops_working_when_its_creator_loses_the_admin_role(store, owner, admin, loss):
    """An admin who is let go (or demoted) must not keep a way into the store's figures
    through the links they made; the links need no cleanup for that."""
    _, token = share.create_wallboard_link(store=store, created_by=admin, label="Admin's TV")
    _, owners_token = share.create_wallboard_link(store=store, created_by=owner)
    membership = Membership.objects.get(user=admin, account=store.account)
    assert opens(token) == 200

    if loss == "removed":
        team.remove_member(membership=membership, actor=owner)
    elif loss == "demoted":
        team.change_role(membership=membership, role=Role.MEMBER, actor=owner)
    else:
        team.leave_account(account=store.account, user=admin)

    assert opens(token) == 404
    assert opens(owners_token) == 200
    listed = client_for(owner).get(reverse("wallboard-links", args=[store.public_id])).content.decode()
    assert listed.count('data-link-state="stopped"') == 1


def test_a_link_works_again_when_its_creator_is_made_admin_again(store, owner, admin):
    _, token = share.create_wallboard_link(store=store, created_by=admin)
    membership = Membership.objects.get(user=admin, account=store.account)
    team.change_role(membership=membership, role=Role.MEMBER, actor=owner)
    assert opens(token) == 404

    team.change_role(membership=membership, role=Role.ADMIN, actor=owner)

    assert opens(token) == 200


def test_making_and_revoking_a_link_are_audited_without_its_token(store, owner, owner_client):
    url = reverse("wallboard-links", args=[store.public_id])
    created = owner_client.post(url, {"action": "create", "label": "Lobby", "expires": "30d"}).content.decode()
    token = created.split("/wall/")[1].split("/")[0]
    link = WallboardLink.objects.get()
    owner_client.post(url, {"action": "revoke", "link": str(link.public_id)})

    events = list(AuditEvent.objects.filter(account=store.account).order_by("pk"))

    assert [(event.kind, event.user) for event in events] == [
        (AuditKind.WALLBOARD_LINK_CREATED, owner), (AuditKind.WALLBOARD_LINK_REVOKED, owner)
    ]
    assert events[0].details == {
        "store": store.name, "store_id": str(store.public_id), "link_id": str(link.public_id), "label": "Lobby",
        "expires_at": link.expires_at.isoformat(),
    }
    assert all(token not in str(event.details) and link.token_hash not in str(event.details) for event in events)
    log = owner_client.get(reverse("account-audit")).content.decode()
    assert 'data-event="wallboard_link_created"' in log and 'data-event="wallboard_link_revoked"' in log
    assert token not in log


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_open_shared_wallboard_closes_when_its_link_expires(store, owner, live_listener):
    """A screen that stays connected must not outlive its link: it closes at the expiry,
    without waiting for a reconnect."""
    _, token = await sync_to_async(share.create_wallboard_link)(
        store=store, created_by=owner, lifetime=timedelta(seconds=1)
    )
    socket = shared_socket(token)
    assert (await socket.connect())[0]
    await socket.receive_text()

    assert await socket.receive_close_code(timeout=3) == 4404
    assert await sync_to_async(opens)(token) == 404


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_open_shared_wallboard_closes_at_once_when_its_creator_is_removed(store, owner, admin, live_listener):
    """The TV an admin set up before being let go goes dark when they are removed, not
    at its next reconnect."""
    _, token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=admin)
    _, owners_token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=owner)
    admins_screen, owners_screen = shared_socket(token), shared_socket(owners_token)
    for socket in (admins_screen, owners_screen):
        assert (await socket.connect())[0]
        await socket.receive_text()

    membership = await database_sync_to_async(Membership.objects.get)(user=admin, account=store.account)
    await database_sync_to_async(team.remove_member)(membership=membership, actor=owner)

    assert await admins_screen.receive_close_code() == 4404
    assert await owners_screen.receive_nothing(timeout=0.3)
    await owners_screen.disconnect()


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_creators_lost_role_missed_by_its_notification_closes_the_wallboard_at_the_next_check(
    store, admin, monkeypatch
):
    monkeypatch.setattr(AccessWatch, "period_seconds", 0.3)
    _, token = await sync_to_async(share.create_wallboard_link)(store=store, created_by=admin)
    socket = shared_socket(token)
    assert (await socket.connect())[0]
    await socket.receive_text()

    # Demoted while no listener runs: only the periodic re-check can notice.
    await database_sync_to_async(Membership.objects.filter(user=admin, account=store.account).update)(role=Role.MEMBER)

    assert await socket.receive_text() == HEARTBEAT
    assert await socket.receive_close_code() == 4404
