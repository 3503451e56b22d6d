"""Read-only wallboard links: made and revoked by a store's owners and admins.

A link's token is the capability: `/wall/<token>/` opens the store's wallboard without
signing in. Revoking a link closes its open wallboards in every web process at once,
the way a sign-out closes a session's dashboards (opspulse.lib.broadcast): each shared
wallboard is watched under a key named after its link (`link_socket_key`). A link may
expire (its open wallboards close then), and it stops working when its creator is no
longer an admin or owner of the store's account (`WallboardLink.objects.active`, read at
every use and by the periodic re-check of open wallboards). Making and revoking a link
are in the account's audit log.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from opspulse.accounts.audit import record_event
from opspulse.accounts.models import AuditKind, User
from opspulse.lib.broadcast import close_session_sockets
from opspulse.live.models import WallboardLink, creator_may_share, hash_wallboard_token
from opspulse.stores.models import Store

LABEL_MAX_LENGTH = 80
# `last_used_at` is written at most this often per link: a wallboard that reconnects
# all night must not turn into a stream of writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)
# What "Expires" offers when a link is made: {form value: (label, lifetime or None for never)}.
LIFETIMES: dict[str, tuple[str, timedelta | None]] = {
    "1d": ("after 1 day", timedelta(days=1)),
    "7d": ("after 7 days", timedelta(days=7)),
    "30d": ("after 30 days", timedelta(days=30)),
    "never": ("never (until revoked)", None),
}
DEFAULT_LIFETIME = "30d"
# A shared wallboard is watched (opspulse.live.access) under this prefix and its link's
# public id instead of a session key.
LINK_KEY_PREFIX = "wallboard-link:"


def link_socket_key(link_public_id: UUID | str) -> str:
    """The key a shared wallboard is watched under instead of a session key."""
    return f"{LINK_KEY_PREFIX}{link_public_id}"


# Reads


def links_of_store(store: Store) -> QuerySet[WallboardLink]:
    """The store's links, each with `creator_may_share` (False once its creator lost the admin role)."""
    return (
        WallboardLink.objects.filter(store=store)
        .select_related("created_by", "revoked_by")
        .annotate(creator_may_share=creator_may_share())
    )


def link_for_token(token: str) -> WallboardLink | None:
    """Return the active link `token` opens, with its store, or None."""
    if not token or len(token) > 100:
        return None
    return (
        WallboardLink.objects.active()
        .select_related("store")
        .filter(token_hash=hash_wallboard_token(token))
        .first()
    )


def active_link_stores(public_ids: Iterable[UUID | str]) -> dict[str, int]:
    """Of the links with these public ids, the active ones: {public id: store id}."""
    ids = {str(public_id) for public_id in public_ids}
    if not ids:
        return {}
    rows = WallboardLink.objects.active().filter(public_id__in=ids).values_list("public_id", "store_id")
    return {str(public_id): store_id for public_id, store_id in rows}


# Writes


@transaction.atomic
def create_wallboard_link(
    *,
    store: Store,
    created_by: User,
    label: str = "",
    lifetime: timedelta | None = None,
    request: HttpRequest | None = None,
) -> tuple[WallboardLink, str]:
    """Make a link that works for `lifetime` (None: until revoked); return it and its
    token, which is stored only hashed and shown once."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = WallboardLink.objects.create(
        store=store,
        label=label.strip()[:LABEL_MAX_LENGTH],
        token_hash=hash_wallboard_token(token),
        created_by=created_by,
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    record_event(
        AuditKind.WALLBOARD_LINK_CREATED, user=created_by, request=request, account=store.account, **_details(link)
    )
    return link, token


@transaction.atomic
def revoke_wallboard_link(*, link: WallboardLink, revoked_by: User, request: HttpRequest | None = None) -> bool:
    """Revoke the link and, after commit, close its open wallboards in every web process.

    Return False if it was already revoked.
    """
    revoked = WallboardLink.objects.unrevoked().filter(pk=link.pk).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    if revoked:
        record_event(
            AuditKind.WALLBOARD_LINK_REVOKED, user=revoked_by, request=request, account=link.store.account,
            **_details(link),
        )
        key = link_socket_key(link.public_id)
        transaction.on_commit(lambda: close_session_sockets(key), robust=True)
    return bool(revoked)


def _details(link: WallboardLink) -> dict[str, str | None]:
    # Never the token: whoever reads the log must not be able to open the link.
    return {
        "store": link.store.name,
        "store_id": str(link.store.public_id),
        "link_id": str(link.public_id),
        "label": link.label,
        "expires_at": link.expires_at.isoformat() if link.expires_at else None,
    }


def record_link_use(link: WallboardLink) -> None:
    """Note that the link was opened, at most once per LAST_USED_RESOLUTION."""
    now = timezone.now()
    if link.last_used_at is not None and now - link.last_used_at < LAST_USED_RESOLUTION:
        return
    WallboardLink.objects.filter(pk=link.pk).update(last_used_at=now)
    link.last_used_at = now
