from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Plan(models.TextChoices):
    BASIC = "basic"
    PLUS = "plus"
    PRO = "pro"


class Account(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=10, choices=Plan.choices, default=Plan.BASIC)
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(User, through="Membership", related_name="accounts")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


# Each role may do everything the roles below it may: a member views dashboards, an
# admin also manages stores and alerts, an owner also members and deletion.
ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: str, needed: str) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[needed]


class Membership(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class AuditKind(models.TextChoices):
    SIGNED_UP = "signed_up", "Signed up"
    EMAIL_CONFIRMED = "email_confirmed", "Confirmed email"
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOGOUT = "logout", "Signed out"
    PASSWORD_CHANGED = "password_changed", "Changed password"
    PASSWORD_RESET = "password_reset", "Reset password"
    EMAIL_CHANGED = "email_changed", "Changed email"
    MFA_ENABLED = "mfa_enabled", "Turned on two-factor"
    MFA_DISABLED = "mfa_disabled", "Turned off two-factor"
    RECOVERY_CODES_GENERATED = "recovery_codes_generated", "New recovery codes"
    SESSION_ENDED = "session_ended", "Ended a session"
    MEMBER_INVITED = "member_invited", "Invited a member"
    MEMBER_JOINED = "member_joined", "Joined the account"
    MEMBER_REMOVED = "member_removed", "Removed a member"
    MEMBER_LEFT = "member_left", "Left the account"
    ROLE_CHANGED = "role_changed", "Changed a role"
    INVITATION_REVOKED = "invitation_revoked", "Revoked an invitation"
    ACCOUNT_RENAMED = "account_renamed", "Renamed the account"
    ACCOUNT_DELETED = "account_deleted", "Deleted an account"
    WALLBOARD_LINK_CREATED = "wallboard_link_created", "Created a wallboard link"
    WALLBOARD_LINK_REVOKED = "wallboard_link_revoked", "Revoked a wallboard link"
    CHANNEL_ADDED = "channel_added", "Added an alert channel"
    CHANNEL_CHANGED = "channel_changed", "Changed an alert channel"
    CHANNEL_REMOVED = "channel_removed", "Removed an alert channel"
    DATA_EXPORT_DOWNLOADED = "data_export_downloaded", "Downloaded a customer's data"
    STORE_CONNECTED = "store_connected", "Connected a store"
    STORE_DISCONNECTED = "store_disconnected", "Store disconnected"
    STORE_DELETED = "store_deleted", "Deleted a store"


class AuditEvent(models.Model):
    """A security-relevant event, readable by the owners of the accounts it concerns.

    `user` is whose security it concerns (the one signing in, or the member whose role
    changed); `actor` who did it, when someone else did. An event with an account
    belongs to that account; one without (sign-in, password change) is shown in every
    account the user is a member of. `details` never holds passwords, tokens or
    customer data.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=40, choices=AuditKind.choices)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"], name="audit_user_recent"),
            models.Index(fields=["account", "-created_at"], name="audit_account_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


INVITATION_LIFETIME = timedelta(days=7)


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        """Neither accepted nor revoked (possibly expired: an owner may still resend it)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An owner's invitation for an email address to join an account with a role.

    Only the SHA-256 of the token is stored: the token itself exists in the mail alone,
    so a database read does not hand out ways in. Resending makes a new token.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        constraints = [
            # One open invitation per address and account: inviting again renews it.
            models.UniqueConstraint(
                "account", Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_unique",
            ),
            # Owners are made by promoting a member, never by a mailed link.
            models.CheckConstraint(condition=~models.Q(role="owner"), name="invitation_role_not_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.account} ({self.role})"

    @property
    def state(self) -> str:
        """One of "accepted", "revoked", "expired" or "pending"."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
