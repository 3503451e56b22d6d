from __future__ import annotations

import uuid

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


class Membership(models.Model):
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
