from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def hash_wallboard_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WallboardLinkQuerySet(models.QuerySet["WallboardLink"]):
    def active(self) -> WallboardLinkQuerySet:
        return self.filter(revoked_at__isnull=True)


class WallboardLink(models.Model):
    """A read-only link to a store's wallboard that works without signing in.

    Only the SHA-256 of the token is stored: the token is shown once, when the link is
    made, so a database read does not hand out ways in. A revoked link stays listed
    (who made it, when it was last used) but opens nothing.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="wallboard_links")
    label = models.CharField(max_length=80, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
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
    def is_active(self) -> bool:
        return self.revoked_at is None
