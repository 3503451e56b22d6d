from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from opspulse.accounts.models import ROLE_RANK, Membership, Role, role_at_least


def hash_wallboard_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Making a link needs the admin role; a link works only while its creator still has it.
SHARING_ROLES = [role for role in ROLE_RANK if role_at_least(role, Role.ADMIN)]


def creator_may_share() -> Exists:
    """Whether the link's creator is still an admin or owner of its store's account."""
    return Exists(
        Membership.objects.filter(
            account_id=OuterRef("store__account_id"), user_id=OuterRef("created_by_id"), role__in=SHARING_ROLES
        )
    )


class WallboardLinkQuerySet(models.QuerySet["WallboardLink"]):
    def unrevoked(self) -> WallboardLinkQuerySet:
        return self.filter(revoked_at__isnull=True)

    def active(self, now: datetime | None = None) -> WallboardLinkQuerySet:
        """The links that open their wallboard: not revoked, not expired, and made by
        someone who may still make them, of a store not deleted. Checked at every use, so
        a removed or demoted admin's links stop working at once without anyone having to
        find them."""
        return self.unrevoked().filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now()),
            creator_may_share(),
            store__deleted_at__isnull=True,
        )


class WallboardLink(models.Model):
    """A read-only link to a store's wallboard that works without signing in.

    Only the SHA-256 of the token is stored: the token is shown once, when the link is
    made, so a database read does not hand out ways in. A revoked or expired link stays
    listed (who made it, when it was last used) but opens nothing; so does one whose
    creator is no longer an admin or owner of the store's account.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="wallboard_links")
    label = models.CharField(max_length=80, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # None: until revoked.
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = WallboardLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"wallboard link {self.label or self.public_id} of store {self.store_id}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
