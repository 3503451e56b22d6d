from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from opspulse.accounts.models import Account, Invitation, Membership, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "plan", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "account", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    search_fields = ["email", "account__name"]
    raw_id_fields = ["account", "invited_by", "accepted_by"]
    # The token exists only in the mail; its hash is no use to anyone reading this page.
    exclude = ["token_hash"]
    readonly_fields = ["created_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request) -> bool:
        # Invitations are sent from the team page, which mails the link.
        return False
